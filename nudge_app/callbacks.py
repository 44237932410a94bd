"""`POST /callbacks/notify`: GOV.UK Notify's delivery receipts, applied to the outbox.

Notify POSTs a receipt with our bearer token (`NOTIFY_CALLBACK_TOKEN`; unset turns the
endpoint off) when a message is delivered or finally fails, and retries it, so recording
one is idempotent (`nudge_app.delivery.receipts.record_receipt`). Registered at
`/callbacks`, CSRF-exempt: the bearer token is the credential.
"""

from __future__ import annotations

import hmac
import logging
from datetime import UTC, datetime

from flask import Blueprint, current_app, jsonify, request

from nudge_app.delivery.receipts import RECEIPT_STATUSES, record_receipt

log = logging.getLogger(__name__)

bp = Blueprint("callbacks", __name__)


@bp.post("/notify")
def notify_callback():
    """GOV.UK Notify delivery receipt (bearer token NOTIFY_CALLBACK_TOKEN)."""
    if not current_app.config.get("NOTIFY_CALLBACK_TOKEN"):
        return jsonify(error="not_configured", message="Notify callbacks are not enabled"), 404
    if not _authorized():
        return jsonify(error="unauthorized", message="missing or wrong bearer token"), 401
    data = request.get_json(silent=True)
    if not isinstance(data, dict) or not isinstance(data.get("status"), str):
        return jsonify(error="bad_request", message="a JSON object with a status is needed"), 400
    status = data["status"]
    if status not in RECEIPT_STATUSES:
        return jsonify(error="bad_request", message=f"unknown status {status[:40]!r}"), 400
    at = _parse_time(data.get("completed_at")) or _parse_time(data.get("sent_at"))
    outcome = record_receipt(data.get("reference"), data.get("id"), status, at)
    if outcome == "unknown reference":
        log.info("Notify receipt for an unknown message ignored")
    return jsonify(result=outcome), 200


def _authorized() -> bool:
    token = current_app.config.get("NOTIFY_CALLBACK_TOKEN")
    if not token:
        return False
    given = request.headers.get("Authorization", "")
    return hmac.compare_digest(given.encode(), f"Bearer {token}".encode())


def _parse_time(text) -> datetime | None:
    if not text:
        return None
    try:
        value = datetime.fromisoformat(str(text).replace("Z", "+00:00"))
    except ValueError:
        return None
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value
