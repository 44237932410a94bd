"""Benchmark: the participant's nudge page (`GET /p/<token>`) on the production server
(`nudge serve`: gunicorn, PostgreSQL) against a trivial endpoint on the same server
(`GET /p/ping`, which returns "ok" without touching the database; `/healthz`, one query,
is measured too), driven by a load generator in a second process on loopback.

Three runs of each target, closed loop at full speed (wrk, or a Python fallback):
requests per second and latency percentiles. Then the nudge page is driven at half the
trivial endpoint's rate (paced connections) and its 95th-percentile latency is reported at
that load. The goal: nudge rps >= 0.5 x trivial rps, and p95 < 25 ms at that rate. The
load average is printed with every run: on a shared machine the server, the database and
the load generator compete with other work, which the ratio (same server, same run)
mostly cancels and the latencies do not.

Run: .venv/bin/python benchmarks/nudge_page_load.py [--participants 100] [--duration 15]
Needs PostgreSQL at 127.0.0.1:5432 (user postgres; override with --pg URL) and `wrk`
(Debian: apt-get install wrk); without wrk a Python load generator is used. Rate limiting
is switched off for the run (a single load-generating address would hit the limit).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
import urllib.request
import uuid
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT))

SECRET = "benchmark-secret-key-" + "x" * 32


# --- set-up -----------------------------------------------------------------------------


def create_database(server_url: str) -> tuple[str, str]:
    import psycopg
    from sqlalchemy.engine import make_url

    from config import normalize_database_url

    name = f"nudge_bench_{uuid.uuid4().hex[:8]}"
    base = make_url(normalize_database_url(server_url))
    admin = base.set(drivername="postgresql", database="postgres")
    with psycopg.connect(admin.render_as_string(hide_password=False), autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    return name, base.set(database=name).render_as_string(hide_password=False)


def drop_database(server_url: str, name: str) -> None:
    import psycopg
    from sqlalchemy.engine import make_url

    from config import normalize_database_url

    admin = make_url(normalize_database_url(server_url)).set(
        drivername="postgresql", database="postgres"
    )
    with psycopg.connect(admin.render_as_string(hide_password=False), autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def seed(url: str, instance: str, participants: int) -> list[str]:
    """A running survey-first campaign whose residents consented, answered, were assigned."""
    from experiments.design import load_design
    from nudge_app import create_app
    from nudge_app.cli.db import upgrade
    from nudge_app.db import utcnow
    from nudge_app.extensions import db
    from nudge_app.services import campaigns, enrolment
    from nudge_app.services.councils import create_council

    upgrade(url)
    app = create_app(
        {
            "SQLALCHEMY_DATABASE_URI": url,
            "SECRET_KEY": SECRET,
            "INSTANCE_PATH": instance,
            "RATELIMIT_ENABLED": False,
        }
    )
    tokens = []
    with app.app_context():
        council = create_council("benchshire", "Benchshire Council")
        design = load_design(str(ROOT / "experiments" / "catalog" / "self-efficacy-cleanup.toml"))
        campaign = campaigns.create_campaign(council, design, actor="benchmark")
        campaigns.launch_campaign(campaign, actor="benchmark")
        db.session.commit()
        for i in range(participants):
            p = enrolment.new_participant(
                campaign,
                first_name=f"Resident{i}",
                email=f"r{i}@example.org",
                consent_status="given",
                consent_basis="consent",
                consented_at=utcnow(),
                age=18 + i % 70,
                gender=("woman", "man")[i % 2],
                se_safety=1 + i % 5,
                se_environment=1 + (i // 5) % 5,
                se_health=1 + (i // 25) % 5,
                baseline_completed_at=utcnow(),
            )
            p.self_efficacy = (p.se_safety + p.se_environment + p.se_health) / 3
            enrolment.ensure_assigned(p)
            tokens.append(enrolment.token_of(p))
        db.session.commit()
        db.engine.dispose()
    return tokens


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(url: str, instance: str, port: int, workers: int | None) -> subprocess.Popen:
    env = {
        **os.environ,
        "NUDGE_ENV": "production",
        "DATABASE_URL": url,
        "SECRET_KEY": SECRET,
        "NUDGE_INSTANCE_PATH": instance,
        "NUDGE_RATELIMIT": "false",
        "NUDGE_BASE_URL": f"http://127.0.0.1:{port}",
        "NUDGE_LOG_LEVEL": "WARNING",  # no access lines: stderr is read only on failure
    }
    cmd = [str(ROOT / ".venv" / "bin" / "nudge"), "serve", "--no-upgrade", "--port", str(port)]
    if workers:
        cmd += ["--workers", str(workers)]
    server = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.time() + 60
    while time.time() < deadline:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2) as r:
                if r.status == 200:
                    return server
        except OSError:
            time.sleep(0.3)
    server.kill()
    raise SystemExit("the server did not start: " + server.stderr.read().decode()[-2000:])


# --- load -------------------------------------------------------------------------------

WRK_SCRIPT = """
tokens = {%(tokens)s}
counter = 0
path = "%(path)s"
pace = %(pace)s
request = function()
  counter = counter + 1
  local p = path
  if p == "NUDGE" then p = "/p/" .. tokens[(counter %% #tokens) + 1] end
  return wrk.format("GET", p)
end
if pace > 0 then
  delay = function() return pace end
end
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format("RESULT %%d %%d %%.1f %%.1f %%.1f %%d\\n", summary.requests,
    summary.duration, latency:percentile(50), latency:percentile(95),
    latency:percentile(99), e.status + e.connect + e.read + e.write + e.timeout))
end
"""


def run_wrk(base: str, path: str, tokens, duration: int, connections: int, pace_ms: float = 0):
    script = WRK_SCRIPT % {
        "tokens": ",".join(f'"{t}"' for t in tokens),
        "path": path,
        "pace": int(pace_ms),
    }
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as f:
        f.write(script)
    try:
        out = subprocess.run(
            ["wrk", "-t2", f"-c{connections}", f"-d{duration}s", "-s", f.name, base],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
    finally:
        os.unlink(f.name)
    m = re.search(r"RESULT (\d+) (\d+) ([\d.]+) ([\d.]+) ([\d.]+) (\d+)", out)
    n, micros, p50, p95, p99, errors = m.groups()
    return {
        "requests": int(n),
        "rps": int(n) / (int(micros) / 1e6),
        "p50_ms": float(p50) / 1000,
        "p95_ms": float(p95) / 1000,
        "p99_ms": float(p99) / 1000,
        "errors": int(errors),
    }


PY_LOADER = textwrap.dedent(
    """
    import http.client, json, sys, threading, time
    host, port, path, duration, conns, pace, tokens = json.loads(sys.argv[1])
    lat, errors, lock = [], [0], threading.Lock()
    stop = time.perf_counter() + duration
    def worker(k):
        c = http.client.HTTPConnection(host, port, timeout=30)
        i = k
        while time.perf_counter() < stop:
            i += 1
            p = path if path != "NUDGE" else "/p/" + tokens[i % len(tokens)]
            t = time.perf_counter()
            c.request("GET", p)
            r = c.getresponse(); r.read()
            d = time.perf_counter() - t
            with lock:
                lat.append(d)
                if r.status != 200: errors[0] += 1
            if pace: time.sleep(pace / 1000)
    start = time.perf_counter()
    ts = [threading.Thread(target=worker, args=(k,)) for k in range(conns)]
    [t.start() for t in ts]; [t.join() for t in ts]
    print(json.dumps({"n": len(lat), "secs": time.perf_counter() - start,
                      "lat": sorted(lat), "errors": errors[0]}))
    """
)


def run_python(base: str, path: str, tokens, duration: int, connections: int, pace_ms=0.0):
    port = int(base.rsplit(":", 1)[1])
    args = json.dumps(["127.0.0.1", port, path, duration, connections, pace_ms, list(tokens)])
    out = subprocess.run(
        [sys.executable, "-c", PY_LOADER, args], capture_output=True, text=True, check=True
    ).stdout
    r = json.loads(out)
    lat = r["lat"]

    def pct(q):
        return lat[min(len(lat) - 1, int(q * len(lat)))] * 1000

    return {
        "requests": r["n"],
        "rps": r["n"] / r["secs"],
        "p50_ms": pct(0.50),
        "p95_ms": pct(0.95),
        "p99_ms": pct(0.99),
        "errors": r["errors"],
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument(
        "--pg",
        default=os.environ.get("NUDGE_BENCH_PG", "postgresql://postgres@127.0.0.1:5432/postgres"),
    )
    ap.add_argument("--participants", type=int, default=100)
    ap.add_argument("--duration", type=int, default=15, help="seconds per run")
    ap.add_argument("--connections", type=int, default=16)
    ap.add_argument("--repeat", type=int, default=3, help="runs per target (median kept)")
    ap.add_argument("--workers", type=int, default=None, help="gunicorn workers")
    ap.add_argument("--python-loader", action="store_true", help="do not use wrk")
    ap.add_argument(
        "--json",
        type=Path,
        default=HERE / "results" / "nudge_page_load.json",
        help="also write the figures here",
    )
    args = ap.parse_args()

    use_wrk = shutil.which("wrk") is not None and not args.python_loader
    run = run_wrk if use_wrk else run_python
    name, url = create_database(args.pg)
    instance = tempfile.mkdtemp(prefix="nudge-bench-")
    server = None
    try:
        print(f"seeding {args.participants} assigned participants in {name} ...", flush=True)
        tokens = seed(url, instance, args.participants)
        port = free_port()
        server = start_server(url, instance, port, args.workers)
        base = f"http://127.0.0.1:{port}"
        print(f"server: nudge serve (gunicorn) on {base}; loader: {'wrk' if use_wrk else 'python'}")
        # Warm up (first views record the exposures; templates compile in every worker).
        run(base, "NUDGE", tokens, 15, args.connections)
        run(base, "/p/ping", tokens, 2, args.connections)

        results: dict[str, list[dict]] = {"ping": [], "healthz": [], "nudge": []}
        for _ in range(args.repeat):  # interleaved, so drift hits every target alike
            for key, path in (("ping", "/p/ping"), ("healthz", "/healthz"), ("nudge", "NUDGE")):
                r = run(base, path, tokens, args.duration, args.connections)
                results[key].append(r)
                print(
                    f"  {key:8s} {r['rps']:8.0f} req/s  p50 {r['p50_ms']:6.1f} ms  "
                    f"p95 {r['p95_ms']:6.1f} ms  p99 {r['p99_ms']:6.1f} ms  errors {r['errors']}"
                    f"  load {os.getloadavg()[0]:.1f}",
                    flush=True,
                )

        def median(key, field):
            return statistics.median(r[field] for r in results[key])

        ping, healthz, nudge = (
            median("ping", "rps"),
            median("healthz", "rps"),
            median("nudge", "rps"),
        )
        target = ping / 2
        # Paced run: each connection waits after each response so that together they
        # offer about `target` req/s. A first short run at the full period measures the
        # latency at that load, which the second run's wait then leaves out.
        period_ms = args.connections * 1000 / target
        probe = run(base, "NUDGE", tokens, 5, args.connections, period_ms)
        pace_ms = max(0.0, period_ms - probe["p50_ms"])
        paced = run(base, "NUDGE", tokens, args.duration, args.connections, pace_ms)
        summary = {
            "loader": "wrk" if use_wrk else "python",
            "cores": os.cpu_count(),
            "connections": args.connections,
            "duration_s": args.duration,
            "repeat": args.repeat,
            "participants": args.participants,
            "trivial_ping_rps": round(ping),
            "trivial_healthz_rps": round(healthz),
            "nudge_rps": round(nudge),
            "ratio_nudge_to_ping": round(nudge / ping, 3),
            "ratio_nudge_to_healthz": round(nudge / healthz, 3),
            "nudge_p95_ms_full_speed": round(median("nudge", "p95_ms"), 1),
            "paced_target_rps": round(target),
            "paced_achieved_rps": round(paced["rps"]),
            "paced_p95_ms": round(paced["p95_ms"], 1),
            "paced_errors": paced["errors"],
            "load_average": round(os.getloadavg()[0], 1),
            "pass": nudge >= ping / 2 and paced["p95_ms"] < 25,
        }
        print()
        print(f"trivial endpoint /p/ping : {ping:8.0f} req/s (median of {args.repeat})")
        print(f"trivial endpoint /healthz: {healthz:8.0f} req/s")
        print(f"nudge page /p/<token>    : {nudge:8.0f} req/s")
        print(f"ratio nudge / ping       : {nudge / ping:8.3f}  (goal >= 0.5)")
        print(f"ratio nudge / healthz    : {nudge / healthz:8.3f}")
        print(
            f"at ~1/2 of ping's rate   : {paced['rps']:8.0f} req/s offered {target:.0f}, "
            f"p95 {paced['p95_ms']:.1f} ms (goal < 25 ms); load {os.getloadavg()[0]:.1f}"
        )
        print("PASS" if summary["pass"] else "FAIL")
        if args.json:
            args.json.parent.mkdir(parents=True, exist_ok=True)
            args.json.write_text(json.dumps(summary, indent=2) + "\n")
    finally:
        if server is not None:
            server.terminate()
            try:
                server.wait(20)
            except subprocess.TimeoutExpired:
                server.kill()
        drop_database(args.pg, name)
        shutil.rmtree(instance, ignore_errors=True)


if __name__ == "__main__":
    main()
