"""Effect reports of a campaign in the console: HTML, JSON, CSV (issue 4)."""

from __future__ import annotations

from flask import Blueprint

bp = Blueprint("reports", __name__)

from nudge_app.reports import routes  # noqa: E402,F401  (attach the routes to bp)
