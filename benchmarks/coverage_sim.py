"""Coverage check: over many simulated trials with known effects, do the 95% intervals of
`nudge`'s analysis cover the truth 95% of the time (main, subgroup and Lin-adjusted)?

Run: .venv/bin/python benchmarks/coverage_sim.py [--simulations 2000] [--n 3000]
The acceptance window is 94% to 96%. The simulated trial is described in
experiments/analysis/calibration.py (3 message arms + control, effects differing by age
band, a 0/1 outcome).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from experiments.analysis.calibration import coverage


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--simulations", type=int, default=2000)
    ap.add_argument("--n", type=int, default=3000)
    ap.add_argument("--seed", type=int, default=20261130)
    args = ap.parse_args()
    start = time.perf_counter()
    result = coverage(args.simulations, args.n, seed=args.seed)
    seconds = time.perf_counter() - start
    out = {
        "simulations": args.simulations,
        "n": args.n,
        "seed": args.seed,
        "seconds": round(seconds, 1),
    }
    ok = True
    for key, c in result.items():
        inside = 0.94 <= c.rate <= 0.96
        ok &= inside
        out[key] = {
            "intervals": c.intervals,
            "covered": c.covered,
            "rate": round(c.rate, 4),
            "within_94_96": inside,
        }
        print(
            f"{key:<9} {c.covered}/{c.intervals} = {100 * c.rate:.2f}% "
            f"({'ok' if inside else 'OUTSIDE 94-96%'})"
        )
    print(f"{args.simulations} trials of {args.n} in {seconds:.0f} s")
    res = Path(__file__).resolve().parent / "results"
    res.mkdir(exist_ok=True)
    (res / "coverage_sim.json").write_text(json.dumps(out, indent=2))
    raise SystemExit(0 if ok else 1)


if __name__ == "__main__":
    main()
