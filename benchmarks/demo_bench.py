"""`nudge demo --no-serve` as a whole process: wall and CPU time for N residents, twice with
the same seed (the estimates must agree), against the goal of 60 s for 5,000 residents;
then `nudge demo` serving: the seconds until its console answers (goal: 10 s) and whether
that was before the simulation finished.

Usage: .venv/bin/python benchmarks/demo_bench.py [--campaign NAME] [--seed S] [--once]
[--no-serving] [N ...] (default: 5000 residents of the default campaign, seed 3, two runs;
`--once` runs once, for a loaded machine). With `--campaign peer-mentoring` it
also prints the mentors and invited residents and whether each spillover interval of the
report covers truth.json's `spillover`.

CPU time is the process's and its children's (the resident workers), from getrusage; on a
shared machine it is the steadier figure, and the load average is printed beside each run.

There is no peer program that runs a whole simulated campaign through a web platform, so
the goal is the yardstick; a pure-Python loop is timed too, to say how fast the machine
was at the time (a quiet laptop takes about 0.15 s for it).
"""

from __future__ import annotations

import json
import os
import re
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

NUDGE = Path(sys.executable).with_name("nudge")
GOAL_SECONDS = 60.0
CONSOLE_GOAL_SECONDS = 10.0


def machine_speed() -> float:
    start = time.process_time()
    total = 0
    for i in range(3_000_000):
        total += i
    return time.process_time() - start


def run(n: int, seed: int, folder: Path, campaign: str | None = None) -> dict:
    env = dict(os.environ)
    for name in ("DATABASE_URL", "NUDGE_ENV"):
        env.pop(name, None)
    env["NUDGE_INSTANCE_PATH"] = str(folder / "instance")
    out = folder / "out"
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    proc = subprocess.run(
        [str(NUDGE), "demo", "--no-serve", "--participants", str(n), "--seed", str(seed),
         "--out", str(out), *(["--campaign", campaign] if campaign else [])],
        capture_output=True, text=True, env=env, cwd=folder,
    )  # fmt: skip
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if proc.returncode != 0:
        raise SystemExit(f"nudge demo failed:\n{proc.stdout}\n{proc.stderr}")
    spent = re.search(r"time spent: (.*)", proc.stdout)
    report = json.loads((out / "report.json").read_text())
    truth = json.loads((out / "truth.json").read_text()).get("spillover") or {}
    mentoring = re.search(r"peer mentoring: (.*)", proc.stdout)
    return {
        "mentoring": mentoring.group(1) if mentoring else "",
        "spillover": _coverage(report.get("spillover") or [], truth),
        "wall": wall,
        "cpu": (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime),
        "load": os.getloadavg()[0],
        "steps": spent.group(1) if spent else "",
        "estimates": [(e["arm"], e["estimate"], e["ci_low"], e["ci_high"]) for e in report["effects"]],
    }  # fmt: skip


def _coverage(rows: list[dict], truth: dict) -> list[str]:
    """Per saturation and part: whether the report's interval covers the simulated truth."""
    parts = {"direct": "direct", "spillover": "spillover_untreated", "total": "total"}
    out = []
    for row in rows:
        true = truth.get(f"{row['saturation']:g}", {})
        for part, key in parts.items():
            lo, hi, x = row[f"{part}_ci_low"], row[f"{part}_ci_high"], true.get(key)
            ok = lo is not None and x is not None and lo <= x <= hi
            out.append(f"{row['saturation']:g} {part}: truth {x:.3f} in [{lo:.3f}, {hi:.3f}] {ok}")
    return out


def serving(n: int, folder: Path) -> tuple[float, bool, float]:
    """`nudge demo` serving: (seconds until /login answers, answered before the simulation
    finished, load average)."""
    import signal
    import socket
    import urllib.request

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = dict(os.environ)
    for name in ("DATABASE_URL", "NUDGE_ENV"):
        env.pop(name, None)
    env["NUDGE_INSTANCE_PATH"] = str(folder / "instance")
    log = folder / "demo.log"
    start = time.perf_counter()
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [str(NUDGE), "demo", "--participants", str(n), "--seed", "3", "--port", str(port)],
            stdout=out, stderr=subprocess.STDOUT, env=env, cwd=folder, start_new_session=True,
        )  # fmt: skip
    try:
        while True:
            if proc.poll() is not None:
                raise SystemExit(f"nudge demo stopped:\n{log.read_text()}")
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/login", timeout=5) as r:
                    if r.status == 200:
                        break
            except OSError:
                pass
            time.sleep(0.2)
        seconds = time.perf_counter() - start
        return seconds, "Demo finished" not in log.read_text(), os.getloadavg()[0]
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=60)


def main() -> None:
    args = sys.argv[1:]
    campaign = None
    if "--campaign" in args:
        at = args.index("--campaign")
        campaign = args[at + 1]
        del args[at : at + 2]
    seed = 3
    if "--seed" in args:
        at = args.index("--seed")
        seed = int(args[at + 1])
        del args[at : at + 2]
    serve = "--no-serving" not in args
    once = "--once" in args
    sizes = [int(x) for x in args if x not in ("--no-serving", "--once")] or [5000]
    print(f"machine: 3,000,000-step Python loop in {machine_speed():.2f} s CPU; "
          f"load average {os.getloadavg()[0]:.1f}; {os.cpu_count()} cores")  # fmt: skip
    which = f" --campaign {campaign}" if campaign else ""
    for n in sizes:
        with tempfile.TemporaryDirectory() as a, tempfile.TemporaryDirectory() as b:
            first = run(n, seed, Path(a), campaign)
            second = first if once else run(n, seed, Path(b), campaign)
        same = first["estimates"] == second["estimates"]
        best = min(first["wall"], second["wall"])
        print(
            f"nudge demo --no-serve{which} --participants {n}: {first['wall']:.1f} s and "
            f"{second['wall']:.1f} s wall ({first['cpu']:.0f} s and {second['cpu']:.0f} s CPU; "
            f"load {first['load']:.1f} and {second['load']:.1f}); goal {GOAL_SECONDS:.0f} s; "
            f"ratio {best / GOAL_SECONDS:.2f}; seed {seed}"
            + ("" if once else f"; same estimates with the same seed: {same}")
        )
        print(f"  steps: {first['steps']}")
        print(f"  estimates: {first['estimates']}")
        if first["mentoring"]:
            print(f"  peer mentoring: {first['mentoring']}")
        for line in first["spillover"]:
            print(f"  spillover {line}")
        if not serve:
            continue
        with tempfile.TemporaryDirectory() as c:
            seconds, early, load = serving(n, Path(c))
        print(
            f"nudge demo --participants {n} (serving): console answered after {seconds:.1f} s "
            f"(load {load:.1f}; goal {CONSOLE_GOAL_SECONDS:.0f} s), "
            f"{'before' if early else 'after'} the simulation finished"
        )


if __name__ == "__main__":
    main()
