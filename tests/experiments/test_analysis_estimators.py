"""Effects, subgroup effects and Wald tests without strata or clusters, cross-checked against
statsmodels OLS with HC2 (design-aware and cluster-robust estimators: test_analysis_design.py
and test_analysis_cr2.py)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import statsmodels.formula.api as smf
from scipy import stats
from statsmodels.stats.multitest import multipletests

from experiments.analysis import (
    CellStats,
    adjust,
    analyze,
    benjamini_hochberg,
    blocked_difference_in_means,
    difference_in_means,
    effects_from_cells,
    holm,
    homogeneity_wald,
)
from experiments.bands import BandSpec

TOL = dict(rel=1e-8, abs=1e-10)


def make_trial(n_arms: int, n: int = 1200, binary: bool = True, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    arms = np.array(["control"] + [f"arm{i}" for i in range(1, n_arms)])
    arm = arms[rng.integers(0, n_arms, n)]
    age = rng.integers(18, 85, n).astype(float)
    se = np.clip(rng.normal(3, 0.9, n), 1, 5)
    gender = rng.choice(["f", "m", "x"], n, p=[0.5, 0.45, 0.05])
    effect = np.array([0.0] + [0.03 * i for i in range(1, n_arms)])
    idx = np.searchsorted(arms, arm) if False else pd.Index(arms).get_indexer(arm)
    lin = 0.1 + effect[idx] + 0.02 * (se - 3) - 0.001 * (age - 50) * (idx > 0)
    if binary:
        y = (rng.random(n) < np.clip(lin, 0.01, 0.99)).astype(float)
    else:
        y = lin * 10 + rng.normal(0, 1 + (idx == 1), n)
    return pd.DataFrame(
        {
            "arm": arm,
            "y": y,
            "age": age,
            "self_efficacy": se,
            "gender": gender,
            "cluster": rng.integers(0, 60, n),
        }
    )


def hc2(formula: str, data: pd.DataFrame):
    return smf.ols(formula, data).fit(cov_type="HC2")


def arm_term(a: str) -> str:
    return f"C(arm, Treatment('control'))[T.{a}]"


@pytest.mark.parametrize("n_arms", [2, 3, 4, 5])
@pytest.mark.parametrize("binary", [True, False])
def test_effects_equal_ols_hc2(n_arms, binary):
    df = make_trial(n_arms, binary=binary, seed=n_arms)
    res = analyze(df, arm="arm", control="control", outcome="y")
    fit = hc2("y ~ C(arm, Treatment('control'))", df)
    assert len(res.effects) == n_arms - 1
    for e in res.effects:
        assert e.estimate == pytest.approx(fit.params[arm_term(e.arm)], **TOL)
        assert e.std_error == pytest.approx(fit.bse[arm_term(e.arm)], **TOL)
        # reference distribution: t with Welch-Satterthwaite df = Welch's t-test
        t = df.loc[df.arm == e.arm, "y"]
        c = df.loc[df.arm == "control", "y"]
        welch = stats.ttest_ind(t, c, equal_var=False)
        assert e.p_value == pytest.approx(welch.pvalue, rel=1e-9)
        ci = welch.confidence_interval(0.95)
        assert (e.ci_low, e.ci_high) == (
            pytest.approx(ci.low, **TOL),
            pytest.approx(ci.high, **TOL),
        )
    assert [a.n for a in res.arms] == [int((df.arm == a.arm).sum()) for a in res.arms]


def test_relative_lift_delta_method():
    rng = np.random.default_rng(3)
    t, c = rng.random(500) < 0.3, rng.random(700) < 0.2
    e = difference_in_means(CellStats.of(t), CellStats.of(c))
    mt, mc = t.mean(), c.mean()
    vt, vc = t.var(ddof=1), c.var(ddof=1)
    assert e.relative_lift == pytest.approx(mt / mc - 1)
    expected = np.sqrt(vt / (mc**2 * 500) + vc * mt**2 / (mc**4 * 700))
    assert e.relative_lift_se == pytest.approx(expected)


@pytest.mark.parametrize("n_arms", [2, 3, 5])
def test_subgroups_and_wald_equal_saturated_ols_hc2(n_arms):
    df = make_trial(n_arms, n=3000, binary=False, seed=10 + n_arms)
    spec = BandSpec("age", (35.0, 55.0))
    res = analyze(df, arm="arm", control="control", outcome="y", moderators=[spec])
    df["band"] = spec.assign(df["age"])
    levels = spec.levels
    fit = hc2("y ~ C(arm, Treatment('control')) * C(band, Treatment('<35'))", df)
    names = list(fit.params.index)
    for s in res.subgroups:
        r = np.zeros(len(names))
        r[names.index(arm_term(s.arm))] = 1
        if s.level != "<35":
            r[names.index(f"{arm_term(s.arm)}:C(band, Treatment('<35'))[T.{s.level}]")] = 1
        tt = fit.t_test(r)
        assert s.estimate == pytest.approx(float(tt.effect[0]), **TOL)
        assert s.std_error == pytest.approx(float(tt.sd[0, 0]), **TOL)
        sub = df[df.band == s.level]
        assert s.n == int(sub.arm.isin([s.arm, "control"]).sum())
    assert [s.level for s in res.subgroups][:: n_arms - 1] == levels  # ascending order
    for w in res.interactions:
        R = np.zeros((len(levels) - 1, len(names)))
        for j, lvl in enumerate(levels[1:]):
            R[j, names.index(f"{arm_term(w.arm)}:C(band, Treatment('<35'))[T.{lvl}]")] = 1
        wald = fit.wald_test(R, use_f=False, scalar=True)
        assert w.statistic == pytest.approx(float(wald.statistic), **TOL)
        assert w.df == len(levels) - 1
        assert w.p_value == pytest.approx(float(wald.pvalue), rel=1e-8)


def test_numeric_moderator_slope_equals_ols_hc2_interaction():
    df = make_trial(3, n=2000, binary=False, seed=21)
    res = analyze(
        df, arm="arm", control="control", outcome="y", moderators=[BandSpec("age", (35.0, 55.0))]
    )
    df["age_c"] = df.age - df.age.mean()
    fit = hc2("y ~ C(arm, Treatment('control')) * age_c", df)
    for s in res.slopes:
        name = f"{arm_term(s.arm)}:age_c"
        assert s.estimate == pytest.approx(fit.params[name], **TOL)
        assert s.std_error == pytest.approx(fit.bse[name], **TOL)
        assert s.df == fit.df_resid


def test_categorical_moderator_levels_sorted_and_checked():
    df = make_trial(2, n=1500, seed=4)
    res = analyze(df, arm="arm", control="control", outcome="y", moderators=[BandSpec("gender")])
    assert [s.level for s in res.subgroups] == ["f", "m", "x"]
    assert res.slopes == []
    fit = hc2("y ~ C(arm, Treatment('control')) * C(gender)", df)
    R = np.zeros((2, len(fit.params)))
    names = list(fit.params.index)
    R[0, names.index(f"{arm_term('arm1')}:C(gender)[T.m]")] = 1
    R[1, names.index(f"{arm_term('arm1')}:C(gender)[T.x]")] = 1
    wald = fit.wald_test(R, use_f=False, scalar=True)
    assert res.interactions[0].statistic == pytest.approx(float(wald.statistic), **TOL)


@pytest.mark.parametrize("n_arms", [2, 4])
def test_lin_adjustment_equals_ols_hc2_with_centred_interactions(n_arms):
    df = make_trial(n_arms, n=2500, binary=True, seed=30 + n_arms)
    res = analyze(
        df, arm="arm", control="control", outcome="y", covariates=["age", "self_efficacy"]
    )
    df["age_c"] = df.age - df.age.mean()
    df["se_c"] = df.self_efficacy - df.self_efficacy.mean()
    fit = hc2("y ~ C(arm, Treatment('control')) * (age_c + se_c)", df)
    assert len(res.adjusted_effects) == n_arms - 1
    for e in res.adjusted_effects:
        assert e.method == "lin"
        assert e.estimate == pytest.approx(fit.params[arm_term(e.arm)], **TOL)
        assert e.std_error == pytest.approx(fit.bse[arm_term(e.arm)], **TOL)
        assert e.df == fit.df_resid


def test_blocked_estimator_names_a_block_with_too_few_participants():
    t = {
        "a": (CellStats.of([1, 0, 1]), CellStats.of([0, 0])),
        "b": (CellStats.of([1]), CellStats.of([0, 1])),
    }
    e = blocked_difference_in_means(t)
    assert e.error == "small_block" and "'b'" in e.message


def test_aggregates_add_and_give_the_same_estimate():
    rng = np.random.default_rng(7)
    t, c = rng.normal(1, 2, 900), rng.normal(0, 1, 800)
    parts_t = CellStats.of(t[:300]) + CellStats.of(t[300:])
    parts_c = CellStats.of(c[:1]) + CellStats.of(c[1:])
    a = difference_in_means(parts_t, parts_c)
    b = difference_in_means(CellStats.of(t), CellStats.of(c))
    assert a.estimate == pytest.approx(b.estimate, **TOL)
    assert a.std_error == pytest.approx(b.std_error, **TOL)
    assert parts_t.variance == pytest.approx(np.var(t, ddof=1), rel=1e-10)


def test_degenerate_cells_return_error_codes_not_exceptions():
    e = difference_in_means(CellStats.of([1.0, 1.0]), CellStats.of([1.0, 1.0, 1.0]))
    assert e.error == "zero_variance" and e.message
    e = difference_in_means(CellStats(0, 0.0, 0.0), CellStats.of([1.0, 0.0]))
    assert e.error == "too_few_rows" and np.isnan(e.estimate)


def test_homogeneity_wald_matches_direct_formula():
    d = np.array([0.1, 0.3, -0.05, 0.2])
    v = np.array([0.01, 0.02, 0.015, 0.03])
    A = np.array([[-1, 1, 0, 0], [-1, 0, 1, 0], [-1, 0, 0, 1]])
    expected = (A @ d) @ np.linalg.inv(A @ np.diag(v) @ A.T) @ (A @ d)
    w, df, p = homogeneity_wald(d, v)
    assert w == pytest.approx(expected) and df == 3
    assert p == pytest.approx(stats.chi2.sf(expected, 3))


@pytest.mark.parametrize("seed", range(5))
def test_holm_and_bh_equal_statsmodels(seed):
    p = np.random.default_rng(seed).random(7) ** 3
    assert holm(p) == pytest.approx(multipletests(p, method="holm")[1], abs=1e-15)
    assert benjamini_hochberg(p) == pytest.approx(multipletests(p, method="fdr_bh")[1], abs=1e-15)
    with_nan = np.append(p, np.nan)
    assert np.isnan(adjust(with_nan, "holm")[-1])
    assert adjust(with_nan, "holm")[:-1] == pytest.approx(holm(p))
    assert adjust(p, "none") == pytest.approx(p)


def test_effects_from_database_style_aggregates_equal_the_frame_analysis():
    df = make_trial(4, n=3000, seed=90)
    sums = (
        df.assign(y2=df.y**2).groupby("arm").agg(n=("y", "size"), s=("y", "sum"), ss=("y2", "sum"))
    )
    # a database would add partial sums from several shards
    cells = {a: CellStats(int(r.n), float(r.s), float(r.ss)) for a, r in sums.iterrows()}
    from_cells = {e.arm: e for e in effects_from_cells(cells, "control")}
    from_frame = analyze(df, arm="arm", control="control", outcome="y")
    for e in from_frame.effects:
        c = from_cells[e.arm]
        assert c.estimate == pytest.approx(e.estimate, **TOL)
        assert c.std_error == pytest.approx(e.std_error, **TOL)
        assert c.p_adjusted == pytest.approx(e.p_adjusted, rel=1e-8)
