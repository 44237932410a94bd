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
    # What still waits after the round: (not due yet, the first due time, in paused campaigns)
    upcoming: tuple[int, datetime | None, int] = (0, None, 0)

    def summary(self) -> str:
        d, r = self.dispatched, self.reclaimed
        lines = [
            f"closed {self.closed} campaigns; enqueued {self.enqueued} follow-ups; "
            f"resolved {r.resolved} and re-queued {r.resent} interrupted sends; "
            f"sent {d.sent}, held {d.held}, retried {d.retried}, failed {d.failed}, "
            f"cancelled {d.cancelled}, expired {d.expired}; {self.reconciled} receipts"
        ]
        from nudge_app.scheduler.status import HELD_BECAUSE

        for reason, (n, until) in sorted(d.held_for.items(), key=lambda kv: kv[1][1]):
            lines.append(
                f"held {n} because of {HELD_BECAUSE.get(reason, reason)}, "
                f"until {until:%Y-%m-%d %H:%M} UTC"
            )
        later, first_due, paused = self.upcoming
        if later:
            lines.append(f"{later} messages wait; the next is due {first_due:%Y-%m-%d %H:%M} UTC")
        if paused:
            lines.append(f"{paused} wait for their paused campaign to resume")
        return "\n".join(lines)


def run_once(app, now: datetime | None = None, worker: str | None = None) -> RoundResult:
    """Run every tick once, in order, at `now` (default: the real time), each one a unit
    of work (committed when it ends, so a failing tick keeps the earlier ones' work).

    The round records a heartbeat (real time), so the console knows a scheduler ran.
    """
    from nudge_app.db import utcnow
    from nudge_app.delivery import queries
    from nudge_app.scheduler.heartbeat import beat, once_worker

    def job(tick, *args):
        with unit_of_work():
            return tick(*args)

    with app.app_context():
        started = utcnow()
        closed = job(ticks.close_campaigns, now)
        enqueued = job(ticks.enqueue_follow_ups, now)
        reclaimed = job(ticks.reclaim, now, worker)
        dispatched = job(ticks.dispatch, now, worker)
        reconciled = job(ticks.reconcile, now)
        upcoming = job(queries.upcoming, now or utcnow())
        job(beat, once_worker(), "once", started)
    return RoundResult(closed, enqueued, reclaimed, dispatched, reconciled, upcoming)
