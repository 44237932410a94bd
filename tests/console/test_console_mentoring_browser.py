"""Issue 16's console acceptance in headless Chromium, on a desktop and at 375 px: an
officer builds a randomized saturation design with peer mentoring in the campaign
editor, sees every bad value beside its field with the rest kept, saves, reads the
settings in words on the campaign page, downloads the design file and it parses to the
design the campaign holds; saved again unchanged, the design hash stays.

Every page visited passes axe (WCAG 2.x A/AA: no serious or critical violation) and fits
the viewport. Uses Debian's /usr/bin/chromium; screenshots go to test-output/console-mentoring/.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from console_browser import HAVE_CHROMIUM, OUTPUT, check_page, fresh

from experiments.design import parse_design

pytestmark = [
    pytest.mark.browser,
    pytest.mark.slow,
    pytest.mark.skipif(not HAVE_CHROMIUM, reason="needs Debian's chromium at /usr/bin/chromium"),
]

SHOTS = "console-mentoring"
# A design path (`randomization.cluster`, `mentoring.offer_to[1]`) where a label belongs.
DESIGN_PATH = re.compile(r"\b(?:campaign|randomization|analysis|mentoring)(?:\[\d+\])?\.\w")
CONSENT = "I will invite neighbours I know.\nI can stop at any time."


def beside(page, field: str):
    return page.locator(f".form-group:has(#{field}) .error-message")


def test_officer_builds_a_saturation_design_with_peer_mentoring(
    officer, axe, council, make_campaign, db_session
):
    from playwright.sync_api import expect

    from nudge_app.services.campaigns import design_of

    campaign = make_campaign(council)  # two arms: control and one message arm
    page = officer()
    page.goto(f"{page.base}/campaigns/{campaign.slug}/edit")
    check_page(page, axe, "editor", SHOTS)
    expect(page.locator("#peer-mentoring legend").first).to_have_text("Peer mentoring")
    expect(page.locator("#mentor_offer_to-variables")).to_contain_text("self_efficacy (")

    # Every bad value at once: each is shown beside its field, the rest kept.
    for row in range(4):
        page.select_option(f"#stratum_{row}_moderator", "")
    page.select_option("#method", "complete")
    page.select_option("#cluster", "")  # saturations without a cluster
    page.fill("#saturations", "0, 1.5, 0.4, 0.4")  # outside [0, 1]; listed twice
    page.fill("#minimum_spillover", "0.03")
    assert page.is_checked("#mentoring input[value=no]")
    page.fill("#mentor_offer_to", "self_efficacy >= 4\nkindness >= 3")  # unknown variable
    assert page.is_checked("#mentoring input[value=yes]")  # typing a rule turns the role on
    page.fill("#mentor_invite_limit", "0")
    page.fill("#mentor_link_days", "45")
    page.fill("#mentor_introductions", "2")
    page.fill("#mentor_consent_text", CONSENT)
    page.click("button:has-text('Save settings')")

    expect(page.locator(".error-summary")).to_contain_text("nothing was saved")
    saturations = beside(page, "saturations")
    expect(saturations.filter(has_text="1.5 is outside [0, 1]")).to_have_count(1)
    expect(saturations.filter(has_text="0.4 is listed twice")).to_have_count(1)
    expect(saturations.filter(has_text='set "Randomize clusters"')).to_have_count(1)
    expect(beside(page, "mentor_offer_to")).to_contain_text("unknown baseline variable 'kindness'")
    expect(beside(page, "mentor_invite_limit")).to_contain_text("must be at least 1")
    for field in ("saturations", "mentor_offer_to", "mentor_invite_limit"):
        expect(page.locator(f"#{field}")).to_have_attribute("aria-invalid", "true")
    for where in (".error-summary", ".error-message"):
        for text in page.locator(where).all_inner_texts():
            assert not DESIGN_PATH.search(text), f"a design path shown: {text!r}"
    assert page.input_value("#saturations") == "0, 1.5, 0.4, 0.4"
    assert page.input_value("#minimum_spillover") == "0.03"
    assert page.input_value("#method") == "complete"
    assert page.is_checked("#mentoring input[value=yes]")
    assert page.input_value("#mentor_offer_to") == "self_efficacy >= 4\nkindness >= 3"
    assert page.input_value("#mentor_invite_limit") == "0"
    assert page.input_value("#mentor_link_days") == "45"
    assert page.input_value("#mentor_introductions") == "2"
    assert page.input_value("#mentor_consent_text") == CONSENT
    assert design_of(fresh(db_session).get(type(campaign), campaign.id)).mentoring is None
    check_page(page, axe, "editor-errors", SHOTS)
    section = OUTPUT / SHOTS / f"peer-mentoring-errors-{page.viewport_name}.png"
    page.locator("#peer-mentoring").screenshot(path=str(section))

    # Fixed: neighbourhoods at 0, 40% and 80%, and a mentor role.
    page.select_option("#cluster", "neighbourhood")
    page.fill("#saturations", "0, 0.4, 0.8")
    page.fill("#mentor_offer_to", "self_efficacy >= 4")
    page.fill("#mentor_invite_limit", "8")
    page.click("button:has-text('Save settings')")
    expect(page.locator(".flash[role=status]")).to_contain_text("Campaign settings saved")
    expect(page.locator("h1")).to_contain_text(campaign.name)
    summary = page.locator("#mentoring-summary")
    expect(summary).to_contain_text("Participants who meet the rule self_efficacy >= 4")
    expect(summary).to_contain_text("enrols up to 8 residents and works for 45 days")
    expect(summary).to_contain_text("introduces each mentor to up to 2 neighbours")
    expect(summary).to_contain_text("I will invite neighbours I know.")
    expect(page.locator("#saturation-summary")).to_contain_text(
        "Each neighbourhood is randomized to a saturation: 0%, 40%, 80% of its members"
    )
    expect(page.locator("#saturation-summary")).to_contain_text(
        "Smallest spillover worth finding: 0.03 (3 percentage points)"
    )
    check_page(page, axe, "campaign-summary", SHOTS)

    # The design file, downloaded as an officer does, is the campaign's design.
    with page.expect_download() as download:
        page.click("a:has-text('Download design file')")
    text = Path(download.value.path()).read_text(encoding="utf-8")
    held = design_of(fresh(db_session).get(type(campaign), campaign.id))
    from_file = parse_design(text)
    assert from_file.to_dict() == held.to_dict()
    assert from_file.design_hash() == held.design_hash()
    assert from_file.randomization.cluster == "neighbourhood"
    assert from_file.randomization.saturations == [0.0, 0.4, 0.8]
    assert from_file.analysis.minimum_spillover == 0.03
    m = from_file.mentoring
    assert (m.offer_to, m.invite_limit, m.link_days, m.introductions) == (
        ["self_efficacy >= 4"],
        8,
        45,
        2,
    )
    assert m.consent_text == CONSENT

    # Saved again without a change: the same design, the same hash.
    page.goto(f"{page.base}/campaigns/{campaign.slug}/edit")
    page.click("button:has-text('Save settings')")
    expect(page.locator(".flash[role=status]")).to_contain_text("Campaign settings saved")
    again = design_of(fresh(db_session).get(type(campaign), campaign.id))
    assert again.design_hash() == held.design_hash()

    # Turned off, the table goes and the page says so.
    page.goto(f"{page.base}/campaigns/{campaign.slug}/edit")
    page.check("#mentoring input[value=no]")
    page.click("button:has-text('Save settings')")
    expect(page.locator("#mentoring-summary")).to_have_text("No mentor role is offered.")
    expect(page.locator(".flash[role=status]").last).to_contain_text(
        "Peer mentoring is off: participants are no longer offered the mentor role."
    )
    assert design_of(fresh(db_session).get(type(campaign), campaign.id)).mentoring is None


def test_a_launched_campaigns_mentoring_is_shown_read_only(
    officer, axe, council, make_campaign, db_session
):
    from playwright.sync_api import expect

    from nudge_app.services.campaigns import design_of

    campaign = make_campaign(council, "peer-mentoring", status="running")
    held = design_of(campaign).design_hash()
    page = officer()
    page.goto(f"{page.base}/campaigns/{campaign.slug}/edit")
    expect(page.locator("#read-only")).to_contain_text("read-only")
    assert page.is_checked("#mentoring input[value=yes]")
    assert page.input_value("#mentor_offer_to") == "self_efficacy >= 4"
    for field in ("#mentor_offer_to", "#mentor_invite_limit", "#mentoring-1"):
        expect(page.locator(field)).to_be_disabled()
    expect(page.locator("button:has-text('Save settings')")).to_have_count(0)
    check_page(page, axe, "editor-launched", SHOTS)
    page.goto(f"{page.base}/campaigns/{campaign.slug}")
    expect(page.locator("#mentoring-summary")).to_contain_text(
        "enrols up to 10 residents and works for 60 days"
    )
    check_page(page, axe, "campaign-launched", SHOTS)
    assert design_of(fresh(db_session).get(type(campaign), campaign.id)).design_hash() == held
