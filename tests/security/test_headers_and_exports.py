"""Findings: no Content-Security-Policy anywhere, participant and report pages could be
framed, exports lacked `Cache-Control: no-store`, participant pages (tokens in their URLs)
lacked a Referrer-Policy, production lacked HSTS; and an arm or stratum label starting
with `=` reached the report CSV as a live formula. Replayed over HTTP, and in Chromium for
the policy itself (no page of ours breaks it)."""

from __future__ import annotations

import csv
import io
import shutil

import pytest
import requests
from security_helpers import browser_sign_in, populated_campaign


def _check(response: requests.Response, *, private: bool, store: bool = False) -> None:
    h = response.headers
    csp = h["Content-Security-Policy"]
    assert "frame-ancestors 'none'" in csp and "object-src 'none'" in csp
    assert "unsafe-inline" not in csp and "script-src 'self'" in csp
    assert h["X-Frame-Options"] == "DENY"
    assert h["X-Content-Type-Options"] == "nosniff"
    assert h["Referrer-Policy"] == ("no-referrer" if private else "same-origin")
    if not store:
        assert h["Cache-Control"] == "no-store"


def test_every_kind_of_page_and_export_carries_the_headers(
    app, served, council, make_campaign, staff, api_token
):
    from nudge_app.services import enrolment

    campaign, people = populated_campaign(app, council, make_campaign)
    user = staff("testshire", "admin")
    headers = api_token(council)
    browser, _ = browser_sign_in(served, user.email)
    slug = campaign.slug
    console = [
        "/", f"/campaigns/{slug}", f"/campaigns/{slug}/monitor", f"/reports/{slug}",
        f"/reports/{slug}.json", f"/reports/{slug}.csv", f"/campaigns/{slug}/participants.csv",
        "/audit.csv", f"/campaigns/{slug}/record-of-processing.md", "/admin/subject-access",
    ]  # fmt: skip
    for path in console:
        response = browser.get(served + path, timeout=30)
        assert response.status_code == 200, path
        _check(response, private=False)
    _check(requests.get(f"{served}/login", timeout=10), private=False)
    for path in (f"/p/{enrolment.token_of(people[0])}", f"/p/join/{campaign.open_code}", "/p/nope"):
        response = requests.get(served + path, timeout=10)
        _check(response, private=True)
    api = requests.get(f"{served}/api/v1/campaigns/{slug}/report", headers=headers, timeout=30)
    assert api.status_code == 200
    _check(api, private=False)
    static = requests.get(f"{served}/console-static/console.css", timeout=10)
    _check(static, private=False, store=True)
    assert static.headers.get("Cache-Control") != "no-store"
    # The report sits in the console's frame with its rules in a stylesheet: no inline style.
    report = browser.get(f"{served}/reports/{slug}", timeout=30)
    assert "<style" not in report.text and "/reports/static/report.css" in report.text
    sheet = requests.get(f"{served}/reports/static/report.css", timeout=10)
    assert sheet.status_code == 200 and ".forest .ci" in sheet.text


def test_production_sends_hsts_and_moves_plain_http_to_https(app, council):
    app.config["FORCE_HTTPS"] = True
    from nudge_app.headers import init_headers

    fresh = type(app)(app.import_name)
    fresh.config.update(app.config)
    init_headers(fresh)
    fresh.add_url_rule("/x", "x", lambda: "ok")
    client = fresh.test_client()
    plain = client.get("/x")
    assert plain.status_code == 302 and plain.headers["Location"].startswith("https://")
    secure = client.get("/x", base_url="https://nudge.example")
    assert secure.status_code == 200
    assert secure.headers["Strict-Transport-Security"].startswith("max-age=31556926")
    assert client.get("/x", headers={"X-Forwarded-Proto": "https"}).status_code == 200


@pytest.mark.browser
def test_no_page_breaks_the_content_security_policy_in_a_browser(
    app, served, council, make_campaign, staff
):
    if not shutil.which("chromium"):
        pytest.skip("Chromium is not installed (apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    from nudge_app.services import enrolment

    campaign, people = populated_campaign(app, council, make_campaign)
    user = staff("testshire", "admin")
    token = enrolment.token_of(people[-1])
    slug = campaign.slug
    with sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=shutil.which("chromium"))
        page = chromium.new_page()
        violations = []
        page.on(
            "console",
            lambda m: violations.append(m.text) if "Content Security Policy" in m.text else None,
        )
        page.goto(f"{served}/login")
        page.fill("#email", user.email)
        page.fill("#password", "correct horse battery staple")
        page.click("button[type=submit]")
        for path in (f"/campaigns/{slug}", f"/campaigns/{slug}/monitor",
                     f"/campaigns/{slug}/arms/control", f"/campaigns/{slug}/edit",
                     f"/reports/{slug}", "/admin/users", f"/p/{token}"):  # fmt: skip
            page.goto(served + path)
        # The report's forest plot is styled (its <style> ran): the interval lines are blue.
        page.goto(f"{served}/reports/{slug}")
        stroke = page.evaluate("getComputedStyle(document.querySelector('.forest .ci')).stroke")
        assert stroke in ("rgb(29, 112, 184)", "rgb(11, 12, 12)", "rgb(181, 129, 0)")
        # The SMS counter script (a static file) still runs on the arm editor.
        page.goto(f"{served}/campaigns/{slug}/arms/control")
        chromium.close()
    assert violations == []


def test_formula_labels_are_neutralised_in_every_csv_export(
    app, served, council, make_campaign, staff
):
    """Stratum levels that start with `=`, `@` or `-` reach the report and the exports."""
    from experiments.design import load_design

    design = load_design("experiments/catalog/council-consultation.toml")
    design.randomization.strata[0].labels = ["@SUM(1)", "=1+1", "-2+3"]
    design.arms[1].name = '=HYPERLINK("http://evil.example","click")'
    campaign, _ = populated_campaign(app, council, make_campaign, design=design)
    user = staff("testshire", "admin")
    browser, _ = browser_sign_in(served, user.email)

    def cells(path):
        response = browser.get(served + path, timeout=30)
        assert response.status_code == 200, path
        return [c for row in csv.reader(io.StringIO(response.text, newline="")) for c in row]

    def live(cell: str) -> bool:  # what a spreadsheet would run
        from experiments.csv_cells import is_formula

        return is_formula(cell)

    report = cells(f"/reports/{campaign.slug}.csv")
    assert {"'@SUM(1)", "'=1+1", "'-2+3"} <= set(report)
    participants = cells(f"/campaigns/{campaign.slug}/participants.csv")
    assert any("@SUM(1)" in c or "=1+1" in c for c in participants)
    audit = cells("/audit.csv")
    assert any("HYPERLINK" in c for c in audit)  # the campaign's creation, with the arm name
    for found in (report, participants, audit):
        assert not [c for c in found if live(c)]
