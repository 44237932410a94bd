"""Issue 19's console findings 1, 2, 3 and 6 repeated in headless Chromium, on a desktop
and at 375 px: forms that keep what was typed and show every error beside its field, the
control flag, the design file, read-only launched settings, a survey step without its
link, and the launch checklist with its confirmation (Close and Delete ask too).

Every page visited passes axe (WCAG 2.x A/AA rules: no serious or critical violation)
and fits the viewport. Uses Debian's /usr/bin/chromium; screenshots go to
test-output/console-forms/.
"""

from __future__ import annotations

import re

import pytest
from console_browser import HAVE_CHROMIUM, check_page, fresh
from sqlalchemy import select

pytestmark = [
    pytest.mark.browser,
    pytest.mark.slow,
    pytest.mark.skipif(not HAVE_CHROMIUM, reason="needs Debian's chromium at /usr/bin/chromium"),
]

# A design path (`arms[1].messages.page`, `analysis.alpha`) where a label belongs (finding 6).
DESIGN_PATH = re.compile(r"\b(?:campaign|randomization|analysis|arms|follow_up)(?:\[\d+\])?\.\w")


def no_design_paths(page) -> None:
    for where in (".error-summary", ".error-message"):
        for text in page.locator(where).all_inner_texts():
            assert not DESIGN_PATH.search(text), f"a design path shown: {text!r}"


CSV = "external_ref,first_name,email,age,gender,se_safety,se_environment,se_health\n" + "".join(
    f"R{i:02d},Ann{i},ann{i}@example.org,{20 + i},woman,3,3,3\n" for i in range(12)
)


def test_settings_with_three_wrong_fields(officer, axe, council, make_campaign):
    from playwright.sync_api import expect

    campaign = make_campaign(council)
    page = officer()
    page.goto(f"{page.base}/campaigns/{campaign.slug}/edit")
    check_page(page, axe, "settings")
    page.fill("#name", "Autumn clean-up, typed")
    page.fill("#planned_sample_size", "lots")  # wrong 1
    page.select_option("#method", "simple")
    page.fill("#seed", "4242")
    page.fill("#stratum_1_cuts", "2.5, nine")  # wrong 2
    page.fill("#stratum_1_labels", "low, middle, high")
    page.fill("#alpha", "1.5")  # wrong 3
    page.fill("#power", "0.9")
    page.select_option("#correction", "bh")
    page.uncheck("#moderators input[value=age]")
    page.check("#covariates input[value=age]")
    page.click("button:has-text('Save settings')")

    expect(page.locator(".error-summary")).to_contain_text("nothing was saved")
    expect(page.locator(".error-message")).to_have_count(3)
    for field in ("planned_sample_size", "stratum_1_cuts", "alpha"):
        beside = page.locator(f".form-group:has(#{field}) .error-message")
        expect(beside).to_be_visible()
        expect(page.locator(f"#{field}")).to_have_attribute("aria-invalid", "true")
    expect(page.locator(".error-summary li")).to_have_count(3)
    no_design_paths(page)
    # every typed value is still there, the wrong ones too
    assert page.input_value("#name") == "Autumn clean-up, typed"
    assert page.input_value("#planned_sample_size") == "lots"
    assert page.input_value("#method") == "simple"
    assert page.input_value("#seed") == "4242"
    assert page.input_value("#stratum_1_moderator") == "self_efficacy"
    assert page.input_value("#stratum_1_cuts") == "2.5, nine"
    assert page.input_value("#power") == "0.9"
    assert page.input_value("#correction") == "bh"
    assert not page.is_checked("#moderators input[value=age]")
    assert page.is_checked("#covariates input[value=age]")
    check_page(page, axe, "settings-three-errors")

    page.click(".error-summary a[href='#alpha']")
    assert page.evaluate("document.activeElement.id") == "alpha"
    page.fill("#planned_sample_size", "1200")
    page.fill("#stratum_1_cuts", "2.5, 3.5")
    page.fill("#alpha", "0.05")
    page.click("button:has-text('Save settings')")
    expect(page.locator(".flash[role=status]")).to_contain_text("Campaign settings saved")
    page.goto(f"{page.base}/campaigns/{campaign.slug}/edit")
    assert page.is_checked("#covariates input[value=age]")  # kept through the fix
    assert not page.is_checked("#moderators input[value=age]")
    assert page.input_value("#seed") == "4242"


def test_control_flag_and_survey_step_without_its_link(
    officer, axe, council, make_campaign, db_session
):
    from playwright.sync_api import expect

    from nudge_app.models import Arm

    campaign = make_campaign(council)
    page = officer()
    page.goto(f"{page.base}/campaigns/{campaign.slug}/arms/control")
    page.check("#control input[value=no]")
    page.click("button:has-text('Save arm')")
    expect(page.locator(".form-group:has(#control-0) .error-message")).to_contain_text(
        "only control arm"
    )
    check_page(page, axe, "arm-control-refused")

    page.goto(f"{page.base}/campaigns/{campaign.slug}/arms/efficacy")
    yes = page.locator("label[for=control-0]")
    expect(yes).to_contain_text("instead of")
    expect(yes).to_contain_text("which becomes a message arm")
    page.check("#control input[value=yes]")
    page.select_option("#mechanism_tag", "")
    page.click("button:has-text('Save arm')")
    expect(page.locator(".flash[role=status]").last).to_contain_text(
        "'efficacy' is now the control arm"
    )
    flags = dict(
        fresh(db_session)
        .execute(select(Arm.key, Arm.is_control).where(Arm.campaign_id == campaign.id))
        .all()
    )
    assert flags == {"control": False, "efficacy": True}

    page.goto(f"{page.base}/campaigns/{campaign.slug}/follow-ups/follow-up-survey")
    check_page(page, axe, "step")
    body = page.input_value("#email_body")
    page.fill("#email_body", body.replace("{survey_link}", "{link}"))
    page.click("button:has-text('Save follow-up')")
    beside = page.locator(".form-group:has(#email_body) .error-message")
    expect(beside).to_contain_text("survey step 'follow-up-survey' must include {survey_link}")
    assert "{link}" in page.input_value("#email_body")  # what was typed is kept
    no_design_paths(page)
    check_page(page, axe, "step-survey-link-refused")


def test_design_file_choice_and_new_campaign_errors(officer, axe, catalog_path):
    from playwright.sync_api import expect

    page = officer()
    page.goto(f"{page.base}/campaigns/new")
    check_page(page, axe, "new")
    page.click("button:has-text('Create draft')")  # nothing typed
    expect(page.locator(".form-group:has(#name) .error-message")).to_be_visible()
    check_page(page, axe, "new-errors")

    text = catalog_path("council-consultation").read_text()
    page.set_input_files(
        "#design_file",
        {"name": "consultation.toml", "mimeType": "text/plain", "buffer": text.encode()},
    )
    assert page.is_checked("#source-file-radio")  # choosing a file picks its option
    page.click("button:has-text('Create draft')")
    expect(page.locator(".flash[role=status]")).to_contain_text("Draft campaign")
    expect(page.locator("h1 .status")).to_have_text("draft")


def test_launch_needs_the_checklist_and_a_confirmation(
    officer, axe, council, make_campaign, db_session
):
    from playwright.sync_api import expect

    from nudge_app.models import Campaign
    from nudge_app.services.participants_import import import_csv

    campaign = make_campaign(council, "council-consultation", planned_sample_size=600)
    import_csv(campaign, CSV)
    page = officer()

    page.goto(f"{page.base}/campaigns/{campaign.slug}")
    check_page(page, axe, "overview-draft")
    page.click("text=Review and launch")
    expect(page.locator("h1")).to_contain_text("Launch checklist")
    expect(page.locator("#check-participants")).to_contain_text("12 of the planned 600")
    expect(page.locator("#check-power")).to_contain_text("Not enough")
    expect(page.locator("#check-messages")).to_contain_text("render for participant")
    expect(page.locator("#check-survey")).to_contain_text("carries its link")
    expect(page.locator("#check-scheduler")).to_contain_text("scheduler")
    expect(page.locator("#check-sending")).to_contain_text("Quiet hours")
    check_page(page, axe, "launch-checklist")
    page.click("#each-template summary")  # every template of every arm, step and channel
    expect(page.locator("#each-template tbody tr.ok").first).to_be_visible()
    expect(page.locator("#each-template tbody tr.stop")).to_have_count(0)
    check_page(page, axe, "launch-checklist-templates")

    page.click("button:has-text('Launch campaign')")  # the box is not ticked
    expect(page.locator(".form-group:has(#confirm) .error-message")).to_contain_text(
        "nothing was launched"
    )
    check_page(page, axe, "launch-unconfirmed")
    assert fresh(db_session).get(Campaign, campaign.id).status == "draft"

    page.check("#confirm")
    page.click("button:has-text('Launch campaign')")
    expect(page.locator("h1 .status")).to_have_text("running")
    check_page(page, axe, "overview-running")

    page.goto(f"{page.base}/campaigns/{campaign.slug}/edit")
    expect(page.locator("#read-only")).to_contain_text("read-only")
    expect(page.locator("#name")).to_be_disabled()
    expect(page.locator("button:has-text('Save settings')")).to_have_count(0)
    check_page(page, axe, "settings-read-only")
    page.goto(f"{page.base}/campaigns/{campaign.slug}/arms/control")
    expect(page.locator("#page")).to_be_disabled()
    check_page(page, axe, "arm-read-only")

    page.goto(f"{page.base}/campaigns/{campaign.slug}")
    page.click("text=Close campaign…")
    check_page(page, axe, "close")
    page.click("button:has-text('Close campaign')")
    expect(page.locator(".form-group:has(#confirm) .error-message")).to_be_visible()
    assert fresh(db_session).get(Campaign, campaign.id).status == "running"
    page.check("#confirm")
    page.click("button:has-text('Close campaign')")
    expect(page.locator("h1 .status")).to_have_text("closed")


def test_a_draft_is_deleted_after_asking(officer, axe, council, make_campaign, db_session):
    from playwright.sync_api import expect

    from nudge_app.models import Campaign

    campaign = make_campaign(council)
    campaign_id = campaign.id
    page = officer()
    page.goto(f"{page.base}/campaigns/{campaign.slug}")
    page.click("a:has-text('deleted')")
    check_page(page, axe, "delete")
    page.click("button:has-text('Delete draft')")
    expect(page.locator(".form-group:has(#confirm) .error-message")).to_be_visible()
    page.check("#confirm")
    page.click("button:has-text('Delete draft')")
    expect(page.locator(".flash[role=status]")).to_contain_text("deleted")
    assert fresh(db_session).get(Campaign, campaign_id) is None
