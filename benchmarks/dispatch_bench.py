"""Benchmark: dispatch throughput on PostgreSQL with 1, 2 and 4 worker processes, with the
fake channel (one JSON line per send), against a bare SKIP LOCKED queue consumer.

Ours: `python -m nudge_app.scheduler.worker` processes (claim straight into `sending`
with lease and fence, re-check opt-out / status / expiry / stop condition / quiet hours /
cap and render the text in the same transaction, send, fenced completion). Peer: the bare
pattern of METHODS.md in the same number of processes: claim with `FOR UPDATE SKIP
LOCKED`, write the same log line, mark sent; no re-checks, no rendering, no lookup-safe
`sending` step. The ratio shows what the safety costs (goal: >= 0.8 with 2 and 4 workers).

Both take batches of 200. Workers start first and idle; the clock starts when every row is made due at once and
stops at the last send written to the log (so process start-up is not counted).

Run: .venv/bin/python benchmarks/dispatch_bench.py [--messages N] [--workers 1,2,4]
Needs PostgreSQL (NUDGE_BENCH_DATABASE_URL, default postgresql://postgres@127.0.0.1/postgres).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import signal
import subprocess
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path[:0] = [str(ROOT), str(HERE)]

BARE_WORKER = r"""
import json, os, sys, time
import psycopg
url, log = sys.argv[1], sys.argv[2]
conn = psycopg.connect(url.replace("postgresql+psycopg", "postgresql"), autocommit=False)
fd = os.open(log, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
pid = os.getpid()
idle = None
worked = False
while True:
    rows = conn.execute(
        "WITH c AS (SELECT id FROM outbound_message WHERE status = 'pending' AND due_at <= now() "
        "ORDER BY due_at, id LIMIT 200 FOR UPDATE SKIP LOCKED) "
        "UPDATE outbound_message m SET status = 'leased', lease_owner = %s, "
        "lease_until = now() + interval '120 seconds', fence = m.fence + 1 "
        "FROM c WHERE m.id = c.id RETURNING m.id, m.fence", (str(pid),)).fetchall()
    conn.commit()
    if not rows:
        idle = idle or time.monotonic()
        if worked and time.monotonic() - idle > 3:
            break
        time.sleep(0.2)
        continue
    idle, worked = None, True
    for mid, fence in rows:
        line = json.dumps({"reference": f"nudge-{mid}", "message_id": mid, "pid": pid,
                           "at": __import__("datetime").datetime.now(
                               __import__("datetime").UTC).isoformat()}) + "\n"
        os.write(fd, line.encode())
    with conn.cursor() as cur:
        cur.executemany("UPDATE outbound_message SET status = 'sent', sent_at = now() "
                        "WHERE id = %s AND fence = %s", rows)
    conn.commit()
"""

OUR_WORKER = r"""
from nudge_app.scheduler.worker import minimal_app, run
run(minimal_app(), stop_after_idle=3)
"""


def _reset(url: str) -> None:
    import psycopg

    with psycopg.connect(url.replace("postgresql+psycopg", "postgresql")) as conn:
        conn.execute(
            "UPDATE outbound_message SET status = 'pending', fence = 0, attempts = 0, "
            "lease_owner = NULL, lease_until = NULL, sent_at = NULL, completed_at = NULL, "
            "provider = NULL, provider_reference = NULL, provider_message_id = NULL, "
            "error_kind = NULL, last_error = NULL, due_at = now() + interval '1 day'"
        )


def _make_due(url: str) -> float:
    import psycopg

    with psycopg.connect(url.replace("postgresql+psycopg", "postgresql")) as conn:
        conn.execute("UPDATE outbound_message SET due_at = now() - interval '1 second'")
        conn.commit()
    return time.time()


def _run(kind: str, url: str, workers: int, messages: int, tmp: Path) -> tuple[float, float]:
    """(messages per second, CPU microseconds per message spent in the worker processes)."""
    _reset(url)
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    log = tmp / f"{kind}-{workers}.jsonl"
    env = dict(os.environ)
    env.update(
        DATABASE_URL=url, NUDGE_INSTANCE_PATH=str(tmp), SECRET_KEY="bench-secret-key-" + "x" * 20,
        NUDGE_ENV="testing", PYTHONPATH=str(ROOT), NUDGE_EMAIL_CHANNEL="fakelog",
        NUDGE_SMS_CHANNEL="fakelog", NUDGE_FAKE_CHANNEL_LOG=str(log),
    )  # fmt: skip
    code = OUR_WORKER if kind == "nudge" else BARE_WORKER
    procs = [
        subprocess.Popen([sys.executable, "-c", code, url, str(log)], env=env)
        for _ in range(workers)
    ]
    time.sleep(12 if kind == "nudge" else 4)  # let every process start and idle
    t0 = _make_due(url)
    for p in procs:
        p.wait(timeout=1800)
    lines = [json.loads(x) for x in log.read_text().splitlines() if x.strip()]
    assert len({x["reference"] for x in lines}) == messages, (kind, len(lines))
    last = max(datetime.fromisoformat(x["at"]) for x in lines)
    elapsed = last.timestamp() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)
    return messages / elapsed, 1e6 * cpu / messages


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--messages", type=int, default=20_000)
    parser.add_argument("--workers", default="1,2,4")
    args = parser.parse_args()
    counts = [int(w) for w in args.workers.split(",")]

    from _pgbench import fresh_database, seed_campaign

    from nudge_app import create_app
    from nudge_app.extensions import db

    with fresh_database("nudge_dispatch_bench") as url, tempfile.TemporaryDirectory() as tmp:
        app = create_app({"SQLALCHEMY_DATABASE_URI": url, "INSTANCE_PATH": tmp,
                          "SECRET_KEY": "bench-secret-key-" + "x" * 20})  # fmt: skip
        with app.app_context():
            seed_campaign(db, participants=args.messages, follow_ups=False, due_now=True)
            db.session.remove()
            db.engine.dispose()
        print(f"dispatch of {args.messages:,} messages, fake channel, PostgreSQL, "
              f"{os.cpu_count()} cores; load average {os.getloadavg()[0]:.1f}")  # fmt: skip
        print(f"{'workers':>8} {'nudge msg/s':>12} {'bare queue msg/s':>17} {'ratio':>6}"
              f"   worker CPU per message, nudge / bare (start-up included)")  # fmt: skip
        for n in counts:
            ours, ours_cpu = _run("nudge", url, n, args.messages, Path(tmp))
            bare, bare_cpu = _run("bare", url, n, args.messages, Path(tmp))
            print(f"{n:>8} {ours:>12,.0f} {bare:>17,.0f} {ours / bare:>6.2f}"
                  f"   {ours_cpu:,.0f} / {bare_cpu:,.0f} us", flush=True)  # fmt: skip
        print(f"load average at the end {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    signal.signal(signal.SIGINT, signal.default_int_handler)
    main()
