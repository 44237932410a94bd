"""Benchmark: `nudge analyze` on 1,000,000 participants of a stratified design (50 strata
whose assignment probabilities differ), with the Lin adjustment and two moderators,
against statsmodels fitting the equivalent models from the same CSV, in one run.

Our command: `--block stratum --probability probability --covariate x --moderator
age:35,55 --moderator self_efficacy:2.5,3.5` (CSV in, JSON out, whole process). The
equivalent statsmodels models, all OLS with HC2:
- the blocked estimate: y ~ arm * (centred stratum indicators);
- Lin within strata: y ~ arm * (centred stratum indicators + centred x);
- each moderator's subgroups: within each level, y ~ arm * (centred stratum indicators
  of the level) (3 + 3 fits; their HC2 equals the joint cells model's);
- each moderator's slope: y ~ arm * (stratum indicators + centred moderator) (2 fits).
The script checks that both give the same headline and Lin estimates and standard errors,
then prints the times and the ratio (goal: ours at most 0.15 of statsmodels').

Run: .venv/bin/python benchmarks/analyze_strata_bench.py [--rows N] [--repeat K]
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

HERE = Path(__file__).resolve().parent
DATA = HERE / "data"

PEER = r"""
import json, sys
import numpy as np
import pandas as pd
import statsmodels.formula.api as smf

df = pd.read_csv(sys.argv[1], engine="pyarrow")
arm = "C(arm, Treatment('control'))"

def centred(frame, col):
    d = pd.get_dummies(frame[col], dtype=float).iloc[:, 1:]
    d.columns = [f"s{i}" for i in range(d.shape[1])]
    d = d - d.mean()
    return pd.concat([frame, d], axis=1), " + ".join(d.columns)

def fit(formula, frame):
    return smf.ols(formula, frame).fit(cov_type="HC2")

out = {}
data, strata = centred(df, "stratum")
data["x_c"] = data.x - data.x.mean()
for name, formula in (("effects", f"joined ~ {arm} * ({strata})"),
                      ("adjusted", f"joined ~ {arm} * ({strata} + x_c)")):
    f = fit(formula, data)
    out[name] = {a: [f.params[f"{arm}[T.{a}]"], f.bse[f"{arm}[T.{a}]"]] for a in ("a", "b")}
    del f
del data
for col, cuts in (("age", [35, 55]), ("self_efficacy", [2.5, 3.5])):
    band = np.searchsorted(cuts, df[col].to_numpy(), side="right")
    for level in range(3):
        sub, strata = centred(df[band == level].reset_index(drop=True), "stratum")
        fit(f"joined ~ {arm} * ({strata})", sub)
    data = df.assign(m_c=df[col] - df[col].mean())
    fit(f"joined ~ {arm} * (C(stratum) + m_c)", data)
print(json.dumps(out))
"""


def make_data(rows: int, seed: int = 2) -> Path:
    DATA.mkdir(exist_ok=True)
    path = DATA / f"strata_trial_{rows}.csv"
    if path.exists():
        return path
    rng = np.random.default_rng(seed)
    stratum = rng.integers(0, 50, rows)
    p_control = np.array([0.2, 0.35, 0.5, 0.65, 0.8])[stratum % 5]
    probs = np.column_stack([p_control, (1 - p_control) / 2, (1 - p_control) / 2])
    arm = (rng.random(rows)[:, None] > np.cumsum(probs, axis=1)).sum(axis=1)
    age = rng.integers(18, 90, rows)
    se = np.round(np.clip(rng.normal(3.0, 0.9, rows), 1, 5), 2)
    x = np.round(rng.normal(0, 1, rows), 3)
    base = 0.05 + 0.004 * (stratum % 10) + 0.02 * (x > 0)
    p = base + 0.02 * (arm == 1) * (se < 2.5) + 0.03 * (arm == 2) * (age < 35)
    joined = (rng.random(rows) < p).astype(np.int8)
    names = np.array(["control", "a", "b"])
    pd.DataFrame(
        {
            "participant": np.arange(rows),
            "arm": names[arm],
            "stratum": np.char.add("area-", stratum.astype(str)),
            "probability": np.round(probs[np.arange(rows), arm], 6),
            "age": age,
            "self_efficacy": se,
            "x": x,
            "joined": joined,
        }
    ).to_csv(path, index=False)
    return path


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--repeat", type=int, default=1)
    args = ap.parse_args()
    data = make_data(args.rows)
    tmp = Path(tempfile.mkdtemp())
    out = tmp / "report.json"
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
        "--block",
        "stratum",
        "--probability",
        "probability",
        "--covariate",
        "x",
        "--moderator",
        "age:35,55",
        "--moderator",
        "self_efficacy:2.5,3.5",
        "--out",
        str(out),
    ]
    peer_out = tmp / "peer.json"
    peer = ["sh", "-c", '"$0" -c "$1" "$2" > "$3"', sys.executable, PEER, str(data), str(peer_out)]
    ours, theirs = [], []
    for _ in range(args.repeat):
        ours.append(run_child(nudge))
        theirs.append(run_child(peer))
    report = json.loads(out.read_text())
    assert report["n_analysed"] == args.rows and report["estimator"] == "blocked"
    reference = json.loads(peer_out.read_text())
    worst = 0.0
    for key in ("effects", "adjusted_effects"):
        for e in report[key]:
            est, se = reference["effects" if key == "effects" else "adjusted"][e["arm"]]
            worst = max(worst, abs(e["estimate"] - est) / abs(est), abs(e["std_error"] - se) / se)
    assert worst < 1e-6, f"estimates differ from statsmodels by {worst:.2g} (relative)"
    t_ours, t_peer = min(r[0] for r in ours), min(r[0] for r in theirs)
    c_ours, c_peer = min(r[2] for r in ours), min(r[2] for r in theirs)
    result = {
        "rows": args.rows,
        "strata": 50,
        "repeat": args.repeat,
        "load_average": os.getloadavg(),
        "nudge_seconds": round(t_ours, 2),
        "statsmodels_seconds": round(t_peer, 2),
        "ratio": round(t_ours / t_peer, 3),
        "nudge_cpu_seconds": round(c_ours, 2),
        "statsmodels_cpu_seconds": round(c_peer, 2),
        "cpu_ratio": round(c_ours / c_peer, 3),
        "nudge_peak_mb": round(max(r[1] for r in ours)),
        "statsmodels_peak_mb": round(max(r[1] for r in theirs)),
        "largest_relative_difference": worst,
    }
    print(json.dumps(result, indent=2))
    print(
        f"nudge analyze (strata, Lin, 2 moderators): {t_ours:.1f} s wall, {c_ours:.1f} s CPU | "
        f"statsmodels (10 HC2 fits): {t_peer:.1f} s wall, {c_peer:.1f} s CPU | ratio "
        f"{t_ours / t_peer:.3f} wall, {c_ours / c_peer:.3f} CPU (goal <= 0.15); same estimates "
        f"to {worst:.1g}; load average {os.getloadavg()[0]:.1f}"
    )
    res_dir = HERE / "results"
    res_dir.mkdir(exist_ok=True)
    (res_dir / "analyze_strata_bench.json").write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
