"""Benchmark: the spillover analysis of a 5,000-resident saturation design with its
randomization-inference intervals (999 draws, the report's default), against the peer
statsmodels fitting the two saturation-indicator OLS models with cluster-robust
covariance (`cov_type="cluster"`), in one run. Prints the times, the ratio, the load
average and the CPU time. The goal is the report's: a 5,000-resident demo report within
a few seconds, so the spillover analysis should take about a second.

Run: .venv/bin/python benchmarks/spillover_ri_bench.py [--clusters 60] [--repeat 3]
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np
import pandas as pd
import statsmodels.formula.api as smf

from experiments.analysis.spillover import spillover_effects
from experiments.saturation import saturation_ra


def population(n_clusters: int, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    sizes = rng.integers(20, 150, n_clusters)
    sizes = np.round(sizes * 5000 / sizes.sum()).astype(int)
    cluster = np.repeat(np.arange(n_clusters), sizes)
    design = saturation_ra(cluster, (0, 0.4, 0.8), seed)
    base = rng.normal(0.3, 0.05, n_clusters)[cluster]
    p = base + np.where(design.treated, 0.08, (design.saturation > 0) * 0.03)
    y = (rng.random(len(cluster)) < p).astype(float)
    return pd.DataFrame({"y": y, "T": design.treated, "S": design.saturation, "cluster": cluster})


def ours(df: pd.DataFrame) -> list:
    return spillover_effects(df["y"], df["T"], df["S"], df["cluster"])


def peer(df: pd.DataFrame) -> list:
    d = df.assign(
        t4=((df["S"] == 0.4) & df["T"]).astype(float),
        u4=((df["S"] == 0.4) & ~df["T"]).astype(float),
        t8=((df["S"] == 0.8) & df["T"]).astype(float),
        u8=((df["S"] == 0.8) & ~df["T"]).astype(float),
        s4=(df["S"] == 0.4).astype(float),
        s8=(df["S"] == 0.8).astype(float),
    )
    groups = {"groups": d["cluster"]}
    return [
        smf.ols("y ~ t4 + u4 + t8 + u8", d).fit(cov_type="cluster", cov_kwds=groups),
        smf.ols("y ~ s4 + s8", d).fit(cov_type="cluster", cov_kwds=groups),
    ]


def timed(fn, df, repeat):
    wall, cpu = [], []
    for _ in range(repeat):
        w, c = time.perf_counter(), time.process_time()
        out = fn(df)
        wall.append(time.perf_counter() - w)
        cpu.append(time.process_time() - c)
    return min(wall), min(cpu), out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--clusters", type=int, default=60)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    df = population(args.clusters)
    load = os.getloadavg()
    our_wall, our_cpu, found = timed(ours, df, args.repeat)
    peer_wall, peer_cpu, fits = timed(peer, df, args.repeat)
    # same estimates
    for e in found:
        key = "4" if e.saturation == 0.4 else "8"
        assert abs(e.direct.estimate - fits[0].params[f"t{key}"]) < 1e-10
        assert abs(e.total.estimate - fits[1].params[f"s{key}"]) < 1e-10
    print(f"{len(df):,} residents, {args.clusters} clusters, saturations 0/0.4/0.8")
    print(f"ours (OLS + CR2 + randomization inference, 999 draws): {our_wall:.3f} s wall, "
          f"{our_cpu:.3f} s CPU (best of {args.repeat})")  # fmt: skip
    print(f"peer (statsmodels OLS, cluster-robust, 2 models): {peer_wall:.3f} s wall, "
          f"{peer_cpu:.3f} s CPU")  # fmt: skip
    print(f"ratio ours / peer (CPU): {our_cpu / peer_cpu:.1f}")
    print(f"load average at start: {load[0]:.1f} {load[1]:.1f} {load[2]:.1f}; "
          f"at end: {os.getloadavg()[0]:.1f}")  # fmt: skip


if __name__ == "__main__":
    main()
