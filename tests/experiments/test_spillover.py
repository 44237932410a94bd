"""Spillover estimates of a randomized saturation design: against statsmodels OLS of the
saturation-indicator specification with the test-side CR2 (Bell and McCaffrey 2002) and
Bell-McCaffrey df of test_analysis_cr2.py, and by simulation (coverage). The
randomization-inference intervals are checked against a loop-based reference in
test_spillover_randomization.py."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm
from test_analysis_cr2 import CR2Reference

from experiments.analysis import AnalysisInputError, analyze
from experiments.analysis.linear import DegenerateDesign
from experiments.analysis.spillover import spillover_effects
from experiments.saturation import saturation_ra

LEVELS = (0.0, 0.4, 0.8)
DIRECT = {0.4: 0.5, 0.8: 0.6}
SPILL = {0.4: 0.2, 0.8: 0.3}


def simulate(rng: np.random.Generator, n_clusters: int = 45, seed: int = 0, binary=False):
    """Clusters of 5..30 members (multiples of 5, so s x size is whole and the total
    effect is exactly s direct + (1 - s) spillover), cluster effects, then outcomes."""
    sizes = 5 * rng.integers(1, 7, n_clusters)
    clusters = np.repeat(np.arange(n_clusters), sizes)
    design = saturation_ra(clusters, LEVELS, seed)
    s, t = design.saturation, design.treated
    u = rng.normal(0, 0.5, n_clusters)[clusters]
    mu = 1.0 + u
    for level in (0.4, 0.8):
        at = s == level
        mu = mu + at * np.where(t, DIRECT[level], SPILL[level])
    y = mu + rng.normal(0, 1, len(clusters))
    return pd.DataFrame({"y": y, "T": t, "S": s, "cluster": clusters})


def indicator_matrix(df: pd.DataFrame, total: bool) -> tuple[np.ndarray, list[str]]:
    cols, names = [np.ones(len(df))], ["const"]
    for level in (0.4, 0.8):
        at = (df["S"] == level).to_numpy(float)
        if total:
            cols.append(at)
            names.append(f"S{level}")
        else:
            cols += [at * df["T"].to_numpy(float), at * (1 - df["T"].to_numpy(float))]
            names += [f"T_S{level}", f"U_S{level}"]
    return np.column_stack(cols), names


def test_equals_statsmodels_ols_with_cr2_and_bell_mccaffrey_df():
    df = simulate(np.random.default_rng(1), n_clusters=24, seed=5)
    got = spillover_effects(df["y"], df["T"], df["S"], df["cluster"], arm="mentor", alpha=0.05)
    assert [g.saturation for g in got] == [0.4, 0.8]
    for total in (False, True):
        X, names = indicator_matrix(df, total)
        ols = sm.OLS(df["y"].to_numpy(), X).fit()
        ref = CR2Reference(X, df["y"].to_numpy(), df["cluster"].to_numpy())
        np.testing.assert_allclose(ref.beta, ols.params, rtol=1e-10)
        for g in got:
            parts = (
                [("total", f"S{g.saturation}")]
                if total
                else [
                    ("direct", f"T_S{g.saturation}"),
                    ("spillover", f"U_S{g.saturation}"),
                ]
            )
            for part, name in parts:
                j = names.index(name)
                c = np.zeros(len(names))
                c[j] = 1.0
                inf = getattr(g, part)
                se = math.sqrt(ref.V[j, j])
                dof = ref.df(c)
                assert inf.estimate == pytest.approx(ols.params[j], rel=1e-8, abs=1e-10)
                assert inf.std_error == pytest.approx(se, rel=1e-8)
                assert inf.df == pytest.approx(dof, rel=1e-8)
                assert inf.statistic == pytest.approx(ols.params[j] / se, rel=1e-8)
                assert inf.ci_low < inf.estimate < inf.ci_high
                assert 0 < inf.p_value <= 1
        assert g.n_treated + g.n_untreated == int((df["S"] == g.saturation).sum())


def test_analyze_adds_spillover_per_arm_and_saturation():
    df = simulate(np.random.default_rng(2), seed=3)
    df["arm"] = np.where(df["T"], "mentor", "control")
    result = analyze(
        df, arm="arm", control="control", outcome="y", cluster="cluster", saturation="S"
    )
    direct = spillover_effects(df["y"], df["T"], df["S"], df["cluster"], arm="mentor")
    assert [s.to_dict() for s in result.spillover] == [d.to_dict() for d in direct]
    row = result.spillover[0].to_dict()
    for key in (
        "arm",
        "saturation",
        "direct",
        "direct_ci_low",
        "direct_ci_high",
        "spillover",
        "spillover_ci_low",
        "spillover_ci_high",
        "total",
        "total_ci_low",
        "total_ci_high",
    ):
        assert key in row
    assert row["arm"] == "mentor" and row["saturation"] == 0.4


def test_report_panel_and_json_name_the_interval_method():
    from experiments.report import build_report

    df = simulate(np.random.default_rng(2), seed=3)
    df["arm"] = np.where(df["T"], "mentor", "control")
    result = analyze(
        df, arm="arm", control="control", outcome="y", cluster="cluster", saturation="S"
    )
    report = build_report(result, title="T", source="s")
    row = report.to_dict()["spillover"][0]
    assert row["interval_method"] == "randomization_inference"
    assert row["randomization_draws"] == 999 and row["randomization_seed"] == 20261202
    html = report.to_html()
    assert "intervals by randomization inference" in html and "999 draws" in html


def test_full_saturation_has_no_spillover_estimate():
    rng = np.random.default_rng(3)
    clusters = np.repeat(np.arange(20), 10)
    design = saturation_ra(clusters, (0, 0.5, 1), 2)
    y = rng.normal(size=len(clusters))
    got = spillover_effects(y, design.treated, design.saturation, clusters)
    full = next(g for g in got if g.saturation == 1.0)
    assert math.isnan(full.spillover.estimate) and "no untreated members" in full.message
    assert math.isfinite(full.direct.estimate) and math.isfinite(full.total.estimate)
    assert full.to_dict()["spillover"] is None


def test_no_pure_control_clusters_is_an_error():
    clusters = np.repeat(np.arange(6), 4)
    design = saturation_ra(clusters, (0.5, 1), 2)
    with pytest.raises(DegenerateDesign, match="no pure-control clusters"):
        spillover_effects(np.ones(len(clusters)), design.treated, design.saturation, clusters)


def _frame():
    df = simulate(np.random.default_rng(4), n_clusters=12, seed=1)
    df["arm"] = np.where(df["T"], "mentor", "control")
    return df


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda d: d.assign(S=d["S"].where(d.index != 7, 1.5)), "holds 1.5 at data row 8"),
        (
            lambda d: d.assign(S=d["S"].astype(object).where(d.index != 3, "")),
            "holds an empty cell at data row 4",
        ),
        (lambda d: d.assign(S=d["S"].astype(object).where(d.index != 2, "lots")), "not numeric"),
        (
            lambda d: d.assign(
                S=np.where(d.index == d.index[d["cluster"] == 0][-1], 0.123, d["S"])
            ),
            "one saturation per cluster",
        ),
        (lambda d: d.assign(S=d["S"] + (d["S"] == 0) * 0.4), "no pure-control clusters"),
    ],
)
def test_bad_saturation_columns_are_refused(change, message):
    df = change(_frame())
    with pytest.raises(AnalysisInputError, match=message):
        analyze(df, arm="arm", control="control", outcome="y", cluster="cluster", saturation="S")


def test_saturation_needs_cluster_and_column():
    df = _frame()
    with pytest.raises(AnalysisInputError, match="needs the cluster column"):
        analyze(df, arm="arm", control="control", outcome="y", saturation="S")
    with pytest.raises(AnalysisInputError, match="no column 'sat'"):
        analyze(df, arm="arm", control="control", outcome="y", cluster="cluster", saturation="sat")


@pytest.mark.slow
def test_coverage_over_500_saturation_trials():
    """500 saturation trials (45 clusters of 5-30 members, cluster effects; seed 20261202,
    randomization inference with 499 draws): the 95% intervals of direct, spillover and
    total effects each cover the truth 93-97% of the time."""
    rng = np.random.default_rng(20261202)
    hits = {(part, s): 0 for part in ("direct", "spillover", "total") for s in (0.4, 0.8)}
    trials = 500
    for i in range(trials):
        df = simulate(rng, seed=i)
        for g in spillover_effects(df["y"], df["T"], df["S"], df["cluster"], draws=499, seed=i):
            s = g.saturation
            truth = {
                "direct": DIRECT[s],
                "spillover": SPILL[s],
                "total": s * DIRECT[s] + (1 - s) * SPILL[s],
            }
            for part, value in truth.items():
                inf = getattr(g, part)
                hits[(part, s)] += inf.ci_low <= value <= inf.ci_high
    coverage = {k: v / trials for k, v in hits.items()}
    print("coverage", coverage)
    assert all(0.93 <= c <= 0.97 for c in coverage.values()), coverage
