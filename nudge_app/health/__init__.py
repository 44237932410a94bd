"""`GET /healthz`: liveness with the schema revision and the database kind."""

from __future__ import annotations

from flask import Blueprint, jsonify
from sqlalchemy import text

from nudge_app.db import database_kind
from nudge_app.extensions import db
from nudge_app.headers import plain_http_allowed

bp = Blueprint("health", __name__)


@bp.get("/healthz")
@plain_http_allowed
def healthz():
    try:
        revision = db.session.execute(text("SELECT version_num FROM alembic_version")).scalar()
        status, code = "ok", 200
    except Exception:
        db.session.rollback()
        revision, status, code = None, "database unavailable or not migrated", 503
    return jsonify(
        {
            "status": status,
            "schema_revision": revision,
            "database": database_kind(str(db.engine.url)),
        }
    ), code
