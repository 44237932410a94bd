"""The JSON API under /api/v1 for councils' own systems.

Every route but the OpenAPI document needs `Authorization: Bearer TOKEN` with a live
token of the council; another council's objects answer 404. Errors are JSON
`{"error": CODE, "message": TEXT, "details": ...}` (and `"field"` for a domain error).
"""

from __future__ import annotations

from nudge_app.api.routes import bp

__all__ = ["bp"]
