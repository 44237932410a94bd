"""Operations endpoints: `GET /healthz` for load balancers and `GET /metrics` for Prometheus.

`/healthz` answers 200 while the database is reachable and migrated (503 otherwise) and
reports the scheduler (when it last ran, its lag) and the outbox backlog (messages due
and the age of the oldest), which a monitor can alert on without a Prometheus. The schema
revision and the database kind are shown only where `/metrics` would be (this machine,
or the metrics token), not to the public.
"""

from __future__ import annotations

from flask import Blueprint, Flask, current_app, jsonify
from sqlalchemy import text

from nudge_app.db import database_kind, utcnow
from nudge_app.extensions import db
from nudge_app.health import metrics as _metrics

bp = Blueprint("health", __name__)
bp.add_url_rule("/metrics", "metrics", _metrics.metrics)


def init_app(app: Flask) -> None:
    """Request ids, access lines and request metrics for every request."""
    from nudge_app import logs

    logs.init_app(app)
    _metrics.init_app(app)


@bp.get("/healthz")
def healthz():
    from nudge_app.delivery import queries
    from nudge_app.scheduler.heartbeat import scheduler_status

    try:
        revision = db.session.execute(text("SELECT version_num FROM alembic_version")).scalar()
        now = utcnow()
        scheduler = scheduler_status(now, float(current_app.config["SCHEDULER_STALE_SECONDS"]))
        due, oldest = queries.backlog(now)
    except Exception:  # the request's boundary rolls back (a 503)
        return jsonify({"status": "database unavailable or not migrated"}), 503
    body = {
        "status": "ok" if scheduler.ok else "scheduler not running",
        "scheduler": {
            "state": scheduler.state,
            "last_run_seconds_ago": _round(scheduler.age_seconds),
            "lag_seconds": _round(scheduler.lag_seconds),
        },
        "outbox": {
            "due": due,
            "oldest_due_age_seconds": _round((now - oldest).total_seconds() if oldest else 0.0),
        },
    }
    if _metrics.allowed():
        body["schema_revision"] = revision
        body["database"] = database_kind(str(db.engine.url))
    return jsonify(body), 200


def _round(seconds: float | None) -> float | None:
    return None if seconds is None else round(seconds, 1)
