"""Benchmark: `nudge randomize` against stochatreat on the same CSV-to-CSV job, whole processes.

Both read a list of residents (default 1,000,000 rows), stratify by age band (<35, 35-54,
55+) crossed with self-efficacy band (<2.5, 2.5-3.5, >=3.5), assign three arms with
weights 2:1:1 exactly within every stratum, and write every input row with its arm. The
timings include starting Python and importing the libraries, as a council officer would
experience them. Target: ours at most a quarter of the peer's time, the median of the
ratios of 5 paired runs (ours then the peer, back to back, so both see the same load).

The floor: pandas alone reading the same CSV and writing it back with two more columns
(whole process), which no CSV-to-CSV tool built on pandas can beat. Wall and CPU time
(getrusage of the child) are printed with the load average of each pair: on a shared
machine CPU time is the steadier figure.

    .venv/bin/python benchmarks/randomize_bench.py [--rows 1000000] [--repeats 5]
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

# The peer job: pandas reads the CSV, pd.cut makes the same bands (closed on the left),
# stochatreat assigns the arms within strata, the result is merged back and written.
PEER = r"""
import sys
import pandas as pd
from stochatreat import stochatreat

src, out, seed = sys.argv[1], sys.argv[2], int(sys.argv[3])
df = pd.read_csv(src, dtype=str, keep_default_na=False)
inf = float("inf")
df["age_band"] = pd.cut(pd.to_numeric(df["age"]), [-inf, 35, 55, inf], right=False)
df["se_band"] = pd.cut(pd.to_numeric(df["self_efficacy"]), [-inf, 2.5, 3.5, inf], right=False)
res = stochatreat(df, stratum_cols=["age_band", "se_band"], treats=3,
                  probs=[0.5, 0.25, 0.25], idx_col="id", random_state=seed)
df = df.merge(res[["id", "treat"]], on="id", how="left", sort=False)
df["arm"] = pd.Categorical.from_codes(df["treat"], ["control", "a", "b"])
df = df.drop(columns=["treat", "age_band", "se_band"])
df["probability"] = df["arm"].map({"control": 0.5, "a": 0.25, "b": 0.25}).astype(float)
df.to_csv(out, index=False)
"""


# The floor: read and write the same CSV with pandas, nothing else.
FLOOR = r"""
import sys
import pandas as pd

df = pd.read_csv(sys.argv[1], dtype=str, keep_default_na=False)
df["arm"] = "control"
df["probability"] = 0.5
df.to_csv(sys.argv[2], index=False)
"""


def make_residents(path: Path, rows: int) -> None:
    rng = np.random.default_rng(20261130)
    frame = pd.DataFrame(
        {
            "id": [f"R{i:08d}" for i in rng.permutation(rows)],
            "first_name": rng.choice(["Ann", "Bob", "Chidi", "Dana", "Emre", "Fay"], rows),
            "age": rng.integers(18, 95, rows),
            "self_efficacy": np.round(rng.uniform(1, 5, rows), 2),
            "gender": rng.choice(["female", "male", "other"], rows),
            "neighbourhood": rng.choice([f"ward-{i}" for i in range(40)], rows),
        }
    )
    frame.to_csv(path, index=False)


def timed(cmd: list[str]) -> tuple[float, float]:
    """(wall seconds, CPU seconds of the child process)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True)
    elapsed = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if proc.returncode != 0:
        raise SystemExit(f"{cmd[0]} failed:\n{proc.stderr}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return elapsed, cpu


def check_balance(path: Path, rows: int) -> None:
    out = pd.read_csv(path, usecols=["age", "self_efficacy", "arm"])
    assert len(out) == rows, f"{path.name}: {len(out)} rows, expected {rows}"
    age = pd.cut(out["age"], [-np.inf, 35, 55, np.inf], right=False)
    se = pd.cut(out["self_efficacy"], [-np.inf, 2.5, 3.5, np.inf], right=False)
    table = pd.crosstab([age, se], out["arm"])
    expected = table.sum(axis=1).to_numpy()[:, None] * np.array([0.25, 0.25, 0.5])
    worst = np.abs(table[["a", "b", "control"]].to_numpy() - expected).max()
    print(f"  {path.name}: {len(out):,} rows, worst deviation from exact counts {worst:.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()

    nudge = str(Path(sys.executable).with_name("nudge"))
    with tempfile.TemporaryDirectory() as tmp:
        src = Path(tmp) / "residents.csv"
        make_residents(src, args.rows)
        ours_out, peer_out = Path(tmp) / "ours.csv", Path(tmp) / "peer.csv"
        ours_cmd = [
            nudge,
            "randomize",
            str(src),
            "--arms",
            "control,a,b",
            "--weights",
            "2,1,1",
            "--strata",
            "age:35,55",
            "--strata",
            "self_efficacy:2.5,3.5",
            "--seed",
            "7",
            "--out",
            str(ours_out),
        ]
        peer_cmd = [sys.executable, "-c", PEER, str(src), str(peer_out), "7"]
        floor_cmd = [sys.executable, "-c", FLOOR, str(src), str(Path(tmp) / "floor.csv")]
        ours, peer, floor, loads = [], [], [], []
        for i in range(args.repeats):  # pairs back to back, so both see the same load
            ours.append(timed(ours_cmd))
            peer.append(timed(peer_cmd))
            floor.append(timed(floor_cmd))
            loads.append(os.getloadavg()[0])
            print(f"  pair {i + 1}: ours {ours[-1][0]:.2f} s ({ours[-1][1]:.2f} s CPU), "
                  f"stochatreat {peer[-1][0]:.2f} s ({peer[-1][1]:.2f} s CPU), pandas floor "
                  f"{floor[-1][0]:.2f} s ({floor[-1][1]:.2f} s CPU); load {loads[-1]:.1f}",
                  flush=True)  # fmt: skip
        check_balance(ours_out, args.rows)
        check_balance(peer_out, args.rows)

    def med(runs, k):
        return statistics.median(r[k] for r in runs)

    wall_ratio = statistics.median(o[0] / p[0] for o, p in zip(ours, peer, strict=True))
    cpu_ratio = statistics.median(o[1] / p[1] for o, p in zip(ours, peer, strict=True))
    print(f"rows: {args.rows:,}; pairs: {args.repeats}; cpus: {os.cpu_count()}; load average "
          f"{min(loads):.1f}-{max(loads):.1f}")  # fmt: skip
    for name, runs in (("nudge randomize", ours), ("stochatreat (peer)", peer),
                       ("pandas read+write floor", floor)):  # fmt: skip
        print(f"{name:24s} median {med(runs, 0):6.2f} s wall, {med(runs, 1):6.2f} s CPU")
    print(f"ratio ours/peer, median of the pairs: wall {wall_ratio:.2f}, CPU {cpu_ratio:.2f} "
          f"(target <= 0.25); ours / pandas floor: CPU {med(ours, 1) / med(floor, 1):.2f}")  # fmt: skip


if __name__ == "__main__":
    main()
