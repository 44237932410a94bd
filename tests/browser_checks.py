"""What every headless-Chromium test shares: Debian's browser (never a downloaded one),
the mark that skips a module where it is not installed, and the checks run on each page
(axe-core's WCAG 2.x A/AA rules with no serious or critical violation; no sideways
scrolling). The `browser` and `axe` fixtures (tests/conftest.py) are built from these.
"""

from __future__ import annotations

import os

import pytest

CHROMIUM = "/usr/bin/chromium"
WCAG_TAGS = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "wcag22aa"]

needs_chromium = pytest.mark.skipif(
    not os.path.exists(CHROMIUM), reason=f"needs Debian's chromium at {CHROMIUM}"
)


def launch(playwright):
    """Headless Chromium from Debian's package, through a running sync_playwright()."""
    return playwright.chromium.launch(
        executable_path=CHROMIUM, args=["--headless", "--no-sandbox", "--disable-gpu"]
    )


def axe_violations(page, axe) -> list[str]:
    """Each serious or critical axe violation on the page, with up to three places."""
    results = axe.run(page, options={"runOnly": {"type": "tag", "values": WCAG_TAGS}})
    return [
        f"{v['id']} ({v['impact']}): {v['help']} at {[n['target'] for n in v['nodes']][:3]}"
        for v in results.response["violations"]
        if v["impact"] in ("serious", "critical")
    ]


def page_width(page) -> tuple[int, int]:
    """(the document's scroll width, the viewport's width) in CSS pixels."""
    return (
        page.evaluate("document.documentElement.scrollWidth"),
        page.evaluate("window.innerWidth"),
    )
