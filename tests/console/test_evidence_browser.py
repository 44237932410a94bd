"""'What has worked' in headless Chromium: a designer imports another council's results
pack through the page, the pooled table and the forest plot appear, axe-core (WCAG 2.x A/AA)
finds no serious or critical violation, and the strict CSP reports nothing blocked.
Screenshots go to test-output/console/evidence-*.png."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest
from browser_checks import WCAG_TAGS, launch, needs_chromium

SHOTS = Path(__file__).resolve().parents[2] / "test-output" / "console"

pytestmark = [
    pytest.mark.browser,
    needs_chromium,
]


def pack() -> dict:
    def arm(mechanism, effect, se, n=400):
        return {
            "mechanism": mechanism,
            "control": mechanism == "control",
            "outcome": "joined",
            "effect": effect,
            "std_error": se,
            "n": n,
            "population": {"age": {"18-34": 120, "35-54": 140, "55+": 140, "missing": 0}},
        }

    base = {
        "policy_domain": "environment",
        "activity_kind": "clean-up",
        "started": "2026-01",
        "closed": "2026-03",
        "bands": {"age": ["18-34", "35-54", "55+"]},
        "arms": [],
    }
    campaigns = []
    for peer, efficacy in ((0.031, 0.012), (0.045, 0.020), (0.018, -0.004)):
        c = copy.deepcopy(base)
        c["arms"] = [
            arm("control", None, None),
            arm("peer", peer, 0.011),
            arm("self-efficacy", efficacy, 0.012),
        ]
        campaigns.append(c)
    return {
        "schema": "nudge-results-pack",
        "schema_version": "1.0",
        "exported": "2026-04",
        "campaigns": campaigns,
    }


def test_what_has_worked_imports_pools_and_passes_axe(
    csrf_app, live_server, council, make_user, console, db_session, tmp_path
):
    sync_api = pytest.importorskip("playwright.sync_api")
    axe_module = pytest.importorskip("axe_playwright_python.sync_playwright")
    user = make_user(council, "designer")
    email = user.email
    db_session.commit()
    path = tmp_path / "other-council-pack.json"
    path.write_text(json.dumps(pack()))
    SHOTS.mkdir(parents=True, exist_ok=True)
    blocked: list[str] = []
    with sync_api.sync_playwright() as p:
        browser = launch(p)
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        page.on(
            "console",
            lambda m: blocked.append(m.text) if "Content Security Policy" in m.text else None,
        )
        expect = sync_api.expect
        page.goto(f"{live_server.url}/evidence")
        page.fill("#email", email)
        page.fill("#password", console.password)
        page.click("button[type=submit]")
        expect(page.locator("h1")).to_have_text("What has worked")
        expect(page.locator("body")).to_contain_text("No effects to pool yet")
        page.set_input_files("#pack", str(path))
        page.click("text=Check and import")
        expect(page.locator(".flash")).to_contain_text("Imported the results pack")
        expect(page.locator("svg.forest-plot")).to_have_count(1)
        table = page.locator("table").first
        expect(table).to_contain_text("peer")
        expect(table).to_contain_text("self-efficacy")
        assert page.locator("svg.forest-plot polygon.pooled").count() == 2
        assert page.locator("svg.forest-plot line.prediction").count() == 2
        # the stylesheet reached the plot: the pooled diamond is filled, not default black-less
        fill = page.eval_on_selector("svg.forest-plot .ci", "e => getComputedStyle(e).stroke")
        assert fill == "rgb(29, 112, 184)"
        page.screenshot(path=str(SHOTS / "evidence-what-has-worked.png"), full_page=True)
        results = axe_module.Axe().run(
            page, options={"runOnly": {"type": "tag", "values": WCAG_TAGS}}
        )
        bad = [
            f"{v['id']} ({v['impact']}): {v['help']}"
            for v in results.response["violations"]
            if v["impact"] in ("serious", "critical")
        ]
        assert not bad, bad
        # a malformed pack: every problem listed, nothing imported
        spoiled = pack()
        spoiled["campaigns"][0]["arms"][1]["std_error"] = -0.01
        path.write_text(json.dumps(spoiled))
        page.set_input_files("#pack", str(path))
        page.click("text=Check and import")
        expect(page.locator(".problems")).to_contain_text("must be a positive number")
        page.screenshot(path=str(SHOTS / "evidence-refused-pack.png"), full_page=True)
        results = axe_module.Axe().run(
            page, options={"runOnly": {"type": "tag", "values": WCAG_TAGS}}
        )
        assert not [
            v for v in results.response["violations"] if v["impact"] in ("serious", "critical")
        ]
        browser.close()
    assert not blocked, blocked
