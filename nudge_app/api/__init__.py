"""The JSON API under /api/v1 for councils' own systems (issue 5)."""

from __future__ import annotations

from flask import Blueprint

bp = Blueprint("api", __name__)
