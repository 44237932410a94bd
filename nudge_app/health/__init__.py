"""`GET /healthz`: liveness with the schema revision and the database kind."""

from __future__ import annotations

from flask import Blueprint, jsonify
from sqlalchemy import text

from nudge_app.db import database_kind
from nudge_app.extensions import db

bp = Blueprint("health", __name__)


@bp.get("/healthz")
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
