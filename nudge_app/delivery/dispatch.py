"""The dispatch loop: take a batch, send each message outside any transaction, record.

One batch is one transaction that claims and prepares (`manager.take`: rows end
`sending`, skipped or deferred), the sends, and one transaction that records the
outcomes (`manager.complete_batch`). `dispatch_due` repeats batches until nothing is due.
A channel that raises is treated as an ambiguous answer, so the row is never lost:
reclaim asks the provider before any resend.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from datetime import datetime, timedelta

from nudge_app.db import utcnow
from nudge_app.delivery import manager
from nudge_app.delivery.channels import Channel, ProviderReceipt, channels_for
from nudge_app.delivery.manager import (
    Claim,
    DispatchSettings,
    Ready,
    Stats,
    claim,
    complete,
    new_worker_id,
    prepare,
    reclaim_sending,
    settings_for,
)
from nudge_app.extensions import db

__all__ = [
    "Claim",
    "DispatchSettings",
    "Ready",
    "Stats",
    "claim",
    "complete",
    "dispatch_batch",
    "dispatch_due",
    "new_worker_id",
    "prepare",
    "reclaim_sending",
    "send_all",
    "settings_for",
]

log = logging.getLogger(__name__)


def _app():
    from flask import current_app

    return current_app._get_current_object()


def send_all(
    ready: list[Ready],
    now: datetime | None = None,
    settings: DispatchSettings | None = None,
    stats: Stats | None = None,
) -> Stats:
    """Send each prepared message and record the outcomes (one commit at the end)."""
    stats = stats if stats is not None else Stats()
    settings = settings or DispatchSettings()
    results: list[tuple[Ready, ProviderReceipt]] = []
    margin = timedelta(seconds=min(30.0, settings.lease_seconds / 3))
    cutoffs: dict[datetime, float] = {}  # lease_until -> last safe moment, as a timestamp
    for item in ready:
        lease_until = item.lease_until
        if now is None and lease_until is not None:
            cutoff = cutoffs.get(lease_until)
            if cutoff is None:
                cutoff = cutoffs[lease_until] = (lease_until - margin).timestamp()
            if time.time() >= cutoff:
                # Running on the real clock: never send on a lease about to run out, since
                # another worker may then take the row over and send it too. The row stays
                # `sending`; once the lease expires, reclaim asks the provider and requeues.
                stats.skipped += 1
                continue
        channel = item.channel
        try:
            result = channel.send(item.rendered)
        except Exception as exc:  # a channel bug must not lose the row: treat as ambiguous
            log.exception("channel %s raised on message %s", channel.name, item.claim.id)
            result = ProviderReceipt("ambiguous", error=f"channel error: {type(exc).__name__}")
        results.append((item, result))
    if results:
        try:
            manager.complete_batch(results, now or utcnow(), settings, stats)
            db.session.commit()
        except BaseException:
            db.session.rollback()
            raise
    return stats


def dispatch_batch(
    worker: str,
    now: datetime | None = None,
    channels: Mapping[str, Channel] | None = None,
    settings: DispatchSettings | None = None,
) -> Stats:
    """Claim, prepare, send and complete one batch."""
    settings = settings or settings_for(_app())
    channels = channels if channels is not None else channels_for(_app())
    stats = Stats()
    ready = manager.take(worker, now or utcnow(), channels, settings, stats)
    send_all(ready, now, settings, stats)
    return stats


def dispatch_due(
    worker: str | None = None,
    now: datetime | None = None,
    channels: Mapping[str, Channel] | None = None,
    settings: DispatchSettings | None = None,
    max_seconds: float | None = None,
) -> Stats:
    """Batches until nothing is due (or `max_seconds` of wall time passed)."""
    worker = worker or new_worker_id()
    settings = settings or settings_for(_app())
    channels = channels if channels is not None else channels_for(_app())
    total = Stats()
    started = time.monotonic()
    while True:
        stats = dispatch_batch(worker, now, channels, settings)
        total.add(stats)
        if stats.claimed == 0:
            break
        if max_seconds is not None and time.monotonic() - started > max_seconds:
            break
    return total
