"""The door page in headless Chromium at phone width (375 px): five participants checked
in (search and one tap, typed check-in code), then an attendance register uploaded (a bad
one changes nothing), axe finds no serious or critical violation, and the campaign report
counts them. Screenshots go to test-output/attendance/ (gitignored test artefacts)."""

from __future__ import annotations

from pathlib import Path

import pytest
from browser_checks import axe_violations, launch, needs_chromium
from sqlalchemy import func, select

SHOTS = Path(__file__).resolve().parents[2] / "test-output" / "attendance"

pytestmark = [pytest.mark.browser, pytest.mark.slow, needs_chromium]

NAMES = ["Sam", "Ann", "Bea", "Cal", "Dee", "Eli", "Fay", "Gus", "Hal", "Ivy"]
PEOPLE = "external_ref,first_name,email,age,gender,se_safety,se_environment,se_health\n" + "".join(
    f"R{i:03d},{name},{name.lower()}{i}@example.org,{25 + i},"
    f"{'woman' if i % 2 else 'man'},{1 + i % 5},{1 + (i // 5) % 5},3\n"
    for i, name in enumerate(NAMES * 4)
)


@pytest.fixture
def phone(tmp_path):
    from playwright.sync_api import sync_playwright

    SHOTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as p:
        browser = launch(p)
        page = browser.new_page(viewport={"width": 375, "height": 740}, is_mobile=True)
        try:
            yield page
        finally:
            browser.close()


def check(page, axe, name: str) -> None:
    page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)
    bad = axe_violations(page, axe)
    assert not bad, f"{name}: " + "; ".join(bad)
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= 375, f"{name}: {width}px wide on a 375px phone"


def test_five_check_ins_at_the_door_and_a_register_the_report_counts(
    csrf_app, live_server, council, make_user, make_campaign, phone, tmp_path, console, db_session
):
    from playwright.sync_api import expect

    from nudge_app.models import CheckIn, Participant
    from nudge_app.services.attendance import check_in_code
    from nudge_app.services.participants_import import import_csv

    axe = pytest.importorskip("axe_playwright_python.sync_playwright").Axe()
    campaign = make_campaign(council, "council-consultation", status="running")
    import_csv(campaign, PEOPLE.encode())
    user = make_user(council, "designer")
    db_session.commit()
    people = list(
        db_session.scalars(
            select(Participant)
            .where(Participant.campaign_id == campaign.id)
            .order_by(Participant.id)
        )
    )
    with csrf_app.app_context():
        codes = [check_in_code(p.id) for p in people]
    session = campaign.launched_at.date().isoformat()

    def count() -> int:
        db_session.commit()
        return db_session.scalar(
            select(func.count()).select_from(CheckIn).where(CheckIn.campaign_id == campaign.id)
        )

    page, base = phone, live_server.url
    page.goto(f"{base}/login")
    page.fill("#email", user.email)
    page.fill("#password", console.password)
    page.click("button[type=submit]")
    page.goto(f"{base}/campaigns/{campaign.slug}/attendance?session={session}")
    expect(page.locator("h1")).to_contain_text("Check-in")
    check(page, axe, "01-door")

    # three by name, one tap each
    for name in ("Ann", "Bea", "Cal"):
        page.fill("#q", name.lower())
        page.click("form[role=search] button[type=submit]")
        page.locator("button.tap").first.click()
        expect(page.locator(".flash")).to_contain_text(f"{name} checked in for {session}")
    check(page, axe, "02-after-taps")
    # two by the code on their invitation, typed as people read it out
    for code in (codes[8], codes[9]):
        page.fill("#code", code.replace("-", " ").lower())
        page.click("#code-form button[type=submit]")
        expect(page.locator(".flash")).to_contain_text("checked in")
    expect(page.locator(".here")).to_contain_text("5 checked in")
    assert count() == 5
    page.fill("#code", "ZZZZ-ZZZZ")
    page.click("#code-form button[type=submit]")
    expect(page.locator(".problems")).to_contain_text("no participant of this campaign")
    check(page, axe, "03-unknown-code")

    # a bad register (an unknown reference) changes nothing
    bad = tmp_path / "bad.csv"
    bad.write_text(f"reference,session\n{codes[5]},{session}\nNOPE-NOPE,{session}\n")
    page.set_input_files("#register", str(bad))
    page.click("text=Check and record")
    expect(page.locator(".problems")).to_contain_text("Nothing was recorded")
    expect(page.locator(".problems")).to_contain_text("NOPE-NOPE")
    check(page, axe, "04-bad-register")
    assert count() == 5
    # a good one: two codes, a list reference, a walk-in matched to nobody
    good = tmp_path / "register.csv"
    good.write_text(
        "reference,email,name\n"
        f"{codes[5]},,Eli\n{codes[6]},,Fay\nR007,,Gus\n,walk.in@example.org,Visitor\n"
    )
    page.set_input_files("#register", str(good))
    page.check("input[name=use_session]")
    page.click("text=Check and record")
    expect(page.locator(".flash")).to_contain_text("Register recorded: 3 check-in(s)")
    expect(page.locator(".flash")).to_contain_text("1 row(s) matched no participant")
    assert count() == 8
    check(page, axe, "05-register")

    page.goto(f"{base}/reports/{campaign.slug}")
    expect(page.locator("#verified-attendance")).to_contain_text(
        "8 participant(s) checked in, 8 check-in(s) at 1 session(s)"
    )
    page.screenshot(path=str(SHOTS / "06-report.png"), full_page=True)
    data = page.request.get(f"{base}/reports/{campaign.slug}.json").json()
    (attended,) = [o for o in data["outcomes"] if o["outcome"] == "attended"]
    assert attended["role"] == "secondary"
    came = sum(round(e["mean_treatment"] * e["n_treatment"]) for e in attended["effects"]) + round(
        attended["effects"][0]["mean_control"] * attended["effects"][0]["n_control"]
    )
    assert came == 8
