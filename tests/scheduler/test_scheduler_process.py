"""The scheduler process: coalesced rounds after downtime, one process on SQLite, --once."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select

from nudge_app.extensions import db
from nudge_app.models import OutboundMessage, SchedulerLease
from nudge_app.scheduler import process

ROOT = Path(__file__).resolve().parents[2]


def test_jobs_are_coalesced_single_instance_with_generous_grace(app):
    from apscheduler.schedulers.background import BackgroundScheduler

    runner = process.Runner(app, tick_seconds=60)
    scheduler = process.build_scheduler(runner, BackgroundScheduler)
    scheduler.start(paused=True)  # defaults are applied to jobs when the scheduler starts
    jobs = scheduler.get_jobs()
    scheduler.shutdown(wait=False)
    assert {j.id for j in jobs} == {
        "close_campaigns", "enqueue_follow_ups", "reclaim", "dispatch", "reconcile", "heartbeat",
    }  # fmt: skip
    for job in jobs:
        assert job.coalesce is True and job.max_instances == 1
        assert job.misfire_grace_time >= 600


def test_scheduler_down_for_ten_minutes_runs_one_coalesced_round(app):
    """Every job's next run is ten minutes overdue (the process was stopped): each runs once."""
    from apscheduler.schedulers.background import BackgroundScheduler

    runner = process.Runner(app, tick_seconds=60)
    scheduler = process.build_scheduler(runner, BackgroundScheduler)
    scheduler.start(paused=True)
    try:
        overdue = datetime.now(UTC) - timedelta(minutes=10)
        for job in scheduler.get_jobs():
            job.modify(next_run_time=overdue)
        scheduler.resume()
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and len(runner.runs) < 6:
            time.sleep(0.1)
        time.sleep(1.0)  # room for any extra (uncoalesced) runs to show up
    finally:
        scheduler.shutdown(wait=True)
    assert runner.runs == {
        "close_campaigns": 1, "enqueue_follow_ups": 1, "reclaim": 1, "dispatch": 1,
        "reconcile": 1, "heartbeat": 1,
    }  # fmt: skip


def test_sqlite_lease_refuses_a_second_scheduler(app):
    if db.session.get_bind().dialect.name != "sqlite":
        assert process.acquire_singleton("a:1") is None  # PostgreSQL: several may run
        return
    assert process.acquire_singleton("otherhost:1") == "otherhost:1"
    with pytest.raises(process.SchedulerAlreadyRunning, match="only one"):
        process.acquire_singleton("otherhost:2")
    process.release_singleton("otherhost:1")
    assert process.acquire_singleton("otherhost:2") == "otherhost:2"
    process.release_singleton("otherhost:2")


def test_lease_of_a_killed_local_process_is_taken_over(app):
    if db.session.get_bind().dialect.name != "sqlite":
        pytest.skip("the scheduler lease is only used on SQLite")
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    import socket

    owner = f"{socket.gethostname()[:60]}:{dead.pid}"
    db.session.add(
        SchedulerLease(
            name=process.LEASE_NAME, owner=owner, lease_until=datetime.now(UTC) + timedelta(hours=1)
        )
    )
    db.session.commit()
    assert process.acquire_singleton("me:1") == "me:1"


def _env(app, database_url, **extra):
    env = dict(os.environ)
    env.update(
        DATABASE_URL=database_url,
        NUDGE_INSTANCE_PATH=app.instance_path,
        SECRET_KEY=app.config["SECRET_KEY"],
        NUDGE_FILE_CHANNEL_PATH=app.config["FILE_CHANNEL_PATH"],
        NUDGE_ENV="testing",
        PYTHONPATH=str(ROOT),
        **extra,
    )
    return env


def test_second_scheduler_process_on_sqlite_refuses_to_start(app, database_url):
    if not database_url.startswith("sqlite"):
        pytest.skip("SQLite only: PostgreSQL allows several schedulers")
    nudge = [sys.executable, "-m", "nudge_app.cli"]
    env = _env(app, database_url, NUDGE_SCHEDULER_TICK_SECONDS="1")
    first = subprocess.Popen([*nudge, "scheduler"], env=env, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            db.session.commit()
            if db.session.get(SchedulerLease, process.LEASE_NAME) is not None:
                break
            time.sleep(0.2)
        else:
            pytest.fail("the first scheduler never took its lease")
        second = subprocess.run(
            [*nudge, "scheduler"], env=env, capture_output=True, text=True, timeout=60
        )
        assert second.returncode != 0
        assert "another `nudge scheduler`" in second.stderr and "Traceback" not in second.stderr
        once = subprocess.run(
            [*nudge, "scheduler", "--once"], env=env, capture_output=True, text=True, timeout=60
        )
        assert once.returncode != 0 and "already runs every tick" in once.stderr
    finally:
        first.send_signal(signal.SIGTERM)
        _, err = first.communicate(timeout=30)
    assert first.returncode == 0, err
    db.session.commit()
    assert db.session.get(SchedulerLease, process.LEASE_NAME) is None  # released on exit


def test_once_runs_one_round_and_reports(
    app, runner, council, make_campaign, catalog_path, tmp_path
):
    from nudge_app.cli import main
    from nudge_app.services import outbox

    campaign = make_campaign(council, "council-consultation")
    campaign.status = "running"
    db.session.commit()
    from nudge_app.models import Assignment, Participant
    from nudge_app.security import new_nonce, sha256_hex

    p = Participant(campaign_id=campaign.id, access_nonce=new_nonce(),
                    access_token_hash=sha256_hex(new_nonce()), email="a@example.org")  # fmt: skip
    db.session.add(p)
    db.session.flush()
    db.session.add(Assignment(participant_id=p.id, campaign_id=campaign.id,
                              arm_id=campaign.arms[0].id, method="complete", probability=0.5))  # fmt: skip
    outbox.on_launch(campaign)
    db.session.commit()
    noon = (datetime.now(UTC) + timedelta(days=1)).replace(hour=12, minute=0)
    result = runner.invoke(main, ["scheduler", "--once", "--now", noon.isoformat()])
    assert result.exit_code == 0, result.output
    assert "sent 1," in result.output
    db.session.commit()
    row = db.session.scalar(select(OutboundMessage).where(OutboundMessage.kind == "nudge"))
    assert row.status == "sent"
    bad = runner.invoke(main, ["scheduler", "--now", "2026-01-01T00:00:00"])
    assert bad.exit_code != 0 and "--now only works with --once" in bad.output
