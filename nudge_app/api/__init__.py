"""The JSON API under /api/v1 for councils' own systems (issue 5).

Every route but the OpenAPI document needs `Authorization: Bearer TOKEN` with a live
token of the council; another council's objects answer 404. Errors are JSON
`{"error": CODE, "message": TEXT, "details": ...}` (and `"field"` for a domain error).
"""

from __future__ import annotations

from flask import Blueprint

bp = Blueprint("api", __name__)

from nudge_app.api import routes  # noqa: E402,F401  (registers the views on bp)
