"""Helpers for the console's browser tests (imported by name: pytest puts this folder on
the path): the two viewports and the check every page passes (the browser, axe and the
checks themselves are tests/browser_checks.py's, shared with every browser test)."""

from __future__ import annotations

import os
from pathlib import Path

from browser_checks import CHROMIUM, axe_violations, page_width

HAVE_CHROMIUM = os.path.exists(CHROMIUM)
OUTPUT = Path(__file__).resolve().parents[2] / "test-output"
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
    bad = axe_violations(page, axe)
    assert not bad, f"{name}: " + "; ".join(bad)
    width, viewport = page_width(page)
    assert width <= viewport, f"{name}: {width}px wide in a {viewport}px viewport"
    assert page.locator("h1").count() == 1, name
