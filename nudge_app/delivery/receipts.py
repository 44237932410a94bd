"""Delivery receipts: GOV.UK Notify's callbacks and status checks update the outbox.

Notify POSTs a receipt (`nudge_app.callbacks`) when a message is delivered or finally
fails; callbacks are retried by Notify, so recording one is idempotent. The scheduler's
reconcile tick asks Notify about messages still `sent` after a while, for receipts that
never came.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from flask import current_app
from sqlalchemy import func, select, update

from nudge_app.db import utcnow
from nudge_app.delivery.channels import provider
from nudge_app.delivery.channels.notify import FINAL_STATUSES
from nudge_app.extensions import db
from nudge_app.models import OutboundMessage
from nudge_app.services.outbox import message_id_from_reference

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
