"""Coverage of the outcome analyses: over many simulated campaigns of the catalog campaign
`self-efficacy-cleanup`, do the 95% intervals of every arm's effect on verified attendance,
individual and collective co-production, and of the effect mediated by follow-up
self-efficacy, cover the simulator's truth 93-97% of the time?

Run: .venv/bin/python benchmarks/outcomes_coverage.py [--campaigns 200] [--n 5000]
The campaigns and estimators are described in experiments/analysis/outcomes_calibration.py.
With 200 campaigns one coverage rate has a Monte Carlo standard error of 1.5 points.
"""

from __future__ import annotations

import os

# Thousands of small regressions: BLAS threads only spin-wait on them (6x the CPU time,
# far worse on a busy machine), so one thread, set before numpy loads.
for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import argparse  # noqa: E402
import json  # noqa: E402
import math  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

from experiments.analysis.outcomes_calibration import TARGETS, coverage  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results" / "outcomes_coverage.json"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--campaigns", type=int, default=200)
    ap.add_argument("--n", type=int, default=5000)
    ap.add_argument("--seed", type=int, default=2026)
    ap.add_argument("--out", type=Path, default=RESULTS, help="where the JSON results go")
    args = ap.parse_args()
    start, cpu = time.perf_counter(), time.process_time()
    tally = coverage(args.campaigns, args.n, seed=args.seed)
    seconds, cpu = time.perf_counter() - start, time.process_time() - cpu
    out = {
        "campaigns": args.campaigns,
        "n": args.n,
        "seed": args.seed,
        "seconds": round(seconds, 1),
        "cpu_seconds": round(cpu, 1),
        "load_average": os.getloadavg()[0],
    }
    ok = True
    for target in TARGETS:
        rate = tally.rate(target)
        mc = math.sqrt(rate * (1 - rate) / tally.intervals[target])
        inside = 0.93 <= rate <= 0.97
        ok &= inside
        out[target] = {
            "intervals": tally.intervals[target],
            "covered": tally.covered[target],
            "rate": round(rate, 4),
            "mc_error": round(mc, 4),
            "within_93_97": inside,
        }
        print(
            f"{target:<24} {tally.covered[target]}/{tally.intervals[target]} = "
            f"{100 * rate:.1f}% (MC error {100 * mc:.1f}) {'ok' if inside else 'OUTSIDE 93-97%'}"
        )
    print(
        f"{args.campaigns} campaigns of {args.n} in {seconds:.0f} s "
        f"({cpu:.0f} s CPU, load {out['load_average']:.1f})"
    )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(out, indent=2))
    raise SystemExit(0 if ok else 1)


if __name__ == "__main__":
    main()
