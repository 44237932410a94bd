"""Coverage and size by simulation: over many simulated trials with known effects, do the
95% intervals of `nudge`'s analysis cover the truth 95% of the time, and do tests of a
true null reject no more than 5% of the time?

- `individual`: 3 message arms + control, effects differing by age band, a 0/1 outcome
  (main, subgroup and Lin intervals; goal 94-96%);
- `stratified`: three strata randomized with probabilities 0.2 / 0.5 / 0.8 whose joining
  rates and ages differ (main, Lin and subgroup intervals 94-96%; age interaction test
  size at most 6%);
- `clusters`: 10 and 20 clusters of unequal size, ICC 0.1 (CR2 intervals at least 93.5%;
  HTZ interaction test size at most 7%).

Run: .venv/bin/python benchmarks/coverage_sim.py [--check all] [--simulations N]
The trials are described in experiments/analysis/calibration.py; the slow tests in
tests/experiments/test_analysis_coverage.py run the same checks with fewer trials.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from experiments.analysis.calibration import cluster_coverage, coverage, stratified_coverage

GOALS = {
    "individual": {"main": (0.94, 0.96), "subgroup": (0.94, 0.96), "lin": (0.94, 0.96)},
    "stratified": {
        "main": (0.94, 0.96),
        "lin": (0.94, 0.96),
        "subgroup": (0.94, 0.96),
        "interaction_rejections": (0.0, 0.06),
    },
    "clusters": {"main": (0.935, 1.0), "interaction_rejections": (0.0, 0.07)},
}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument(
        "--check", choices=["all", "individual", "stratified", "clusters"], default="all"
    )
    ap.add_argument("--simulations", type=int, default=2000)
    ap.add_argument("--seed", type=int, default=20261130)
    args = ap.parse_args()
    runs = {
        "individual": lambda: coverage(args.simulations, 3000, seed=args.seed),
        "stratified": lambda: stratified_coverage(args.simulations, 2500, seed=args.seed),
        "clusters-10": lambda: cluster_coverage(10, args.simulations, seed=args.seed),
        "clusters-20": lambda: cluster_coverage(20, args.simulations, seed=args.seed),
    }
    out: dict = {"simulations": args.simulations, "seed": args.seed}
    ok = True
    for name, run in runs.items():
        if args.check not in ("all", name.split("-")[0]):
            continue
        start = time.perf_counter()
        result = run()
        out[name] = {"seconds": round(time.perf_counter() - start, 1)}
        for key, c in result.items():
            lo, hi = GOALS[name.split("-")[0]].get(key, (0.0, 1.0))
            inside = lo <= c.rate <= hi
            ok &= inside
            out[name][key] = {"n": c.intervals, "hits": c.covered, "rate": round(c.rate, 4)}
            print(
                f"{name:<12} {key:<23} {c.covered}/{c.intervals} = {100 * c.rate:.2f}% "
                f"(goal {100 * lo:g}-{100 * hi:g}%: {'ok' if inside else 'OUTSIDE'})"
            )
        print(f"{name}: {args.simulations} trials in {out[name]['seconds']} s")
    res = Path(__file__).resolve().parent / "results"
    res.mkdir(exist_ok=True)
    (res / "coverage_sim.json").write_text(json.dumps(out, indent=2))
    raise SystemExit(0 if ok else 1)


if __name__ == "__main__":
    main()
