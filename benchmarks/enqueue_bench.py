"""Benchmark: time to enqueue one follow-up step for 1,000,000 participants on PostgreSQL,
against the ORM way (one OutboundMessage object per participant, `add_all` + flush),
measured on a sample and scaled to the same number.

Ours: `nudge_app.services.outbox.enqueue_step`, one INSERT ... SELECT with due and expiry
computed in SQL from each assignment time (the outbox has no foreign keys: PostgreSQL's
per-row checks were two thirds of the time), tried first without ON CONFLICT (whose
speculative insertion cost a quarter of the time) and repeated with ON CONFLICT DO NOTHING
when a key exists. A second call (everything already enqueued) is timed too: it must insert
nothing. Goal: < 15 s.

The machine is shared, so beside wall time the script reports CPU time: the database
server process's own (from /proc, the work the statement does) plus this process's, for
ours and for the peer alike, with the load average at each measure.

Run: .venv/bin/python benchmarks/enqueue_bench.py [--participants N] [--orm-sample M]
Needs PostgreSQL (NUDGE_BENCH_DATABASE_URL, default postgresql://postgres@127.0.0.1/postgres).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path[:0] = [str(ROOT), str(HERE)]


def backend_cpu(pid: int) -> float:
    """CPU seconds (user + system) the PostgreSQL server process `pid` has used so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class Clock:
    """Wall time, and CPU time of this process plus the database server's backend."""

    def __init__(self, db):
        from sqlalchemy import text

        self.pid = db.session.execute(text("SELECT pg_backend_pid()")).scalar()

    def __enter__(self):
        self.wall, self.cpu = time.perf_counter(), time.process_time() + backend_cpu(self.pid)
        return self

    def __exit__(self, *exc):
        self.wall = time.perf_counter() - self.wall
        self.cpu = time.process_time() + backend_cpu(self.pid) - self.cpu
        self.load = os.getloadavg()[0]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--participants", type=int, default=1_000_000)
    parser.add_argument("--orm-sample", type=int, default=20_000)
    args = parser.parse_args()

    from _pgbench import fresh_database, seed_campaign
    from sqlalchemy import delete, func, select

    from nudge_app import create_app
    from nudge_app.db import utcnow
    from nudge_app.extensions import db
    from nudge_app.models import Assignment, OutboundMessage
    from nudge_app.services import outbox

    with fresh_database("nudge_enqueue_bench") as url, tempfile.TemporaryDirectory() as tmp:
        app = create_app({"SQLALCHEMY_DATABASE_URI": url, "INSTANCE_PATH": tmp,
                          "SECRET_KEY": "bench-secret-key-" + "x" * 20})  # fmt: skip
        with app.app_context():
            t = time.perf_counter()
            campaign = seed_campaign(db, participants=args.participants, follow_ups=True,
                                     due_now=False)  # fmt: skip
            print(f"seeded {args.participants:,} participants in {time.perf_counter() - t:.0f} s; "
                  f"{os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f}")  # fmt: skip
            step = campaign.follow_up_steps[0]

            with Clock(db) as ours:
                n = outbox.enqueue_step(campaign, step)
                db.session.commit()
            assert n == args.participants, n
            with Clock(db) as repeat:
                again = outbox.enqueue_step(campaign, step)
                db.session.commit()
            assert again == 0

            # Peer: ORM objects, one per participant, on a sample, scaled up.
            db.session.execute(delete(OutboundMessage))
            db.session.commit()
            sample = list(
                db.session.execute(
                    select(Assignment.participant_id, Assignment.arm_id, Assignment.assigned_at)
                    .order_by(Assignment.participant_id)
                    .limit(args.orm_sample)
                )
            )
            clock = Clock(db).__enter__()
            offset = timedelta(hours=step.offset_hours)
            expiry = timedelta(hours=step.offset_hours + step.expires_after_hours)
            db.session.add_all(
                OutboundMessage(
                    campaign_id=campaign.id, participant_id=pid, arm_id=arm, step_id=step.id,
                    kind=step.kind, channel=step.channel, due_at=at + offset,
                    expires_at=at + expiry, created_at=utcnow(),
                    idempotency_key=outbox.idempotency_key(campaign.id, step.key, pid,
                                                           step.channel),
                )
                for pid, arm, at in sample
            )  # fmt: skip
            db.session.commit()
            clock.__exit__()
            scale = args.participants / len(sample)
            count = db.session.scalar(select(func.count()).select_from(OutboundMessage))
            assert count == len(sample)
            db.session.remove()
            db.engine.dispose()
    orm_wall, orm_cpu = clock.wall * scale, clock.cpu * scale
    print(f"enqueue one follow-up for {args.participants:,} participants (PostgreSQL), "
          "wall / CPU (this process + the server's backend):")  # fmt: skip
    print(f"  nudge enqueue_step (INSERT ... SELECT):   {ours.wall:7.1f} s / {ours.cpu:6.1f} s CPU"
          f"  (load {ours.load:.1f})")  # fmt: skip
    print(f"  repeated (all present, inserts nothing):  {repeat.wall:7.1f} s / "
          f"{repeat.cpu:6.1f} s CPU  (load {repeat.load:.1f})")  # fmt: skip
    print(f"  ORM add_all, {args.orm_sample:,} rows scaled to {args.participants:,}: "
          f"{orm_wall:7.1f} s / {orm_cpu:6.1f} s CPU  (load {clock.load:.1f})")  # fmt: skip
    print(f"  ratio nudge / ORM: wall {ours.wall / orm_wall:.3f}, CPU {ours.cpu / orm_cpu:.3f}; "
          f"goal < 15 s: wall {'met' if ours.wall < 15 else 'not met'}, CPU "
          f"{'met' if ours.cpu < 15 else 'not met'}; load average {os.getloadavg()[0]:.1f}")  # fmt: skip


if __name__ == "__main__":
    main()
