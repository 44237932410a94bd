"""Benchmark: whole-process time and peak memory of `nudge analyze` on 1,000,000
participants in 4 arms with age-band and self-efficacy-band moderators (CSV in, JSON out),
against statsmodels fitting the equivalent three OLS models with HC2 from the same CSV
(main effects; arm x age band; arm x self-efficacy band).

Run: .venv/bin/python benchmarks/analyze_bench.py [--rows N] [--repeat K]
Each contender runs as its own child process; peak RSS is that child's ru_maxrss
(os.wait4), so one does not inflate the other's figure.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
DATA = HERE / "data"

PEER = r"""
import sys
import numpy as np
import pandas as pd
import statsmodels.formula.api as smf

df = pd.read_csv(sys.argv[1], engine="pyarrow")
df["age_band"] = pd.cut(df["age"], [-np.inf, 35, 55, np.inf], right=False,
                        labels=["18-34", "35-54", "55+"])
df["se_band"] = pd.cut(df["self_efficacy"], [-np.inf, 2.5, 3.5, np.inf], right=False,
                       labels=["low", "middle", "high"])
df = df.dropna(subset=["joined", "age", "self_efficacy"])
arm = "C(arm, Treatment('control'))"
fits = [smf.ols(f"joined ~ {arm}", df).fit(cov_type="HC2"),
        smf.ols(f"joined ~ {arm} * C(age_band)", df).fit(cov_type="HC2"),
        smf.ols(f"joined ~ {arm} * C(se_band)", df).fit(cov_type="HC2")]
print(sum(len(f.params) for f in fits))
"""


def make_data(rows: int, seed: int = 1) -> Path:
    DATA.mkdir(exist_ok=True)
    path = DATA / f"trial_{rows}.csv"
    if path.exists():
        return path
    rng = np.random.default_rng(seed)
    arms = np.array(["control", "efficacy", "peer", "info"])
    arm = arms[rng.integers(0, 4, rows)]
    age = rng.integers(18, 90, rows)
    se = np.round(np.clip(rng.normal(3.0, 0.9, rows), 1, 5), 2)
    p = 0.10 + 0.02 * (arm == "efficacy") * (se < 2.5) + 0.03 * (arm == "peer") * (age < 35)
    joined = (rng.random(rows) < p).astype(np.int8)
    pd.DataFrame(
        {
            "participant": np.arange(rows),
            "arm": arm,
            "age": age,
            "self_efficacy": se,
            "gender": rng.choice(["woman", "man"], rows),
            "joined": joined,
        }
    ).to_csv(path, index=False)
    return path


def run_child(argv: list[str]) -> tuple[float, float, float]:
    """Wall seconds, peak RSS (MB) and CPU seconds (user + system) of one child process.

    CPU time is reported too because the machine may be shared: it is less disturbed by
    other processes than wall time."""
    start = time.perf_counter()
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, cwd=ROOT)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - start
    err = proc.stderr.read().decode() if proc.stderr else ""
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise SystemExit(f"{argv[:3]} failed ({proc.returncode}): {err[-2000:]}")
    return wall, usage.ru_maxrss / 1024, usage.ru_utime + usage.ru_stime  # maxrss: KB


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--repeat", type=int, default=2)
    args = ap.parse_args()
    data = make_data(args.rows)
    out = Path(tempfile.mkdtemp()) / "report.json"
    nudge = [
        str(Path(sys.executable).parent / "nudge"),
        "analyze",
        str(data),
        "--arm",
        "arm",
        "--control",
        "control",
        "--outcome",
        "joined",
        "--moderator",
        "age:35,55",
        "--moderator",
        "self_efficacy:2.5,3.5",
        "--format",
        "json",
        "--out",
        str(out),
    ]
    peer = [sys.executable, "-c", PEER, str(data)]
    ours, theirs = [], []
    for _ in range(args.repeat):
        ours.append(run_child(nudge))
        theirs.append(run_child(peer))
    report = json.loads(out.read_text())
    assert report["n_analysed"] == args.rows
    t_ours = min(r[0] for r in ours)
    t_peer = min(r[0] for r in theirs)
    m_ours = max(r[1] for r in ours)
    m_peer = max(r[1] for r in theirs)
    c_ours = min(r[2] for r in ours)
    c_peer = min(r[2] for r in theirs)
    result = {
        "rows": args.rows,
        "repeat": args.repeat,
        "cpus": os.cpu_count(),
        "load_average": os.getloadavg(),
        "nudge_seconds": round(t_ours, 2),
        "statsmodels_seconds": round(t_peer, 2),
        "ratio": round(t_ours / t_peer, 3),
        "nudge_cpu_seconds": round(c_ours, 2),
        "statsmodels_cpu_seconds": round(c_peer, 2),
        "cpu_ratio": round(c_ours / c_peer, 3),
        "nudge_peak_mb": round(m_ours),
        "statsmodels_peak_mb": round(m_peer),
        "all_runs": {"nudge": ours, "statsmodels": theirs},
    }
    print(json.dumps(result, indent=2))
    print(
        f"nudge analyze: {t_ours:.2f} s wall, {c_ours:.2f} s CPU, peak {m_ours:.0f} MB | "
        f"statsmodels (3 HC2 fits): {t_peer:.2f} s wall, {c_peer:.2f} s CPU, peak "
        f"{m_peer:.0f} MB | ratio {t_ours / t_peer:.2f} wall, {c_ours / c_peer:.2f} CPU "
        f"(target <= 0.20, peak < 2048 MB); load average {os.getloadavg()[0]:.1f}"
    )
    res_dir = HERE / "results"
    res_dir.mkdir(exist_ok=True)
    (res_dir / "analyze_bench.json").write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
