"""Delivery receipts, whatever the provider: callbacks and status checks update the outbox.

Providers' callbacks (`nudge_app.callbacks`, `POST /callbacks/<channel>`) are parsed by
the channel registered under that name into provider-neutral receipts, each recorded
here idempotently (providers retry callbacks). The scheduler's
reconcile tick asks channels that can tell (`status`) about messages still `sent` after
a while, for receipts that never came. Both only flush: the request or the job commits.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from flask import current_app
from sqlalchemy import func, select, update

from nudge_app.boundary import commit_now
from nudge_app.db import utcnow
from nudge_app.delivery.channels import Channel, Receipt, named
from nudge_app.extensions import db
from nudge_app.models import OutboundMessage
from nudge_app.services.outbox import message_id_from_reference


def record_receipt(receipt: Receipt, at: datetime | None = None) -> str:
    """Apply a receipt to its outbox row; returns what happened (for the answer).

    Final states never move again, except `sent` -> `delivered` / `failed`.
    """
    at = receipt.at or at or utcnow()
    message_id = message_id_from_reference(receipt.reference)
    where = (
        OutboundMessage.id == message_id
        if message_id is not None
        else OutboundMessage.provider_message_id == (receipt.provider_id or "")
    )
    values = {
        "status": receipt.status,
        "error_kind": receipt.error_kind if receipt.status == "failed" else None,
        "completed_at": at,
        "sent_at": func.coalesce(OutboundMessage.sent_at, at),
        "lease_owner": None,
        "lease_until": None,
    }
    if receipt.status == "delivered":
        values["delivered_at"] = at
    else:
        values["last_error"] = f"provider receipt: {receipt.detail or receipt.error_kind}"
    if receipt.provider_id:
        values["provider_message_id"] = receipt.provider_id
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
    """Ask the channels in use about messages still `sent`; returns how many changed.

    Channels that cannot tell (`status` returns None) are simply not updated.
    """
    now = now or utcnow()
    app = current_app._get_current_object()
    in_use = {(app.config.get(f"{m.upper()}_CHANNEL") or "file").lower() for m in ("email", "sms")}
    askable = sorted(n for n in in_use if type(named(app, n)).status is not Channel.status)
    if not askable:
        return 0
    rows = list(
        db.session.execute(
            select(
                OutboundMessage.id, OutboundMessage.provider, OutboundMessage.provider_message_id
            )
            .where(
                OutboundMessage.status == "sent",
                OutboundMessage.provider.in_(askable),
                OutboundMessage.provider_message_id.is_not(None),
                OutboundMessage.sent_at < now - older_than,
                OutboundMessage.sent_at > now - timedelta(days=7),
            )
            .order_by(OutboundMessage.sent_at)
            .limit(limit)
        )
    )
    commit_now()  # the read transaction must not stay open across the network calls
    changed = 0
    for row in rows:
        receipt = named(app, row.provider).status(row.provider_message_id)
        if receipt is not None:
            ours = Receipt(
                receipt.status, f"nudge-{row.id}", row.provider_message_id,
                receipt.error_kind, receipt.at, receipt.detail,
            )  # fmt: skip
            changed += record_receipt(ours, now) == "recorded"
    return changed
