"""Benchmark: `nudge randomize` against stochatreat on the same CSV-to-CSV job, whole processes.

Both read a list of residents (default 1,000,000 rows), stratify by age band (<35, 35-54,
55+) crossed with self-efficacy band (<2.5, 2.5-3.5, >=3.5), assign three arms with
weights 2:1:1 exactly within every stratum, and write every input row with its arm. The
timings include starting Python and importing the libraries, as a council officer would
experience them. Target: ours at most two thirds of the peer's time.

    .venv/bin/python benchmarks/randomize_bench.py [--rows 1000000] [--repeats 3]
"""

from __future__ import annotations

import argparse
import os
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


def timed(cmd: list[str]) -> float:
    start = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True)
    elapsed = time.perf_counter() - start
    if proc.returncode != 0:
        raise SystemExit(f"{cmd[0]} failed:\n{proc.stderr}")
    return elapsed


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
    parser.add_argument("--repeats", type=int, default=3)
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
        ours, peer = [], []
        for _ in range(args.repeats):  # alternate, so both see the same machine load
            ours.append(timed(ours_cmd))
            peer.append(timed(peer_cmd))
        check_balance(ours_out, args.rows)
        check_balance(peer_out, args.rows)

    o, p = statistics.median(ours), statistics.median(peer)
    print(
        f"rows: {args.rows:,}; repeats: {args.repeats}; cpus: {os.cpu_count()}; "
        f"load average: {os.getloadavg()[0]:.2f}"
    )
    print(f"nudge randomize     median {o:6.2f} s  (runs: {', '.join(f'{t:.2f}' for t in ours)})")
    print(f"stochatreat (peer)  median {p:6.2f} s  (runs: {', '.join(f'{t:.2f}' for t in peer)})")
    print(f"ratio ours/peer: {o / p:.2f} (target <= 0.67)")


if __name__ == "__main__":
    main()
