"""Form helpers for the participant tests (imported by name: pytest puts this folder on the path)."""

from __future__ import annotations

import re

CSRF_RE = re.compile(r'name="csrf_token" value="([^"]+)"')
FORM_KEY_RE = re.compile(r'name="form_key" value="([^"]+)"')


def csrf_of(html: str) -> str:
    match = CSRF_RE.search(html)
    assert match, "page has no CSRF token"
    return match.group(1)
