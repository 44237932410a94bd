"""The scheduler's heartbeat: each process records when it last ran, so others can tell.

A running `nudge scheduler` beats every few seconds with how far behind schedule its
jobs are (the lag); `nudge scheduler --once` beats once per round. The console, the
monitoring page, `/healthz` and `/metrics` read the latest beat: a scheduler that has
not beaten for SCHEDULER_STALE_SECONDS (default 2 minutes) is reported as not running,
since then no message goes out. Beats use the real clock, even when a round runs at a
simulated `now` (the demo), because they describe the process, not the campaign.
"""

from __future__ import annotations

import socket
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal

from sqlalchemy import delete, select

from nudge_app.db import dialect_insert, utcnow
from nudge_app.extensions import db
from nudge_app.models import SchedulerHeartbeat

# Roles whose beats mean "the scheduler runs" (dispatch-only workers do not enqueue
# follow-ups or close campaigns).
SCHEDULER_ROLES = ("scheduler", "once")
KEEP = timedelta(days=2)


def once_worker() -> str:
    """One row per host for `--once` rounds (cron), not one per round."""
    return f"{socket.gethostname()[:60]}:once"


def beat(worker: str, role: str, started_at: datetime, lag_seconds: float = 0.0) -> None:
    """Record a sign of life now (upsert; flushes, no commit) and forget old processes."""
    now = utcnow()
    table = SchedulerHeartbeat.__table__
    insert = dialect_insert(table, db.session.get_bind().dialect.name)
    values = {"worker": worker, "role": role, "started_at": started_at, "beat_at": now,
              "lag_seconds": round(max(lag_seconds, 0.0), 3)}  # fmt: skip
    db.session.execute(
        insert.values(**values).on_conflict_do_update(
            index_elements=[table.c.worker],
            set_={"beat_at": now, "lag_seconds": values["lag_seconds"], "role": role},
        )
    )
    db.session.execute(delete(SchedulerHeartbeat).where(SchedulerHeartbeat.beat_at < now - KEEP))


State = Literal["running", "late", "never"]


@dataclass(frozen=True)
class SchedulerStatus:
    state: State
    last_beat_at: datetime | None = None
    age_seconds: float | None = None
    lag_seconds: float | None = None
    stale_after: float = 120.0

    @property
    def ok(self) -> bool:
        return self.state == "running"

    def sentence(self) -> str:
        """One sentence for an officer: when it last ran, or what is wrong."""
        if self.state == "never":
            return (
                "The scheduler has never run on this database, so no message is sent. "
                "Start it with `nudge scheduler`."
            )
        when = f"{_ago(self.age_seconds)} ({self.last_beat_at:%d %b %H:%M} UTC)"
        if self.state == "late":
            return (
                f"The scheduler last ran {when}: messages are not being sent. "
                "Check that `nudge scheduler` is running."
            )
        text = f"The scheduler last ran {_ago(self.age_seconds)}."
        if self.lag_seconds and self.lag_seconds >= 5:
            text += f" It is running {_duration(self.lag_seconds)} behind schedule."
        return text


def scheduler_status(now: datetime | None = None, stale_after: float = 120.0) -> SchedulerStatus:
    """The latest beat of a scheduler (any process) and whether it is recent enough."""
    now = now or utcnow()
    row = db.session.execute(
        select(SchedulerHeartbeat.beat_at, SchedulerHeartbeat.lag_seconds)
        .where(SchedulerHeartbeat.role.in_(SCHEDULER_ROLES))
        .order_by(SchedulerHeartbeat.beat_at.desc())
        .limit(1)
    ).first()
    if row is None:
        return SchedulerStatus("never", stale_after=stale_after)
    age = max((now - row.beat_at).total_seconds(), 0.0)
    state: State = "running" if age <= stale_after else "late"
    return SchedulerStatus(state, row.beat_at, age, row.lag_seconds, stale_after)


def _duration(seconds: float) -> str:
    seconds = int(round(seconds))
    if seconds < 90:
        return f"{seconds} s"
    if seconds < 90 * 60:
        return f"{round(seconds / 60)} minutes"
    if seconds < 36 * 3600:
        return f"{round(seconds / 3600)} hours"
    return f"{round(seconds / 86400)} days"


def _ago(seconds: float | None) -> str:
    return "just now" if not seconds or seconds < 2 else f"{_duration(seconds)} ago"
