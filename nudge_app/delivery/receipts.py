"""Delivery receipts: GOV.UK Notify's callbacks and status checks update the outbox.

Notify POSTs a receipt (with our bearer token) when a message is delivered or finally
fails; callbacks are retried by Notify, so recording one is idempotent. The scheduler's
reconcile tick asks Notify about messages still `sent` after a while, for receipts that
never came.
"""

from __future__ import annotations

import hmac
import logging
from datetime import datetime, timedelta

from flask import current_app, jsonify, request
from sqlalchemy import func, select, update

from nudge_app.db import utcnow
from nudge_app.delivery import bp
from nudge_app.delivery.channels import provider
from nudge_app.delivery.channels.notify import FINAL_STATUSES
from nudge_app.extensions import db
from nudge_app.models import OutboundMessage
from nudge_app.services.outbox import message_id_from_reference

log = logging.getLogger(__name__)

RECEIPT_STATUSES = (*FINAL_STATUSES, "created", "sending", "pending")


def record_receipt(
    reference: str | None,
    provider_id: str | None,
    status: str,
    at: datetime | None = None,
) -> str:
    """Apply a provider status to its outbox row; returns what happened (for the answer).

    Final states never move again, except `sent` -> `delivered` / `failed`.
    """
    at = at or utcnow()
    message_id = message_id_from_reference(reference)
    where = (
        OutboundMessage.id == message_id
        if message_id is not None
        else OutboundMessage.provider_message_id == (provider_id or "")
    )
    if status not in FINAL_STATUSES:
        return "not final"
    ours, error_kind = FINAL_STATUSES[status]
    values = {
        "status": ours,
        "error_kind": error_kind,
        "completed_at": at,
        "sent_at": func.coalesce(OutboundMessage.sent_at, at),
        "lease_owner": None,
        "lease_until": None,
    }
    if ours == "delivered":
        values["delivered_at"] = at
    else:
        values["last_error"] = f"provider receipt: {status}"
    if provider_id:
        values["provider_message_id"] = provider_id
    result = db.session.execute(
        update(OutboundMessage)
        .where(where, OutboundMessage.status.in_(("sending", "sent")))
        .values(**values)
        .execution_options(synchronize_session=False)
    )
    if result.rowcount:
        return "recorded"
    exists = db.session.scalar(select(OutboundMessage.status).where(where))
    return "unknown reference" if exists is None else "already final"


def _parse_time(text) -> datetime | None:
    if not text:
        return None
    try:
        value = datetime.fromisoformat(str(text).replace("Z", "+00:00"))
    except ValueError:
        return None
    if value.tzinfo is None:
        from datetime import UTC

        value = value.replace(tzinfo=UTC)
    return value


def _authorized() -> bool:
    token = current_app.config.get("NOTIFY_CALLBACK_TOKEN")
    if not token:
        return False
    given = request.headers.get("Authorization", "")
    return hmac.compare_digest(given.encode(), f"Bearer {token}".encode())


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
    db.session.commit()
    if outcome == "unknown reference":
        log.info("Notify receipt for an unknown message ignored")
    return jsonify(result=outcome), 200


def reconcile(
    now: datetime | None = None, older_than: timedelta = timedelta(minutes=15), limit: int = 200
) -> int:
    """Ask providers that can tell (Notify) about messages still `sent`; returns updates."""
    now = now or utcnow()
    rows = list(
        db.session.execute(
            select(
                OutboundMessage.id, OutboundMessage.provider, OutboundMessage.provider_message_id
            )
            .where(
                OutboundMessage.status == "sent",
                OutboundMessage.provider == "notify",
                OutboundMessage.provider_message_id.is_not(None),
                OutboundMessage.sent_at < now - older_than,
                OutboundMessage.sent_at > now - timedelta(days=7),
            )
            .order_by(OutboundMessage.sent_at)
            .limit(limit)
        )
    )
    db.session.commit()  # end the read transaction before the network calls
    if not rows:
        return 0
    channel = provider(current_app._get_current_object(), "notify")
    changed = 0
    for row in rows:
        status = channel.status(row.provider_message_id)
        if status and status in FINAL_STATUSES:
            if (
                record_receipt(f"nudge-{row.id}", row.provider_message_id, status, now)
                == "recorded"
            ):
                changed += 1
    db.session.commit()
    return changed
