"""Two `nudge demo` runs, then the platform in headless Chromium: each demo report shows
the age x self-efficacy cell table (heat maps of raw and pooled effects) and the targeting
table, each simulated campaign closes into the evidence library, and "What has worked"
pools the two. Screenshots are kept in test-output/demo-evidence-*.png."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from browser_checks import launch, needs_chromium
from sqlalchemy import select

from nudge_app.cli import main

ROOT = Path(__file__).resolve().parents[1]
OUTPUT = ROOT / "test-output"

pytestmark = [
    pytest.mark.browser,
    pytest.mark.slow,
    needs_chromium,
]


def _demo(runner, tmp_path, seed: int):
    out = tmp_path / f"demo-{seed}"
    res = runner.invoke(
        main,
        ["demo", "--no-serve", "--participants", "600", "--seed", str(seed), "--out", str(out)],
    )
    assert res.exit_code == 0, res.output
    return res.output, out


def test_two_demo_campaigns_show_cells_and_targeting_and_pool_in_the_library(
    runner, tmp_path, app, db_session, live_server
):
    sync_api = pytest.importorskip("playwright.sync_api")
    from nudge_app.models import Campaign

    _demo(runner, tmp_path, 1)
    output, out = _demo(runner, tmp_path, 2)
    assert "joined the evidence library (2 closed campaign(s) there" in output
    for folder in (tmp_path / "demo-1", out):
        report = json.loads((folder / "report.json").read_text())
        assert report["cell_model"]["moderators"] == ["age", "self_efficacy"]
        assert {c["arm"] for c in report["cells"]} and report["heterogeneity"]["tau2"] is not None
        assert len(report["targeting"]["best_arms"]) == 9
        html = (folder / "report.html").read_text()
        assert html.count('<svg class="heat"') >= 2 and "Who to target" in html
    db_session.rollback()
    campaigns = db_session.scalars(select(Campaign).order_by(Campaign.id)).all()
    assert [c.status for c in campaigns] == ["closed", "closed"]
    email = re.search(r"email:\s+(\S+)", output).group(1)
    password = re.search(r"password:\s+(\S+)", output).group(1)
    OUTPUT.mkdir(exist_ok=True)
    with sync_api.sync_playwright() as p:
        browser = launch(p)
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        expect = sync_api.expect
        page.goto(f"{live_server.url}/evidence")
        page.fill("#email", email)
        page.fill("#password", password)
        page.click("button[type=submit]")
        expect(page.locator("h1")).to_have_text("What has worked")
        row = page.locator("table").first.locator("tbody tr", has_text="self-efficacy")
        expect(row).to_have_count(1)
        cells = row.locator("td")
        expect(cells.nth(1)).to_have_text("2")  # effects pooled
        expect(cells.nth(2)).to_have_text("2")  # campaigns
        assert page.locator("svg.forest-plot polygon.pooled").count() == 1
        page.screenshot(path=str(OUTPUT / "demo-evidence-what-has-worked.png"), full_page=True)
        page.goto(f"{live_server.url}/reports/{campaigns[1].slug}")
        heat = page.locator("svg.heat")
        assert heat.count() >= 2
        heat.first.scroll_into_view_if_needed()
        expect(page.locator("body")).to_contain_text("Who to target")
        expect(page.locator("body")).to_contain_text("Beside earlier campaigns")
        page.screenshot(path=str(OUTPUT / "demo-evidence-report.png"), full_page=True)
        browser.close()
