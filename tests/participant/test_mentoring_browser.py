"""Peer mentoring in headless Chromium: a mentor signs up and shares their link, an
invited resident enrols through it and is recorded as referred, the mentor page shows
counts only, links past their limit, expired or forged get a clear page, and a mentor
who stops gets no more messages. axe-core finds no serious or critical violation."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from browser_checks import needs_chromium
from sqlalchemy import select
from test_browser import _count, check_page

from experiments.design import Mentoring
from nudge_app.db import utcnow
from nudge_app.extensions import db
from nudge_app.models import Mentor, OutboundMessage, Participant
from nudge_app.scheduler import run_once

pytestmark = [pytest.mark.browser, needs_chromium]


def baseline_and_join(page, high: bool, email: str) -> None:
    page.fill("#age", "41")
    page.check("#gender-woman")
    for item, value in zip(
        ("se_safety", "se_environment", "se_health"), (5, 4, 5) if high else (1, 2, 2), strict=True
    ):
        page.check(f"#{item}-{value}")
    with page.expect_navigation():
        page.click("form[action$='/baseline'] button[type=submit]")
    page.check("#contact-email")
    page.fill("#email", email)
    with page.expect_navigation():
        page.click("form[action$='/join'] button")
    assert page.locator("#joined").is_visible()


def test_mentor_shares_a_link_and_an_invited_resident_enrols(
    app, browser, axe, council, make_campaign, make_person, live_server
):
    campaign = make_campaign(
        council,
        status="running",
        mentoring=Mentoring(offer_to=["self_efficacy >= 4"], invite_limit=1, link_days=30),
    )
    mentor_person, token = make_person(campaign, first_name="Bea", email=None)
    mentor_pid = mentor_person.id
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    context.grant_permissions(["clipboard-read", "clipboard-write"], origin=live_server.url)
    page = context.new_page()
    page.goto(f"{live_server.url}/p/{token}")
    with page.expect_navigation():
        page.click("button[value=agree]")
    baseline_and_join(page, True, "bea@example.org")
    with page.expect_navigation():
        page.click(f"a[href$='/p/{token}/mentor']")
    check_page(page, axe, "mentor-offer")
    page.fill("#note", "Come and help tidy the park with me!")
    page.check("#show_first_name")
    with page.expect_navigation():
        page.click("button[value=agree]")
    check_page(page, axe, "mentor-page")
    link = page.input_value("#referral-link")
    path = link[link.index("/p/r/") :]
    page.click("#copy-link")
    page.wait_for_function("document.getElementById('copy-link').textContent === 'Copied'")
    assert page.evaluate("navigator.clipboard.readText()") == link
    assert page.get_attribute("#email-link", "href").startswith("mailto:?subject=")
    with page.expect_navigation():
        page.click("#card-link")
    check_page(page, axe, "mentor-card")
    assert page.locator(".qr svg").count() == 1 and path in page.content()

    # The invited resident, in their own browser.
    invited = browser.new_context(viewport={"width": 390, "height": 800})
    ipage = invited.new_page()
    ipage.goto(f"{live_server.url}{path}")
    check_page(ipage, axe, "referral-landing")
    assert "Bea invites you" in ipage.locator("#invitation").inner_text()
    assert "tidy the park" in ipage.content() and "bea@example.org" not in ipage.content()
    with ipage.expect_navigation():
        ipage.click("button[value=agree]")
    baseline_and_join(ipage, False, "cal@example.org")
    invited.close()
    db.session.commit()
    mentor_id = db.session.scalar(select(Mentor.id))
    referred = db.session.scalars(
        select(Participant).where(Participant.referred_by == mentor_id)
    ).all()
    assert len(referred) == 1 and referred[0].assignment is not None
    db.session.commit()

    # Counts only, never who.
    page.goto(f"{live_server.url}/p/{token}/mentor")
    assert page.inner_text("#opened-count") == "1"
    assert page.inner_text("#accepted-count") == "1"
    assert "cal@example.org" not in page.content()
    assert _count(OutboundMessage, OutboundMessage.kind == "mentor") == 1

    # Past its limit (1), forged, expired: each a clear page.
    other = browser.new_context()
    opage = other.new_page()
    response = opage.goto(f"{live_server.url}{path}")
    assert response.status == 410
    check_page(opage, axe, "referral-full")
    assert "used as often as it can be" in opage.locator("h1").inner_text()
    response = opage.goto(f"{live_server.url}/p/r/{'x' * 43}")
    assert response.status == 404
    check_page(opage, axe, "referral-forged")
    assert "not valid" in opage.locator("h1").inner_text()
    mentor = db.session.get(Mentor, mentor_id)
    mentor.invite_limit = 5
    mentor.expires_at = utcnow() - timedelta(hours=1)
    db.session.commit()
    response = opage.goto(f"{live_server.url}{path}")
    assert response.status == 410 and "expired" in opage.locator("h1").inner_text()
    mentor = db.session.get(Mentor, mentor_id)
    mentor.expires_at = utcnow() + timedelta(days=1)
    db.session.commit()

    # The mentor stops: the pending message is cancelled and the link stops working.
    with page.expect_navigation():
        page.click("#stop-mentoring")
    check_page(page, axe, "mentor-stopped")
    assert "You have stopped being a mentor" in page.locator("h1").inner_text()
    response = opage.goto(f"{live_server.url}{path}")
    assert response.status == 410 and "no longer active" in opage.locator("h1").inner_text()
    assert _count(OutboundMessage, OutboundMessage.participant_id == mentor_pid,
                  OutboundMessage.kind == "mentor",
                  OutboundMessage.status.in_(("pending", "leased"))) == 0  # fmt: skip
    assert _count(OutboundMessage, OutboundMessage.kind == "mentor") == 1  # none new
    # The scheduler's next round sends the stopped mentor nothing (file channel).
    out = Path(app.config["FILE_CHANNEL_PATH"])
    before = out.read_text(encoding="utf-8") if out.exists() else ""
    noon = (utcnow() + timedelta(days=1)).replace(hour=12, minute=0, second=0, microsecond=0)
    run_once(app, now=noon)
    after = (out.read_text(encoding="utf-8") if out.exists() else "")[len(before) :]
    assert "bea@example.org" not in after
    other.close()
    context.close()
