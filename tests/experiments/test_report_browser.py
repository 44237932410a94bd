"""The HTML report in headless Chromium: the forest plot renders (screenshot kept in
test-output/ for CI to publish)."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from browser_checks import CHROMIUM, launch

from experiments.analysis import analyze
from experiments.bands import BandSpec
from experiments.report import build_report

OUTPUT = Path(__file__).resolve().parents[2] / "test-output"


@pytest.mark.browser
@pytest.mark.skipif(
    shutil.which(CHROMIUM) is None,
    reason="needs Debian's chromium at /usr/bin/chromium (apt-get install chromium)",
)
def test_forest_plot_renders_in_headless_chromium():
    sync_api = pytest.importorskip("playwright.sync_api")
    rng = np.random.default_rng(1)
    n = 6000
    arm = rng.choice(["control", "peer", "efficacy"], n)
    age = rng.integers(18, 85, n)
    y = (rng.random(n) < 0.1 + 0.05 * (arm == "peer") * (age < 35)).astype(float)
    frame = pd.DataFrame(
        {
            "arm": arm,
            "joined": y,
            "age": age,
            "self_efficacy": rng.uniform(1, 5, n),
            "gender": rng.choice(["woman", "man"], n),
        }
    )
    result = analyze(
        frame,
        arm="arm",
        control="control",
        outcome="joined",
        moderators=[
            BandSpec("age", (35.0, 55.0), ("18-34", "35-54", "55+")),
            BandSpec("self_efficacy", (2.5, 3.5), ("low", "middle", "high")),
            BandSpec("gender"),
        ],
        preregistered=["age", "self_efficacy"],
    )
    report = build_report(
        result,
        title="Browser check",
        source="generated",
        arm_labels={
            "peer": "Peer invitation",
            "efficacy": "Your action counts",
            "control": "Usual invitation",
        },
    )
    OUTPUT.mkdir(exist_ok=True)
    page_path = OUTPUT / "report.html"
    page_path.write_text(report.to_html(), encoding="utf-8")
    shot = OUTPUT / "report-forest-plot.png"
    with sync_api.sync_playwright() as p:
        browser = launch(p)
        try:
            page = browser.new_page(viewport={"width": 1200, "height": 900})
            errors: list[str] = []
            page.on("pageerror", lambda e: errors.append(str(e)))
            page.on("requestfailed", lambda r: errors.append(r.url))
            page.goto(page_path.as_uri())
            svg = page.locator("svg.forest")
            assert svg.count() == 1
            box = svg.bounding_box()
            assert box is not None and box["width"] > 400 and box["height"] > 200
            # one interval and one point per estimate: 2 overall + 2 arms x (3 + 3 + 2) levels
            assert page.locator("svg.forest line.ci").count() == 2 + 2 * 8
            assert page.locator("svg.forest circle.pt").count() == 2 + 2 * 8
            circle = page.locator("svg.forest circle.pt").first.bounding_box()
            assert circle is not None and circle["width"] > 0
            svg.screenshot(path=str(shot))
            page.screenshot(path=str(OUTPUT / "report-page.png"), full_page=True)
            assert errors == []
        finally:
            browser.close()
    assert shot.stat().st_size > 2000
