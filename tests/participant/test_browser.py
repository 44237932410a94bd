"""The participant pages in headless Chromium: axe-core (WCAG 2.2 AA rules) on every page,
reflow at 320 px, and whole journeys done with the keyboard alone and JavaScript off.

Uses Debian's /usr/bin/chromium (never a downloaded browser) and the axe-core build that
the `axe-playwright-python` package ships. Screenshots go to test-output/.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from browser_checks import axe_violations, needs_chromium, page_width
from sqlalchemy import func, select

from nudge_app.extensions import db
from nudge_app.models import Assignment, Event, OutboundMessage, Participant

OUTPUT = Path(__file__).resolve().parents[2] / "test-output"

pytestmark = [pytest.mark.browser, needs_chromium]


def _count(model, *where) -> int:
    db.session.commit()  # a fresh read: see what the server committed
    value = db.session.scalar(select(func.count()).select_from(model).where(*where))
    db.session.commit()
    return value


def check_page(page, axe, name: str) -> None:
    """No serious or critical axe violation (WCAG 2.x A/AA rules); no sideways scrolling."""
    page.screenshot(path=str(OUTPUT / f"participant-{name}.png"), full_page=True)
    bad = axe_violations(page, axe)
    assert not bad, f"{name}: " + "; ".join(bad)
    width, viewport = page_width(page)
    assert width <= viewport, f"{name}: {width}px wide in a {viewport}px viewport"
    assert page.locator("h1").count() == 1, f"{name}: one h1 per page"


def fill_baseline(page) -> None:
    """Answer the baseline questions with the mouse: 34, a woman, self-efficacy 2, 3 and 4."""
    page.fill("#age", "34")
    for name, value in (
        ("gender", "woman"),
        ("se_safety", 2),
        ("se_environment", 3),
        ("se_health", 4),
    ):
        page.check(f"#{name}-{value}")


def tab_to(page, selector: str, limit: int = 80) -> None:
    """Press Tab until the element matching `selector` has focus; its focus must show."""
    for _ in range(limit):
        page.keyboard.press("Tab")
        if page.evaluate(
            "s => !!document.activeElement && document.activeElement.matches(s)", selector
        ):
            visible = page.evaluate(
                """() => { const s = getComputedStyle(document.activeElement);
                           return s.outlineStyle !== 'none' || s.boxShadow !== 'none'; }"""
            )
            assert visible, f"focus on {selector} is not visible"
            return
    raise AssertionError(f"{selector} cannot be reached with the Tab key")


def submit(page, key: str = "Enter") -> None:
    """Press a key on the focused button or link and wait for the next page."""
    with page.expect_navigation():
        page.keyboard.press(key)


def choose(page, name: str, index: int) -> None:
    """Pick the index-th radio of a group with the keyboard (Tab in, Space, arrows)."""
    tab_to(page, f"input[name='{name}']")
    page.keyboard.press("Space")
    for _ in range(index):
        page.keyboard.press("ArrowDown")


def keyboard_baseline(page) -> None:
    tab_to(page, "#age")
    page.keyboard.type("34")
    choose(page, "gender", 0)
    for item, index in (("se_safety", 1), ("se_environment", 2), ("se_health", 3)):
        choose(page, item, index)
    tab_to(page, "button[type=submit]")
    submit(page)


def keyboard_join_and_opt_out(page, email: str | None = None) -> str:
    arm = page.locator("[data-arm]").get_attribute("data-arm")
    if email:
        choose(page, "contact", 0)
        tab_to(page, "#email")
        page.keyboard.type(email)
    tab_to(page, "form[action$='/join'] button")
    submit(page)
    assert page.locator("#joined").is_visible()
    tab_to(page, "a[href$='/opt-out']")
    submit(page)
    tab_to(page, "form[action$='/opt-out'] button")
    submit(page)
    assert "no more messages" in page.content()
    return arm


def assert_one_of_each_and_nothing_pending(pid: int, arm_key: str) -> None:
    assert _count(Assignment, Assignment.participant_id == pid) == 1
    assert _count(Event, Event.participant_id == pid, Event.kind == "exposure") == 1
    assert _count(Event, Event.participant_id == pid, Event.kind == "join") == 1
    assert _count(Event, Event.participant_id == pid, Event.kind == "opt_out") == 1
    assert (
        _count(
            OutboundMessage,
            OutboundMessage.participant_id == pid,
            OutboundMessage.status.in_(("pending", "leased")),
        )
        == 0
    )
    assert _count(OutboundMessage, OutboundMessage.participant_id == pid) >= 1  # were cancelled
    assignment = db.session.scalars(
        select(Assignment).where(Assignment.participant_id == pid)
    ).one()
    assert assignment.arm.key == arm_key
    db.session.commit()


def test_personal_link_journey_keyboard_only_without_javascript(
    browser, running, make_person, live_server
):
    p, token = make_person(running)
    pid = p.id
    context = browser.new_context(
        java_script_enabled=False, viewport={"width": 1280, "height": 900}
    )
    page = context.new_page()
    page.goto(f"{live_server.url}/p/{token}")
    assert page.locator("h1").inner_text().endswith("before we start")
    tab_to(page, "button[value=agree]")
    submit(page)
    keyboard_baseline(page)
    arm = keyboard_join_and_opt_out(page)
    page.screenshot(path=str(OUTPUT / "participant-journey-personal-done.png"), full_page=True)
    context.close()
    assert_one_of_each_and_nothing_pending(pid, arm)


def test_open_link_journey_keyboard_only_without_javascript(browser, running, live_server):
    context = browser.new_context(java_script_enabled=False)
    page = context.new_page()
    page.goto(f"{live_server.url}/p/join/{running.open_code}")
    assert _count(Participant, Participant.campaign_id == running.id) == 0
    tab_to(page, "button[value=agree]")
    submit(page)
    keyboard_baseline(page)
    arm = keyboard_join_and_opt_out(page, email="resident@example.org")
    context.close()
    db.session.commit()
    pid = db.session.scalars(
        select(Participant.id).where(Participant.campaign_id == running.id)
    ).one()
    assert_one_of_each_and_nothing_pending(pid, arm)


@pytest.mark.parametrize("lang", ["en", "fr", "cy"])
def test_every_page_passes_axe_and_reflows_at_320px(
    browser, axe, council, make_campaign, make_person, live_server, lang
):
    running = make_campaign(council, status="running", language=lang)
    listed = make_campaign(council, "council-consultation", status="running", language=lang)
    paused = make_campaign(council, "peer-invitation-young", status="paused", language=lang)
    _, token = make_person(running, first_name="Zoë")
    _, listed_token = make_person(
        listed,
        age=70,
        gender="woman",
        se_safety=4,
        se_environment=3,
        se_health=5,
        self_efficacy=4.0,
        neighbourhood="Riverside",
    )
    _, paused_token = make_person(paused)
    db.session.commit()
    base = live_server.url
    context = browser.new_context(viewport={"width": 320, "height": 640})
    page = context.new_page()

    def visit(path, name):
        page.goto(base + path)
        check_page(page, axe, f"{lang}-{name}")

    visit(f"/p/join/{running.open_code}", "open-consent")
    visit(f"/p/{token}", "consent")
    page.click("button[value=agree]")
    check_page(page, axe, f"{lang}-baseline")
    page.click("form button[type=submit]")  # nothing answered: the error summary
    assert page.locator(".error-summary").is_visible()
    check_page(page, axe, f"{lang}-baseline-errors")
    fill_baseline(page)
    page.click("form button[type=submit]")
    check_page(page, axe, f"{lang}-nudge")
    page.click("form[action$='/join'] button")
    check_page(page, axe, f"{lang}-joined")
    visit(f"/p/{token}/follow-up", "follow-up")
    page.click("form button[type=submit]")
    check_page(page, axe, f"{lang}-follow-up-errors")
    visit(f"/p/{token}/withdraw", "withdraw")
    visit(f"/p/{token}/opt-out", "opt-out")
    page.click("form button[type=submit]")
    check_page(page, axe, f"{lang}-opted-out")
    visit(f"/p/{listed_token}", "listed-consent")
    page.click("button[value=agree]")
    check_page(page, axe, f"{lang}-baseline-confirm")
    visit(f"/p/{paused_token}", "paused")
    visit("/p/no-such-token", "not-found")
    context.close()


def test_the_axe_check_does_catch_violations(browser, axe):
    """The harness itself: a page with a known serious violation fails the check."""
    page = browser.new_page(viewport={"width": 320, "height": 640})
    page.set_content(
        '<html lang="en"><title>t</title><main><h1>x</h1>'
        '<input type="text"><p style="color:#bbb;background:#fff">faint text</p></main></html>'
    )
    with pytest.raises(AssertionError, match="label|color-contrast"):
        check_page(page, axe, "harness-self-check")
    page.close()
