"""Effect reports of a campaign in the console: HTML, JSON, CSV (issue 4)."""

from __future__ import annotations

from flask import Blueprint

bp = Blueprint("reports", __name__)
