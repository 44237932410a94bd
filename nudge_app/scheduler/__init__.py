"""The follow-up scheduler: one round of every tick (`run_once`), or the APScheduler process.

`run_once(app, now)` is what `nudge scheduler --once`, cron, the tests and the demo call;
`nudge_app.scheduler.process` runs the same ticks on intervals in a dedicated process.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from nudge_app.boundary import unit_of_work
from nudge_app.scheduler import ticks

__all__ = ["RoundResult", "run_once", "ticks"]


@dataclass
class RoundResult:
    closed: int
    enqueued: int
    reclaimed: object
    dispatched: object
    reconciled: int

    def summary(self) -> str:
        d, r = self.dispatched, self.reclaimed
        return (
            f"closed {self.closed} campaigns; enqueued {self.enqueued} follow-ups; "
            f"resolved {r.resolved} and re-queued {r.resent} interrupted sends; "
            f"sent {d.sent}, held {d.held}, retried {d.retried}, failed {d.failed}, "
            f"cancelled {d.cancelled}, expired {d.expired}; {self.reconciled} receipts"
        )


def run_once(app, now: datetime | None = None, worker: str | None = None) -> RoundResult:
    """Run every tick once, in order, at `now` (default: the real time), each one a unit
    of work (committed when it ends, so a failing tick keeps the earlier ones' work)."""

    def job(tick, *args):
        with unit_of_work():
            return tick(*args)

    with app.app_context():
        closed = job(ticks.close_campaigns, now)
        enqueued = job(ticks.enqueue_follow_ups, now)
        reclaimed = job(ticks.reclaim, now, worker)
        dispatched = job(ticks.dispatch, now, worker)
        reconciled = job(ticks.reconcile, now)
    return RoundResult(closed, enqueued, reclaimed, dispatched, reconciled)
