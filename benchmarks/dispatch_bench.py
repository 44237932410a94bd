"""Benchmark: dispatch throughput on PostgreSQL with 1, 2 and 4 worker processes, with the
fake channel (one JSON line per send), against a bare SKIP LOCKED queue consumer.

Ours: `python -m nudge_app.scheduler.worker` processes (claim straight into `sending`
with lease and fence, re-check opt-out / status / expiry / stop condition / quiet hours /
cap in the same transaction, render the text after its commit, send, fenced completion). Peer: the bare
pattern of METHODS.md in the same number of processes: claim with `FOR UPDATE SKIP
LOCKED`, write the same log line, mark sent; no re-checks, no rendering, no lookup-safe
`sending` step. The ratio shows what the safety costs (goal: >= 0.8 with 2 and 4 workers).

Both take batches of 200. Workers start first and idle: each says it is ready (with the
CPU its start-up took) the first time it finds nothing due, and the clock starts when every
one is ready and every row is made due at once; it stops at the last send written to the
log. CPU per message is the workers' and their PostgreSQL backends' (from /proc, read when
the clock starts and again when the last message is in the log): process start-up, the
idle wait for the other workers and the idle tail are counted in neither figure (start-up
is printed apart). On two shared cores throughput follows the sum of the two CPU times,
and the ratio of CPU per message is the figure the machine's load moves least.

Run: .venv/bin/python benchmarks/dispatch_bench.py [--messages N] [--workers 1,2,4]
Needs PostgreSQL (NUDGE_BENCH_DATABASE_URL, default postgresql://postgres@127.0.0.1/postgres).
"""

from __future__ import annotations

import argparse
import json
import os
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

# Both kinds of worker call this the first time they find nothing due (argv[3]: a folder).
READY = r"""
import os, resource, sys
def ready():
    r = resource.getrusage(resource.RUSAGE_SELF)
    path = os.path.join(sys.argv[3], str(os.getpid()))
    with open(path + ".tmp", "w") as fh:
        fh.write(repr(r.ru_utime + r.ru_stime))
    os.replace(path + ".tmp", path)
"""

BARE_WORKER = r"""
import json, os, sys, time
import psycopg
url, log = sys.argv[1], sys.argv[2]
conn = psycopg.connect(url.replace("postgresql+psycopg", "postgresql"), autocommit=False)
fd = os.open(log, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
pid = os.getpid()
idle = None
worked = False
started = False
while True:
    rows = conn.execute(
        "WITH c AS (SELECT id FROM outbound_message WHERE status = 'pending' AND due_at <= now() "
        "ORDER BY due_at, id LIMIT 200 FOR UPDATE SKIP LOCKED) "
        "UPDATE outbound_message m SET status = 'leased', lease_owner = %s, "
        "lease_until = now() + interval '120 seconds', fence = m.fence + 1 "
        "FROM c WHERE m.id = c.id RETURNING m.id, m.fence", (str(pid),)).fetchall()
    conn.commit()
    if not rows:
        if not started:
            ready()
            started = True
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
run(minimal_app(), stop_after_idle=3, on_ready=ready)
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


def _backends(url: str) -> list[int]:
    """Process ids of the PostgreSQL backends connected to the benchmark's database (the
    workers'), other than the asking one."""
    import psycopg

    with psycopg.connect(url.replace("postgresql+psycopg", "postgresql")) as conn:
        return [p for (p,) in conn.execute(
            "SELECT pid FROM pg_stat_activity WHERE datname = current_database() "
            "AND pid <> pg_backend_pid()")]  # fmt: skip


def _cpu(pids: list[int]) -> float:
    """CPU seconds (user + system) so far of the processes `pids`, from /proc (0 for one
    that is gone or not on this machine)."""
    total = 0.0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return total


def _run(kind: str, url: str, workers: int, messages: int, tmp: Path) -> dict:
    """Messages per second; CPU microseconds per message of the workers and of their
    database backends from the start of the clock to the last message sent (start-up,
    waiting for the others and the idle tail excluded); start-up CPU seconds per worker;
    load."""
    _reset(url)
    log = tmp / f"{kind}-{workers}.jsonl"
    ready = tmp / f"ready-{kind}-{workers}"
    ready.mkdir()
    env = dict(os.environ)
    env.update(
        DATABASE_URL=url, NUDGE_INSTANCE_PATH=str(tmp), SECRET_KEY="bench-secret-key-" + "x" * 20,
        NUDGE_ENV="testing", PYTHONPATH=str(ROOT), NUDGE_EMAIL_CHANNEL="fakelog",
        NUDGE_SMS_CHANNEL="fakelog", NUDGE_FAKE_CHANNEL_LOG=str(log),
    )  # fmt: skip
    code = READY + (OUR_WORKER if kind == "nudge" else BARE_WORKER)
    procs = [
        subprocess.Popen([sys.executable, "-c", code, url, str(log), str(ready)], env=env)
        for _ in range(workers)
    ]
    deadline = time.monotonic() + 900
    while len([f for f in os.listdir(ready) if not f.endswith(".tmp")]) < workers:
        if any(p.poll() is not None for p in procs) or time.monotonic() > deadline:
            raise SystemExit(f"{kind}: a worker exited or never became ready")
        time.sleep(0.1)
    startup = sum(float((ready / f).read_text()) for f in os.listdir(ready))
    pids = [p.pid for p in procs]
    backends = _backends(url)
    cpu0, server0 = _cpu(pids), _cpu(backends)
    t0 = _make_due(url)
    sent, read = 0, 0
    cpu1 = server1 = None
    while any(p.poll() is None for p in procs):
        if cpu1 is None:
            cpu, server = _cpu(pids), _cpu(backends)  # taken before counting: an upper bound
            try:
                with open(log, "rb") as fh:
                    fh.seek(read)
                    chunk = fh.read()
            except FileNotFoundError:  # nothing sent yet
                chunk = b""
            read += len(chunk)
            sent += chunk.count(b"\n")
            if sent >= messages:
                cpu1, server1 = cpu, server
        time.sleep(0.05)
    for p in procs:
        p.wait(timeout=1800)
    lines = [json.loads(x) for x in log.read_text().splitlines() if x.strip()]
    assert len({x["reference"] for x in lines}) == messages, (kind, len(lines))
    last = max(datetime.fromisoformat(x["at"]) for x in lines)
    elapsed = last.timestamp() - t0
    return {
        "rate": messages / elapsed, "cpu": 1e6 * (cpu1 - cpu0) / messages,
        "server": 1e6 * (server1 - server0) / messages, "startup": startup / workers,
        "load": os.getloadavg()[0],
    }  # fmt: skip


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
        print(f"{'workers':>8} {'nudge msg/s':>12} {'bare msg/s':>11} {'ratio':>6}   "
              "CPU per message, nudge / bare: workers; PostgreSQL backends; both (ratio)   "
              "start-up CPU per worker; load")  # fmt: skip
        for n in counts:
            ours = _run("nudge", url, n, args.messages, Path(tmp))
            bare = _run("bare", url, n, args.messages, Path(tmp))
            both, bare_both = ours["cpu"] + ours["server"], bare["cpu"] + bare["server"]
            print(f"{n:>8} {ours['rate']:>12,.0f} {bare['rate']:>11,.0f} "
                  f"{ours['rate'] / bare['rate']:>6.2f}   "
                  f"{ours['cpu']:,.0f} / {bare['cpu']:,.0f} us; "
                  f"{ours['server']:,.0f} / {bare['server']:,.0f} us; "
                  f"{both:,.0f} / {bare_both:,.0f} us ({bare_both / both:.2f})   "
                  f"{ours['startup']:.2f} / {bare['startup']:.2f} s; "
                  f"{ours['load']:.1f} / {bare['load']:.1f}", flush=True)  # fmt: skip
        print(f"load average at the end {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    signal.signal(signal.SIGINT, signal.default_int_handler)
    main()
