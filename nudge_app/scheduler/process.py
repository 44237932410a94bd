"""The scheduler process: APScheduler 3 running the ticks on intervals, in its own process.

APScheduler's job store cannot be shared between processes, so jobs live in memory and
the database is the only shared state: every tick is idempotent and claims work with
leases, which is what makes several processes on one PostgreSQL database safe. SQLite
has a single writer, so there a named lease in `scheduler_lease` lets only one process
run; a second one refuses to start (a lease left by a killed process on this host is
taken over at once, any other after it expires).

Jobs are coalesced (`coalesce=True`): a process that was stopped or starved for ten
minutes runs each job once when it wakes, not once per missed interval; `max_instances=1`
keeps one run of a job at a time; the misfire grace is generous so late runs still run.
A job that overruns its interval (a long dispatch) is not reported by APScheduler's
warning on every skipped tick but by one line when it next starts, with how far behind
schedule it was (the lag); the heartbeat job records the lag in the database.
"""

from __future__ import annotations

import logging
import os
import signal
import socket
import threading
from datetime import datetime, timedelta

from sqlalchemy import delete, select

from nudge_app.boundary import unit_of_work
from nudge_app.db import utcnow
from nudge_app.extensions import db

log = logging.getLogger(__name__)

LEASE_NAME = "scheduler"
LEASE_SECONDS = 60
HEARTBEAT_SECONDS = 15
MISFIRE_GRACE_SECONDS = 900
JOB_DEFAULTS = {"coalesce": True, "max_instances": 1, "misfire_grace_time": MISFIRE_GRACE_SECONDS}


class SchedulerAlreadyRunning(RuntimeError):
    """Another scheduler holds the SQLite lease."""


def _owner() -> str:
    return f"{socket.gethostname()[:60]}:{os.getpid()}"


def _alive_here(owner: str) -> bool:
    host, _, pid = owner.rpartition(":")
    if host != socket.gethostname()[:60] or not pid.isdigit():
        return True  # another host: we cannot tell, trust the lease
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def acquire_singleton(owner: str | None = None) -> str | None:
    """On SQLite, take the scheduler lease or raise SchedulerAlreadyRunning; else no-op."""
    from nudge_app.models import SchedulerLease

    if db.session.get_bind().dialect.name != "sqlite":
        return None
    owner = owner or _owner()
    now = utcnow()
    with unit_of_work():
        lease = db.session.get(SchedulerLease, LEASE_NAME)
        if lease is not None and lease.owner != owner:
            if lease.lease_until > now and _alive_here(lease.owner):
                raise SchedulerAlreadyRunning(
                    f"another `nudge scheduler` ({lease.owner}) is running on this SQLite "
                    f"database (lease until {lease.lease_until:%H:%M:%S} UTC); SQLite allows "
                    "only one. Stop it first, or use PostgreSQL to run several."
                )
        if lease is None:
            db.session.add(
                SchedulerLease(
                    name=LEASE_NAME, owner=owner,
                    lease_until=now + timedelta(seconds=LEASE_SECONDS),
                )
            )  # fmt: skip
        else:
            lease.owner = owner
            lease.lease_until = now + timedelta(seconds=LEASE_SECONDS)
    return owner


def renew_singleton(owner: str) -> None:
    """Extend this process's lease (a job: the job's unit of work commits it)."""
    from nudge_app.models import SchedulerLease

    lease = db.session.get(SchedulerLease, LEASE_NAME)
    if lease is None or lease.owner != owner:
        raise SchedulerAlreadyRunning("the scheduler lease was taken by another process")
    lease.lease_until = utcnow() + timedelta(seconds=LEASE_SECONDS)


def release_singleton(owner: str) -> None:
    from nudge_app.models import SchedulerLease

    try:
        with unit_of_work():
            db.session.execute(
                delete(SchedulerLease).where(
                    SchedulerLease.name == LEASE_NAME, SchedulerLease.owner == owner
                )
            )
    except Exception:
        log.warning("the scheduler lease was not released: it expires by itself")


def running_scheduler() -> str | None:
    """The live process holding the SQLite lease, if any (None on PostgreSQL)."""
    from nudge_app.models import SchedulerLease

    if db.session.get_bind().dialect.name != "sqlite":
        return None
    lease = db.session.scalar(select(SchedulerLease).where(SchedulerLease.name == LEASE_NAME))
    if lease is None or lease.lease_until <= utcnow() or not _alive_here(lease.owner):
        return None
    return lease.owner


class _NoOverrunWarning(logging.Filter):
    """Drop APScheduler's "skipped: maximum number of running instances" warning, logged on
    every tick a job overruns; `Runner.on_event` says it once, with the lag."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "maximum number of running instances" not in record.getMessage()


class Runner:
    """The ticks as APScheduler jobs, each in its own app context and unit of work."""

    def __init__(self, app, tick_seconds: int | None = None, dispatch_seconds: float = 2.0):
        from nudge_app.delivery.dispatch import new_worker_id

        self.app = app
        self.tick = int(tick_seconds or app.config.get("SCHEDULER_TICK_SECONDS") or 30)
        self.dispatch_every = min(dispatch_seconds, self.tick)
        self.worker = new_worker_id()
        self.started_at = utcnow()
        self.owner: str | None = None
        self.runs: dict[str, int] = {}
        # Per job: how late its latest run started; the first run it skipped while the
        # previous one was still running (and how many it skipped since).
        self.lag: dict[str, float] = {}
        self.overdue: dict[str, tuple[datetime, int]] = {}
        self._lock = threading.Lock()

    def on_event(self, event) -> None:
        """APScheduler listener: track each job's lag; one line per overrun, not per tick."""
        from apscheduler.events import EVENT_JOB_MAX_INSTANCES

        scheduled = min(event.scheduled_run_times)
        with self._lock:
            if event.code == EVENT_JOB_MAX_INSTANCES:
                first, skipped = self.overdue.get(event.job_id, (scheduled, 0))
                self.overdue[event.job_id] = (first, skipped + 1)
                return
            first, skipped = self.overdue.pop(event.job_id, (scheduled, 0))
            lag = max((utcnow() - first).total_seconds(), 0.0)
            self.lag[event.job_id] = lag
        if skipped:
            log.warning(
                "job %s overran its interval: %d runs skipped, lag %.1f s",
                event.job_id,
                skipped,
                lag,
            )

    def current_lag(self) -> float:
        """How far behind schedule the jobs are now (seconds): the worst job's lag."""
        now = utcnow()
        with self._lock:
            waiting = [(now - first).total_seconds() for first, _ in self.overdue.values()]
            return max([0.0, *self.lag.values(), *waiting])

    def heartbeat(self) -> None:
        """A job (its unit of work commits): this process's sign of life and lag."""
        from nudge_app.scheduler.heartbeat import beat

        beat(self.worker, "scheduler", self.started_at, self.current_lag())

    def _job(self, name, func):
        def run():
            with self._lock:
                self.runs[name] = self.runs.get(name, 0) + 1
            with self.app.app_context():
                try:
                    with unit_of_work():
                        func()
                except Exception:
                    log.exception("scheduler job %s failed; it runs again next interval", name)
                finally:
                    db.session.remove()

        run.__name__ = f"nudge_{name}"
        return run

    def jobs(self) -> list[tuple[str, object, float]]:
        from nudge_app.scheduler import ticks

        # Dispatch drains for at most a few intervals, so other jobs keep their turn.
        drain = max(5.0, 3 * self.tick)
        jobs = [
            ("close_campaigns", ticks.close_campaigns, self.tick),
            # A safety net (assignment writes follow-ups already): every 5 minutes is plenty.
            ("enqueue_follow_ups", ticks.enqueue_follow_ups, max(self.tick, 300)),
            ("reclaim", lambda: ticks.reclaim(None, self.worker), self.tick),
            ("dispatch", lambda: ticks.dispatch(None, self.worker, drain), self.dispatch_every),
            ("reconcile", ticks.reconcile, max(self.tick, 60)),
            ("heartbeat", self.heartbeat, min(self.tick, HEARTBEAT_SECONDS)),
        ]
        if self.owner:
            jobs.append(("renew_lease", lambda: renew_singleton(self.owner), LEASE_SECONDS / 3))
        return jobs

    def configure(self, scheduler) -> None:
        start = datetime.now(scheduler.timezone)
        for name, func, seconds in self.jobs():
            scheduler.add_job(
                self._job(name, func),
                "interval",
                seconds=seconds,
                id=name,
                name=name,
                next_run_time=start,
                replace_existing=True,
            )


def build_scheduler(runner: Runner, scheduler_cls=None):
    """An APScheduler 3 scheduler (BlockingScheduler by default) with the runner's jobs."""
    from apscheduler.events import EVENT_JOB_MAX_INSTANCES, EVENT_JOB_SUBMITTED
    from apscheduler.executors.pool import ThreadPoolExecutor
    from apscheduler.jobstores.memory import MemoryJobStore
    from apscheduler.schedulers.blocking import BlockingScheduler

    scheduler_cls = scheduler_cls or BlockingScheduler
    scheduler = scheduler_cls(
        jobstores={"default": MemoryJobStore()},
        executors={"default": ThreadPoolExecutor(max_workers=4)},
        job_defaults=dict(JOB_DEFAULTS),
        timezone="UTC",
    )
    apscheduler_log = logging.getLogger("apscheduler.scheduler")
    if not any(isinstance(f, _NoOverrunWarning) for f in apscheduler_log.filters):
        apscheduler_log.addFilter(_NoOverrunWarning())
    scheduler.add_listener(runner.on_event, EVENT_JOB_SUBMITTED | EVENT_JOB_MAX_INSTANCES)
    runner.configure(scheduler)
    return scheduler


def run_forever(app, tick_seconds: int | None = None) -> None:
    """The `nudge scheduler` process: take the SQLite lease if needed, run until a signal."""
    runner = Runner(app, tick_seconds)
    with app.app_context():
        runner.owner = acquire_singleton()
        db.session.remove()
    scheduler = build_scheduler(runner)

    def stop(signum, frame):
        log.info("scheduler stopping (signal %s)", signum)
        scheduler.shutdown(wait=False)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    log.info("scheduler %s started: ticks every %ss", runner.worker, runner.tick)
    try:
        scheduler.start()
    finally:
        from nudge_app.delivery.channels import close_channels

        close_channels(app)
        if runner.owner:
            with app.app_context():
                release_singleton(runner.owner)
                db.session.remove()
