"""The participant pages: links, consent, baseline, nudge, join, follow-up, opt-out (issue 6)."""

from __future__ import annotations

from flask import Blueprint

bp = Blueprint("participant", __name__, template_folder="templates")
