"""Crash test: 10,000 due messages, worker processes killed with SIGKILL at random moments
(at least 20 times) and restarted; every message ends final, none is missing from the
fake channel's log, and no message is sent twice (the log can be asked by reference)."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest
from sqlalchemy import func, insert, select

ROOT = Path(__file__).resolve().parents[2]
MESSAGES = 10_000
KILLS = 20
# A provider's round trip per send (seconds). Dispatch itself takes a fraction of a
# millisecond per message: without it the 10,000 sends would be over before 20 kills.
LATENCY = 0.002


def _seed(database_url: str, instance: Path) -> None:
    """A running list campaign with MESSAGES participants, each with one due nudge."""
    from experiments.design import load_design
    from nudge_app import create_app
    from nudge_app.extensions import db
    from nudge_app.models import Assignment, Campaign, Council, Participant
    from nudge_app.security import sha256_hex
    from nudge_app.services import campaigns, outbox

    app = create_app(
        {
            "ENV_NAME": "testing", "TESTING": True, "SECRET_KEY": "crash-test-secret",
            "SQLALCHEMY_DATABASE_URI": database_url, "INSTANCE_PATH": str(instance),
        }
    )  # fmt: skip
    with app.app_context():
        council = Council(slug="crashshire", name="Crashshire Council", quiet_start="00:00",
                          quiet_end="00:00", daily_message_cap=5, timezone="Europe/London")  # fmt: skip
        db.session.add(council)
        db.session.flush()
        design = load_design(str(ROOT / "experiments/catalog/council-consultation.toml"))
        design.follow_ups = []
        campaign = campaigns.create_campaign(council, design, actor="test")
        db.session.flush()
        db.session.execute(
            insert(Participant),
            [
                {"campaign_id": campaign.id, "access_nonce": f"n{i}",
                 "access_token_hash": sha256_hex(f"crash{i}"), "email": f"p{i}@example.org",
                 "first_name": f"P{i}", "consent_status": "given"}
                for i in range(MESSAGES)
            ],
        )  # fmt: skip
        ids = list(db.session.scalars(select(Participant.id).order_by(Participant.id)))
        arms = [a.id for a in campaign.arms]
        db.session.execute(
            insert(Assignment),
            [
                {"participant_id": pid, "campaign_id": campaign.id, "arm_id": arms[k % 2],
                 "method": "complete", "probability": 0.5}
                for k, pid in enumerate(ids)
            ],
        )  # fmt: skip
        c = db.session.get(Campaign, campaign.id)
        c.status = "running"
        assert outbox.on_launch(c) == MESSAGES
        db.session.commit()
        db.session.remove()
        db.engine.dispose()


def _status_counts(database_url: str) -> Counter:
    from sqlalchemy import create_engine

    from nudge_app.models import OutboundMessage

    engine = create_engine(database_url)
    try:
        with engine.connect() as conn:
            rows = conn.execute(
                select(OutboundMessage.status, func.count()).group_by(OutboundMessage.status)
            )
            return Counter(dict(rows.all()))
    finally:
        engine.dispose()


def _log(path: Path) -> list[dict]:
    if not path.exists():
        return []
    lines = path.read_bytes().split(b"\n")
    return [json.loads(line) for line in lines if line.strip()]


def _crash_run(database_url: str, tmp_path: Path, workers: int, budget: float) -> None:
    instance = tmp_path / "instance"
    instance.mkdir()
    _seed(database_url, instance)
    log_path = tmp_path / "fake-channel.jsonl"
    env = dict(os.environ)
    env.update(
        DATABASE_URL=database_url, NUDGE_INSTANCE_PATH=str(instance),
        SECRET_KEY="crash-test-secret", NUDGE_ENV="testing", PYTHONPATH=str(ROOT),
        NUDGE_EMAIL_CHANNEL="fakelog", NUDGE_SMS_CHANNEL="fakelog",
        NUDGE_FAKE_CHANNEL_LOG=str(log_path), NUDGE_DISPATCH_LEASE_SECONDS="8",
        NUDGE_DISPATCH_BATCH_SIZE="50", NUDGE_FAKE_CHANNEL_LATENCY=str(LATENCY),
    )  # fmt: skip
    command = [sys.executable, "-m", "nudge_app.scheduler.worker"]

    spawned = []

    def spawn():
        err = tmp_path / f"worker-{len(spawned)}.err"
        spawned.append(err)
        with open(err, "wb") as fh:
            return subprocess.Popen(command, env=env, stderr=fh)

    def wrote(pid: int) -> bool:
        """Has this worker written to the log lately (the tail of the file)?"""
        try:
            with open(log_path, "rb") as fh:
                fh.seek(max(0, fh.seek(0, 2) - 65536))
                return f'"pid": {pid},'.encode() in fh.read()
        except FileNotFoundError:
            return False

    rng = random.Random(20261130)
    procs = [spawn() for _ in range(workers)]
    kills = 0
    started = time.monotonic()
    try:
        while kills < KILLS and time.monotonic() - started < budget:
            # Kill a worker while it is sending: one that has written to the log lately.
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:
                busy = [k for k, p in enumerate(procs) if p.poll() is not None or wrote(p.pid)]
                if busy:
                    break
                time.sleep(0.1)
            else:
                busy = list(range(workers))
            k = rng.choice(busy)
            target = procs[k]
            time.sleep(rng.uniform(0.0, 0.6))
            if target.poll() is None:
                os.kill(target.pid, signal.SIGKILL)
                target.wait()
                kills += 1
            else:
                pytest.fail(f"worker exited by itself: {spawned[-1].read_text()[-2000:]}")
            procs[k] = spawn()
        # Let the survivors finish: reclaim resolves the killed workers' rows.
        while time.monotonic() - started < budget:
            counts = _status_counts(database_url)
            if sum(counts[s] for s in ("pending", "leased", "sending")) == 0:
                break
            time.sleep(1.0)
    finally:
        for p in procs:
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        for p in procs:
            try:
                p.wait(timeout=30)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
    elapsed = time.monotonic() - started
    print(f"{workers} workers, {kills} kills, {elapsed:.0f} s")
    counts = _status_counts(database_url)
    assert kills >= KILLS, f"only {kills} kills happened in {elapsed:.0f} s"
    assert counts == Counter({"sent": MESSAGES}), counts
    sent = Counter(r["reference"] for r in _log(log_path))
    from sqlalchemy import create_engine

    from nudge_app.models import OutboundMessage

    engine = create_engine(database_url)
    with engine.connect() as conn:
        refs = set(conn.scalars(select(OutboundMessage.provider_reference)))
    engine.dispose()
    assert len(refs) == MESSAGES
    missing = refs - set(sent)
    assert not missing, f"{len(missing)} messages missing from the channel log"
    duplicates = sum(n - 1 for n in sent.values())
    assert duplicates <= kills
    assert duplicates == 0  # the fake channel is asked by reference before any resend


@pytest.mark.slow
def test_crash_sqlite_one_worker(database_url, tmp_path):
    if not database_url.startswith("sqlite"):
        pytest.skip("the SQLite variant (the PostgreSQL one uses pg_url)")
    _crash_run(database_url, tmp_path, workers=1, budget=420)


@pytest.mark.slow
def test_crash_postgresql_four_workers(pg_url, tmp_path):
    _crash_run(pg_url, tmp_path, workers=4, budget=420)
