"""Issue 19's findings 4, 8 and 10 in headless Chromium, at desktop width and at 375 px:
SMS costs filled in, national phone numbers imported, the report in the console's frame
with a way back, "not ready" styled, no report link on drafts, strata in band order,
staff wording on a console 404, a favicon; axe finds no serious violation on any of them.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from browser_checks import axe_violations, launch, needs_chromium, page_width

SHOTS = Path(__file__).resolve().parents[2] / "test-output" / "console"
PASSWORD = "correct horse battery staple"

pytestmark = [pytest.mark.browser, pytest.mark.slow, needs_chromium]


def check(page, axe, name: str, reflows: bool = True) -> None:
    """No serious or critical axe violation; the page itself never scrolls sideways."""
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)
    bad = axe_violations(page, axe)
    assert not bad, f"{name}: " + "; ".join(bad)
    if reflows:
        width, viewport = page_width(page)
        wide = page.evaluate(
            """w => Array.from(document.querySelectorAll('body *'))
                 .filter(e => e.getBoundingClientRect().right > w + 1)
                 .slice(0, 8).map(e => e.tagName + '.' + e.className + ' ' +
                 Math.round(e.getBoundingClientRect().right))""",
            viewport,
        )
        assert width <= viewport, f"{name}: {width}px wide in a {viewport}px viewport: {wide}"
    assert page.locator("h1").count() == 1, f"{name}: one h1"


def _receipts_and_reminders(campaign) -> None:
    """Some first messages failed after all, some only accepted, reminders beside them:
    'delivered' must still count the same people on monitoring and in the report."""
    from sqlalchemy import select

    from nudge_app.extensions import db
    from nudge_app.models import OutboundMessage

    firsts = db.session.scalars(
        select(OutboundMessage)
        .where(OutboundMessage.campaign_id == campaign.id, OutboundMessage.kind == "nudge")
        .order_by(OutboundMessage.id)
    ).all()
    for i, message in enumerate(firsts):
        if i % 5 == 0:
            message.status = "failed"
        elif i % 7 == 0:
            message.status = "sent"
        if i % 3 == 0:
            db.session.add(
                OutboundMessage(
                    campaign_id=campaign.id,
                    participant_id=message.participant_id,
                    arm_id=message.arm_id,
                    kind="reminder",
                    channel="email",
                    due_at=message.due_at,
                    status="delivered",
                    idempotency_key=f"test-reminder:{message.participant_id}",
                )
            )


def _delivered_in_report(page) -> list[int]:
    """The 'Message delivered' column of the report's participant-flow table."""
    table = page.locator("table", has=page.locator("th", has_text="Message delivered"))
    headers = table.locator("thead th").all_inner_texts()
    column = headers.index("Message delivered")
    cells = table.locator(
        f"tbody tr td:nth-child({column + 1}), tbody tr th:nth-child({column + 1})"
    )
    return sorted(int(t.replace(",", "")) for t in cells.all_inner_texts())


@pytest.mark.parametrize(("label", "width"), [("desktop", 1280), ("phone", 375)])
def test_pages_of_findings_4_8_10(
    app, council, make_campaign, populate, live_server, axe, tmp_path, label, width
):
    from playwright.sync_api import expect, sync_playwright

    from nudge_app.extensions import db
    from nudge_app.services.staff import create_user

    user = create_user(council, "designer@testshire.gov.uk", "designer", PASSWORD)
    draft = make_campaign(council, "council-consultation")
    running = make_campaign(council, status="running")
    populate(running, n=300, seed=7)
    _receipts_and_reminders(running)
    db.session.commit()
    people = tmp_path / "people.csv"
    people.write_text(
        "external_ref,first_name,email,phone,age\n"
        "R1,Ann,,07700 900123,34\nR2,Bob,bob@example.org,+44 7700 900124,51\n"
    )
    base = live_server.url
    with sync_playwright() as p:
        browser = launch(p)
        page = browser.new_page(viewport={"width": width, "height": 900})
        try:
            page.goto(f"{base}/login")
            page.fill("#email", user.email)
            page.fill("#password", PASSWORD)
            page.click("button[type=submit]")
            expect(page.locator("header.top")).to_be_visible()

            # Finding 4: costs counted filled in; finding 10: no report link on a draft.
            page.goto(f"{base}/campaigns/{draft.slug}")
            expect(page.locator("#message-costs")).to_have_text("Text message costs")
            expect(page.locator(".message-costs")).to_contain_text("2")
            expect(page.locator("body")).to_contain_text("Total for the campaign:")
            assert page.locator(f'a[href="/reports/{draft.slug}"]').count() == 0
            check(page, axe, f"{label}-campaign-costs")
            icon = page.locator('link[rel="icon"]').get_attribute("href")
            assert page.request.get(base + icon).status == 200

            # Finding 8: national and international numbers import.
            page.goto(f"{base}/campaigns/{draft.slug}/participants")
            page.set_input_files("#file", str(people))
            page.click("text=Check and import")
            expect(page.locator(".flash")).to_contain_text("Imported 2 participant")
            check(page, axe, f"{label}-participants-imported", reflows=False)

            # Finding 10: "not ready" styled, in the frame.
            page.goto(f"{base}/reports/{draft.slug}")
            expect(page.locator("h1")).to_have_text("Report not ready")
            expect(page.locator("header.top")).to_be_visible()
            expect(page.locator(".notice")).to_be_visible()
            check(page, axe, f"{label}-report-not-ready")

            # The report in the console's frame, with its way back.
            page.goto(f"{base}/campaigns/{running.slug}")
            page.click(f'a[href="/reports/{running.slug}"]')
            expect(page.locator("header.top")).to_be_visible()
            expect(page.locator("article.report h1")).to_be_visible()
            stroke = page.evaluate("getComputedStyle(document.querySelector('.forest .ci')).stroke")
            assert stroke in ("rgb(29, 112, 184)", "rgb(11, 12, 12)", "rgb(181, 129, 0)")
            check(page, axe, f"{label}-report")
            in_report = _delivered_in_report(page)
            page.click("text=Back to the campaign")
            expect(page).to_have_url(f"{base}/campaigns/{running.slug}")

            # Strata in band order on monitoring.
            page.goto(f"{base}/campaigns/{running.slug}/monitor")
            cells = page.locator("td", has_text=re.compile(r"^age=")).all_inner_texts()
            efficacy = [c.split("self_efficacy=")[1] for c in cells if c.startswith("age=18-34")]
            assert efficacy == ["low", "middle", "high"]
            check(page, axe, f"{label}-monitor", reflows=False)
            # 'Delivered' counts the same people on both pages (sent or delivered first
            # messages; failed ones and reminders do not count).
            on_monitor = sorted(
                int(t.replace(",", "")) for t in page.locator("td.delivered").all_inner_texts()
            )
            assert on_monitor == in_report and sum(in_report) < 300

            # A console 404 in staff words.
            page.goto(f"{base}/campaigns/no-such-campaign")
            expect(page.locator("h1")).to_have_text("Not found in the console")
            expect(page.locator("body")).not_to_contain_text("letter, email or text message")
            check(page, axe, f"{label}-not-found")
        finally:
            browser.close()
