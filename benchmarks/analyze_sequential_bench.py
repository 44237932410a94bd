"""Benchmark: `nudge analyze --sequential day` with 60 looks against the plain analysis of
the same file, in one run: 1,000,000 participants of the stratified design of
`analyze_strata_bench.py` (50 strata of unequal probabilities, the Lin adjustment, two
moderators), each row enrolled on one of 60 days. Both are whole processes (CSV in, JSON
out). The script checks that the last look's estimate is the headline estimate and prints
the ratio (goal: at most 2) with the load average.

Run: .venv/bin/python benchmarks/analyze_sequential_bench.py [--rows N] [--looks 60] [--repeat K]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd
from analyze_bench import run_child
from analyze_strata_bench import make_data

HERE = Path(__file__).resolve().parent


def with_days(rows: int, looks: int) -> Path:
    """The stratified benchmark file plus `day`: enrolment day 1..looks, in arrival order."""
    path = HERE / "data" / f"strata_trial_{rows}_days_{looks}.csv"
    if path.exists():
        return path
    frame = pd.read_csv(make_data(rows), engine="pyarrow")
    rng = np.random.default_rng(7)
    frame["day"] = np.sort(rng.integers(1, looks + 1, rows))
    frame.to_csv(path, index=False)
    return path


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--looks", type=int, default=60)
    ap.add_argument("--repeat", type=int, default=1)
    args = ap.parse_args()
    data = with_days(args.rows, args.looks)
    tmp = Path(tempfile.mkdtemp())
    plain_out, seq_out = tmp / "plain.json", tmp / "sequential.json"
    base = [str(Path(sys.executable).parent / "nudge"), "analyze", str(data)]
    base += ["--arm", "arm", "--control", "control", "--outcome", "joined"]
    base += ["--block", "stratum", "--probability", "probability", "--covariate", "x"]
    base += ["--moderator", "age:35,55", "--moderator", "self_efficacy:2.5,3.5"]
    plain = [*base, "--out", str(plain_out)]
    sequential = [*base, "--sequential", "day", "--out", str(seq_out)]
    times_plain, times_seq = [], []
    for _ in range(args.repeat):
        times_plain.append(run_child(plain))
        times_seq.append(run_child(sequential))
    report = json.loads(seq_out.read_text())
    looks = report["sequential"][0]["looks"]
    assert len(looks) == args.looks and looks[-1]["n"] == args.rows
    for arm, effect in zip(report["sequential"], report["effects"], strict=True):
        assert abs(arm["looks"][-1]["estimate"] - effect["estimate"]) < 1e-9
    t_plain, t_seq = min(r[0] for r in times_plain), min(r[0] for r in times_seq)
    c_plain, c_seq = min(r[2] for r in times_plain), min(r[2] for r in times_seq)
    result = {
        "rows": args.rows,
        "looks": args.looks,
        "repeat": args.repeat,
        "load_average": os.getloadavg(),
        "plain_seconds": round(t_plain, 2),
        "sequential_seconds": round(t_seq, 2),
        "ratio": round(t_seq / t_plain, 3),
        "plain_cpu_seconds": round(c_plain, 2),
        "sequential_cpu_seconds": round(c_seq, 2),
        "cpu_ratio": round(c_seq / c_plain, 3),
    }
    print(json.dumps(result, indent=2))
    print(
        f"nudge analyze --sequential day ({args.looks} looks): {t_seq:.1f} s wall, "
        f"{c_seq:.1f} s CPU | plain analysis: {t_plain:.1f} s wall, {c_plain:.1f} s CPU | "
        f"ratio {t_seq / t_plain:.3f} wall, {c_seq / c_plain:.3f} CPU (goal <= 2); load "
        f"average {os.getloadavg()[0]:.1f}"
    )
    res_dir = HERE / "results"
    res_dir.mkdir(exist_ok=True)
    (res_dir / "analyze_sequential_bench.json").write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
