"""Eligibility screening in headless Chromium: an ineligible resident's journey ends on the
kind page (axe: no serious violation, reflows at 320 px), an eligible one's continues to
the arm's page."""

from __future__ import annotations

import pytest
import test_browser
from browser_checks import needs_chromium

from experiments.design import Eligibility
from nudge_app.extensions import db
from nudge_app.models import Assignment, OutboundMessage, Participant

pytestmark = [pytest.mark.browser, needs_chromium]

# The page check of the participant pages' browser tests (`browser` and `axe`: conftest).
check_page = test_browser.check_page
_count = test_browser._count

RULES = ["individual_coproduction >= 1", "collective_coproduction = 0"]


def _answer(page, activities: list[str], collective: int) -> None:
    test_browser.fill_baseline(page)
    for activity in activities:
        page.check(f"#individual_coproduction-{activity}")
    page.check(f"#collective_coproduction-{collective}")
    page.click("form button[type=submit]")


@pytest.mark.parametrize("lang", ["en", "cy"])
def test_ineligible_journey_ends_on_the_kind_page_eligible_continues_to_the_arm(
    browser,
    axe,
    council,
    make_campaign,
    make_person,
    live_server,
    lang,
):
    campaign = make_campaign(
        council, status="running", language=lang, eligibility=Eligibility(list(RULES))
    )
    out, out_token = make_person(campaign)
    inside, in_token = make_person(campaign)
    out_id, in_id = out.id, inside.id
    db.session.commit()
    context = browser.new_context(viewport={"width": 320, "height": 640})
    page = context.new_page()

    page.goto(f"{live_server.url}/p/{out_token}")
    page.click("button[value=agree]")
    check_page(page, axe, f"{lang}-baseline-screened")
    _answer(page, [], 2)  # does nothing alone, already in a group
    assert page.locator("[data-arm]").count() == 0
    assert page.locator("form[action$='/join']").count() == 0
    check_page(page, axe, f"{lang}-ineligible")
    title = page.locator("h1").inner_text()
    page.goto(f"{live_server.url}/p/{out_token}")  # a later visit: the same kind page
    assert page.locator("h1").inner_text() == title

    page.goto(f"{live_server.url}/p/{in_token}")
    page.click("button[value=agree]")
    _answer(page, ["recycle", "save_energy"], 0)
    assert page.locator("[data-arm]").count() == 1
    assert page.locator("h1").inner_text() != title
    check_page(page, axe, f"{lang}-eligible-arm")
    context.close()

    assert _count(Assignment, Assignment.participant_id == out_id) == 0
    assert _count(OutboundMessage, OutboundMessage.participant_id == out_id) == 0
    assert _count(Assignment, Assignment.participant_id == in_id) == 1
    assert (
        _count(Participant, Participant.id == out_id, Participant.screened_out_rule.is_not(None))
        == 1
    )
