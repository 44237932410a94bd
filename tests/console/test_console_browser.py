"""The console in headless Chromium: sign in, create a campaign, edit an arm, preview it,
import participants, launch; screenshots of the main pages go to test-output/console/."""

from __future__ import annotations

from pathlib import Path

import pytest
from browser_checks import launch, needs_chromium

SHOTS = Path(__file__).resolve().parents[2] / "test-output" / "console"

pytestmark = [
    pytest.mark.browser,
    pytest.mark.slow,
    needs_chromium,
]

CSV = "external_ref,first_name,email,age,gender,se_safety,se_environment,se_health\n" + "".join(
    f"R{i:03d},Resident{i},resident{i}@example.org,{20 + i % 60},"
    f"{'woman' if i % 2 else 'man'},{1 + i % 5},{1 + (i // 5) % 5},3\n"
    for i in range(40)
)


@pytest.fixture
def browser_page(tmp_path):
    from playwright.sync_api import sync_playwright

    SHOTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as p:
        browser = launch(p)
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        try:
            yield page
        finally:
            browser.close()


def shot(page, name: str) -> None:
    page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)


def test_officer_creates_edits_previews_imports_and_launches(
    csrf_app, live_server, council, make_user, browser_page, tmp_path, console, db_session
):
    from playwright.sync_api import expect

    user = make_user(council, "admin")
    email = user.email
    db_session.commit()
    people = tmp_path / "people.csv"
    people.write_text(CSV)
    page = browser_page
    base = live_server.url

    page.goto(f"{base}/campaigns/new")
    expect(page.locator("h1")).to_have_text("Sign in to the council console")
    shot(page, "01-login")
    page.fill("#email", email)
    page.fill("#password", console.password)
    page.click("button[type=submit]")
    expect(page.locator("h1")).to_have_text("New campaign")

    page.fill("#name", "Litter pick: join your neighbours")
    page.select_option("#policy_domain", "environment")
    page.select_option("#enrolment_mode", "list")
    page.fill("#activity_name", "Saturday litter pick")
    page.fill("#activity_where", "the park gates")
    page.fill("#activity_when", "every Saturday at 10:00")
    shot(page, "02-new-campaign")
    page.click("text=Create draft")
    expect(page.locator(".flash")).to_contain_text("Draft campaign")
    expect(page.locator("body")).to_contain_text("Power estimate")
    shot(page, "03-campaign-draft")

    page.click('a[href$="/arms/message"]')
    page.fill("#arm_name", "Neighbours are joining")
    page.fill(
        "#page",
        "Dear {first_name},\n\nTwelve neighbours in {neighbourhood} already pick litter "
        "together. Join them at the {activity}, {activity_when}.",
    )
    page.fill(
        "#sms", "{council}: neighbours pick litter together. Join: {link} Stop: {opt_out_link}"
    )
    # Counted filled in: the links alone are over 120 characters (finding 4).
    expect(page.locator("#sms-count")).to_contain_text("2 fragments")
    shot(page, "04-arm-editor")
    page.click("text=Save arm")
    expect(page.locator(".flash")).to_contain_text("Arm saved")

    page.click("text=Preview messages")
    expect(page.locator("#arm-message")).to_contain_text("Neighbours are joining")
    expect(page.locator("body")).to_contain_text("Dear Alex,")
    expect(page.locator("body")).to_contain_text("Twelve neighbours in Riverside")
    shot(page, "05-preview")

    page.go_back()
    page.click('a[href$="/participants"]')
    page.set_input_files("#file", str(people))
    page.click("text=Check and import")
    expect(page.locator(".flash")).to_contain_text("Imported 40 participant(s)")
    shot(page, "06-participants")

    page.click("text=nudge · council console")
    page.click("text=Litter pick: join your neighbours")
    page.click("text=Review and launch")
    expect(page.locator("h1")).to_contain_text("Launch checklist")
    expect(page.locator("#check-participants")).to_contain_text("40 participants imported")
    shot(page, "07a-launch-checklist")
    page.check("#confirm")
    page.click("button:has-text('Launch campaign')")
    expect(page.locator(".flash[role=status]")).to_contain_text("Campaign launched")
    expect(page.locator("h1 .status")).to_have_text("running")
    shot(page, "07-campaign-running")

    page.click("text=Monitoring")
    expect(page.locator("h1")).to_contain_text("Monitoring")
    shot(page, "08-monitoring")
    page.goto(f"{base}/audit")
    expect(page.locator("body")).to_contain_text("campaign.launch")
    shot(page, "09-audit-log")
    page.goto(f"{base}/admin/tokens")
    shot(page, "10-api-tokens")
    for name in ("01-login", "03-campaign-draft", "05-preview", "06-participants"):
        assert (SHOTS / f"{name}.png").stat().st_size > 5_000
