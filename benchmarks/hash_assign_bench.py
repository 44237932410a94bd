"""Benchmark: hashed assignment in process against the GrowthBook Python SDK's `run()`.

The same four-arm experiment with equal weights, the same unit ids; each side assigns
every unit once, in a plain Python loop, as a request handler would. Target: ours at
least 3 times the peer's assignments per second.

    .venv/bin/python benchmarks/hash_assign_bench.py [--units 200000] [--repeats 3]
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from collections import Counter

from growthbook import Experiment, GrowthBook

from experiments.randomization import Allocation, HashedAssigner

ARMS = ("control", "a", "b", "c")


def ours(units: list[str]) -> tuple[float, Counter]:
    assigner = HashedAssigner("four-arm-trial", Allocation.equal(ARMS))
    assign = assigner.assign
    start = time.perf_counter()
    arms = [assign(u).arm for u in units]
    return time.perf_counter() - start, Counter(arms)


def ours_vectorised(units: list[str]) -> float:
    assigner = HashedAssigner("four-arm-trial", Allocation.equal(ARMS))
    start = time.perf_counter()
    assigner.arm_indices(units)
    return time.perf_counter() - start


def growthbook(units: list[str]) -> tuple[float, Counter]:
    experiment = Experiment(key="four-arm-trial", variations=list(ARMS), weights=[0.25] * 4)
    gb = GrowthBook(attributes={"id": units[0]})
    start = time.perf_counter()
    arms = []
    for u in units:
        gb.set_attributes({"id": u})
        arms.append(gb.run(experiment).value)
    elapsed = time.perf_counter() - start
    gb.destroy()
    return elapsed, Counter(arms)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--units", type=int, default=200_000)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    units = [f"resident-{i}" for i in range(args.units)]

    mine, peer, vec = [], [], []
    for _ in range(args.repeats):
        t, mine_counts = ours(units)
        mine.append(args.units / t)
        t, peer_counts = growthbook(units)
        peer.append(args.units / t)
        vec.append(args.units / ours_vectorised(units))
    o, p, v = statistics.median(mine), statistics.median(peer), statistics.median(vec)
    print(
        f"units: {args.units:,}; repeats: {args.repeats}; cpus: {os.cpu_count()}; "
        f"load average: {os.getloadavg()[0]:.2f}"
    )
    print(f"arm counts, ours: {dict(sorted(mine_counts.items()))}")
    print(f"arm counts, GrowthBook: {dict(sorted(peer_counts.items()))}")
    print(f"nudge HashedAssigner.assign   {o:12,.0f} assignments/s")
    print(f"nudge arm_indices (batch)     {v:12,.0f} assignments/s")
    print(f"GrowthBook run() (peer)       {p:12,.0f} assignments/s")
    print(f"ratio ours/peer: {o / p:.1f}x (target >= 3)")


if __name__ == "__main__":
    main()
