"""A visible scheduler: its heartbeat in the database, its lag, one line per overrun, and
`--once` saying why messages wait and until when."""

from __future__ import annotations

import logging
import threading
import time
from datetime import UTC, datetime, timedelta

from nudge_app.extensions import db
from nudge_app.models import SchedulerHeartbeat
from nudge_app.scheduler import heartbeat, process


def test_status_says_never_then_running_then_late(app):
    assert heartbeat.scheduler_status().state == "never"
    assert "never run" in heartbeat.scheduler_status().sentence()
    started = datetime.now(UTC)
    heartbeat.beat("host:1:abc", "scheduler", started, lag_seconds=42.0)
    db.session.commit()
    status = heartbeat.scheduler_status(stale_after=120)
    assert status.state == "running" and status.ok and status.lag_seconds == 42.0
    assert "last ran just now" in status.sentence() and "42 s behind" in status.sentence()
    later = datetime.now(UTC) + timedelta(minutes=14)
    late = heartbeat.scheduler_status(later, stale_after=120)
    assert late.state == "late" and not late.ok
    assert "last ran 14 minutes ago" in late.sentence()
    assert "not being sent" in late.sentence()


def test_a_dispatch_worker_does_not_count_as_the_scheduler(app):
    heartbeat.beat("host:2:w", "worker", datetime.now(UTC))
    db.session.commit()
    assert heartbeat.scheduler_status().state == "never"


def test_the_scheduler_process_beats_with_its_lag(app):
    from apscheduler.schedulers.background import BackgroundScheduler

    runner = process.Runner(app, tick_seconds=1)
    scheduler = process.build_scheduler(runner, BackgroundScheduler)
    scheduler.start()
    try:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            db.session.commit()
            row = db.session.get(SchedulerHeartbeat, runner.worker)
            if row is not None:
                break
            time.sleep(0.2)
    finally:
        scheduler.shutdown(wait=True)
    assert row is not None, "no heartbeat within 20 s"
    assert row.role == "scheduler" and row.lag_seconds >= 0
    assert heartbeat.scheduler_status().state == "running"


def test_an_overrun_is_one_line_with_the_lag(app, caplog):
    from apscheduler.schedulers.background import BackgroundScheduler

    runner = process.Runner(app, tick_seconds=60)
    scheduler = process.build_scheduler(runner, BackgroundScheduler)
    for job in scheduler.get_jobs():
        job.remove()  # only the slow job below
    release = threading.Event()
    runs = []

    def slow():
        runs.append(time.monotonic())
        if len(runs) == 1:
            release.wait(3)

    scheduler.add_job(slow, "interval", seconds=0.25, id="slow", **process.JOB_DEFAULTS)
    with caplog.at_level(logging.INFO):
        scheduler.start()
        try:
            deadline = time.monotonic() + 15
            while time.monotonic() < deadline and len(runs) < 2:
                time.sleep(0.05)
        finally:
            scheduler.shutdown(wait=True)
    assert len(runs) >= 2
    skipped = [r for r in caplog.records if "maximum number of running instances" in r.message]
    assert skipped == []  # APScheduler's per-tick warning is gone
    (line,) = [r for r in caplog.records if "overran its interval" in r.message]
    assert "slow" in line.message and "lag" in line.message
    assert runner.lag["slow"] >= 2.0  # it waited behind the 3 s run
