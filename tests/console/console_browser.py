"""Helpers for the console's browser tests (imported by name: pytest puts this folder on
the path): Debian's Chromium, the two viewports, the axe check every page passes."""

from __future__ import annotations

import os
from pathlib import Path

CHROMIUM = "/usr/bin/chromium"
HAVE_CHROMIUM = os.path.exists(CHROMIUM)
OUTPUT = Path(__file__).resolve().parents[2] / "test-output"
WCAG_TAGS = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "wcag22aa"]
VIEWPORTS = {"desktop": (1280, 900), "mobile": (375, 812)}


def fresh(db_session):
    """The test's session, reading what the server committed since its last read."""
    db_session.commit()
    db_session.expire_all()
    return db_session


def check_page(page, axe, name: str, folder: str = "console-forms") -> None:
    """No serious or critical axe violation; no sideways scrolling; one h1. A screenshot
    goes to test-output/<folder>/<name>-<viewport>.png."""
    shots = OUTPUT / folder
    shots.mkdir(parents=True, exist_ok=True)
    viewport_name = getattr(page, "viewport_name", "page")
    page.screenshot(path=str(shots / f"{name}-{viewport_name}.png"), full_page=True)
    results = axe.run(page, options={"runOnly": {"type": "tag", "values": WCAG_TAGS}})
    bad = [
        f"{v['id']} ({v['impact']}): {v['help']} at {[n['target'] for n in v['nodes']][:3]}"
        for v in results.response["violations"]
        if v["impact"] in ("serious", "critical")
    ]
    assert not bad, f"{name}: " + "; ".join(bad)
    width = page.evaluate("document.documentElement.scrollWidth")
    viewport = page.evaluate("window.innerWidth")
    assert width <= viewport, f"{name}: {width}px wide in a {viewport}px viewport"
    assert page.locator("h1").count() == 1, name
