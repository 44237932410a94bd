"""The scheduler's ticks: each one short, idempotent and safe to run in several processes.

- close_campaigns: campaigns past their end date (in the council's timezone) are closed
  and their open messages cancelled;
- enqueue_follow_ups: follow-up rows missing for recently assigned participants;
- reclaim: rows left `sending` past their lease are resolved by asking the provider;
- dispatch: due messages are claimed, re-checked and sent, batch after batch;
- reconcile: channels that can be asked (Notify) report delivery of `sent` messages.
Every tick takes an explicit `now` (the demo runs days ahead in minutes). A tick is one
job: its caller runs it in `nudge_app.boundary.unit_of_work`, which commits once at the
end; the delivery ticks also commit along the way, as their leases require.
"""

from __future__ import annotations

import logging
from datetime import date, datetime
from zoneinfo import ZoneInfo

from sqlalchemy import select

from nudge_app.db import utcnow
from nudge_app.extensions import db

log = logging.getLogger(__name__)


def close_campaigns(now: datetime | None = None) -> int:
    """Close running or paused campaigns whose end date has passed; returns how many."""
    from nudge_app.models import Campaign
    from nudge_app.services.campaigns import close_campaign
    from nudge_app.services.outbox import cancel_campaign

    now = now or utcnow()
    closed = 0
    candidates = list(
        db.session.scalars(
            select(Campaign).where(
                Campaign.status.in_(("running", "paused")), Campaign.end_date.is_not(None)
            )
        )
    )
    for campaign in candidates:
        try:
            end = date.fromisoformat(campaign.end_date)
        except ValueError:
            continue
        today = now.astimezone(ZoneInfo(campaign.council.timezone or "Europe/London")).date()
        if today > end:
            close_campaign(campaign, actor="system")
            n = cancel_campaign(campaign.id, "closed")
            log.info("campaign %s closed after its end date; %d messages cancelled",
                     campaign.id, n)  # fmt: skip
            closed += 1
    return closed


def enqueue_follow_ups(now: datetime | None = None) -> int:
    from nudge_app.services.outbox import enqueue_missing_follow_ups

    return enqueue_missing_follow_ups(now or utcnow())


def reclaim(now: datetime | None = None, worker: str | None = None):
    from nudge_app.delivery.dispatch import reclaim_sending

    return reclaim_sending(worker, now)


def dispatch(now: datetime | None = None, worker: str | None = None, max_seconds=None):
    from nudge_app.delivery.dispatch import dispatch_due

    return dispatch_due(worker, now, max_seconds=max_seconds)


def reconcile(now: datetime | None = None) -> int:
    from nudge_app.delivery.receipts import reconcile as reconcile_receipts

    return reconcile_receipts(now)
