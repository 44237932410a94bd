"""Design-aware estimates (strata with unequal probabilities, inverse-probability weights,
pooled tiny strata, missing values) against statsmodels OLS / WLS of the matching
specification, HC2, to 1e-8."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import statsmodels.formula.api as smf

from experiments.analysis import AnalysisInputError, analyze, choose
from experiments.analysis.trial import prepare
from experiments.bands import BandSpec

TOL = dict(rel=1e-8, abs=1e-10)
# Per stratum: allocation probabilities of (control, a, b).
ALLOCATION = {
    "s0": (0.8, 0.1, 0.1),
    "s1": (0.5, 0.25, 0.25),
    "s2": (0.2, 0.4, 0.4),
    "s3": (0.5, 0.25, 0.25),
    "s4": (0.2, 0.4, 0.4),
}


def stratified_trial(n=3000, seed=0, arms=("control", "a", "b")) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    strata = np.array(list(ALLOCATION))
    s = rng.integers(0, len(strata), n)
    probs = np.array([ALLOCATION[k][: len(arms)] for k in strata])
    probs = probs / probs.sum(axis=1, keepdims=True)
    u = rng.random(n)
    arm = (u[:, None] > np.cumsum(probs[s], axis=1)).sum(axis=1)
    age = rng.integers(18, 85, n).astype(float)
    x = rng.normal(0, 1, n) + 0.3 * s
    y = 0.5 * s + 0.2 * (arm == 1) + 0.1 * (arm == 2) * (age < 40) + 0.4 * x
    y = y + rng.normal(0, 1 + 0.3 * arm, n)
    names = np.array(arms)
    return pd.DataFrame(
        {
            "arm": names[arm],
            "stratum": strata[s],
            "p": probs[s, arm],
            "age": age,
            "x": x,
            "y": y,
            "g": rng.choice(["f", "m"], n),
        }
    )


def arm_term(a: str) -> str:
    return f"C(arm, Treatment('control'))[T.{a}]"


def centred_dummies(df: pd.DataFrame, col: str) -> list[str]:
    names = []
    for i, level in enumerate(sorted(df[col].unique())[1:]):
        name = f"d_{col}_{i}"
        df[name] = (df[col] == level).astype(float)
        df[name] -= df[name].mean()
        names.append(name)
    return names


def test_blocked_effects_equal_ols_interacted_with_centred_strata():
    df = stratified_trial(seed=1)
    res = analyze(df, arm="arm", control="control", outcome="y", block="stratum")
    d = centred_dummies(df, "stratum")
    fit = smf.ols(f"y ~ C(arm, Treatment('control')) * ({' + '.join(d)})", df).fit(cov_type="HC2")
    for e in res.effects:
        assert e.method == "blocked"
        assert e.estimate == pytest.approx(fit.params[arm_term(e.arm)], **TOL)
        assert e.std_error == pytest.approx(fit.bse[arm_term(e.arm)], **TOL)
        assert e.df == fit.df_resid
        assert e.mean_treatment - e.mean_control == pytest.approx(e.estimate, **TOL)
        assert e.relative_lift == pytest.approx(e.estimate / e.mean_control, **TOL)
    # the pooled difference in means would be biased: strata differ in outcome and in p
    naive = df[df.arm == "a"].y.mean() - df[df.arm == "control"].y.mean()
    assert abs(naive - res.effects[0].estimate) > 0.2


def test_blocked_equals_the_textbook_formula_with_all_arm_weights():
    df = stratified_trial(n=1500, seed=2)
    (e, _) = analyze(df, arm="arm", control="control", outcome="y", block="stratum").effects
    est = var = 0.0
    for _, g in df.groupby("stratum"):
        t, c = g[g.arm == "a"].y, g[g.arm == "control"].y
        w = len(g) / len(df)  # N_j / N counts every arm's rows
        est += w * (t.mean() - c.mean())
        var += w * w * (t.var() / len(t) + c.var() / len(c))
    assert e.estimate == pytest.approx(est, **TOL)
    assert e.std_error == pytest.approx(np.sqrt(var), **TOL)


def test_lin_interacted_with_strata_equals_ols():
    df = stratified_trial(seed=3)
    res = analyze(
        df, arm="arm", control="control", outcome="y", block="stratum", covariates=["x", "age"]
    )
    d = centred_dummies(df, "stratum")
    df["x_c"], df["age_c"] = df.x - df.x.mean(), df.age - df.age.mean()
    fit = smf.ols(f"y ~ C(arm, Treatment('control')) * ({' + '.join(d)} + x_c + age_c)", df).fit(
        cov_type="HC2"
    )
    for e in res.adjusted_effects:
        assert e.method == "lin_blocked"
        assert e.estimate == pytest.approx(fit.params[arm_term(e.arm)], **TOL)
        assert e.std_error == pytest.approx(fit.bse[arm_term(e.arm)], **TOL)
        assert e.df == fit.df_resid
    # its relative lift is its own (the adjusted control mean), not the unadjusted one's
    unadj = {e.arm: e.relative_lift for e in res.effects}
    for e in res.adjusted_effects:
        assert e.relative_lift == pytest.approx(e.estimate / e.mean_control, **TOL)
        assert e.relative_lift != pytest.approx(unadj[e.arm], rel=1e-6)


def test_inverse_probability_weights_equal_wls_without_strata():
    df = stratified_trial(seed=4)
    res = analyze(df, arm="arm", control="control", outcome="y", probability="p", covariates=["x"])
    fit = smf.wls("y ~ C(arm, Treatment('control'))", df, weights=1 / df.p).fit(cov_type="HC2")
    for e in res.effects:
        assert e.method == "ipw"
        assert e.estimate == pytest.approx(fit.params[arm_term(e.arm)], **TOL)
        assert e.std_error == pytest.approx(fit.bse[arm_term(e.arm)], **TOL)
    df["x_c"] = df.x - df.x.mean()
    fit = smf.wls("y ~ C(arm, Treatment('control')) * x_c", df, weights=1 / df.p).fit(
        cov_type="HC2"
    )
    for e in res.adjusted_effects:
        assert e.method == "lin_ipw"
        assert e.estimate == pytest.approx(fit.params[arm_term(e.arm)], **TOL)
        assert e.std_error == pytest.approx(fit.bse[arm_term(e.arm)], **TOL)


def test_constant_probabilities_leave_the_difference_in_means():
    df = stratified_trial(seed=5, arms=("control", "a"))
    df["p"] = 0.5
    res = analyze(df, arm="arm", control="control", outcome="y", probability="p")
    assert [e.method for e in res.effects] == ["difference_in_means"]


def test_subgroups_within_strata_equal_ols_per_level_and_the_wald_test():
    df = stratified_trial(n=4000, seed=6)
    spec = BandSpec("age", (40.0, 60.0))
    res = analyze(df, arm="arm", control="control", outcome="y", block="stratum", moderators=[spec])
    df["band"] = spec.assign(df.age)
    # one saturated model: every arm x stratum x level cell its own mean (HC2)
    df["cell"] = df.arm + "|" + df.stratum + "|" + df.band
    fit = smf.ols("y ~ 0 + C(cell)", df).fit(cov_type="HC2")
    names = list(fit.params.index)
    V = fit.cov_params().to_numpy()
    contrast = {}
    for s in res.subgroups:
        assert s.method == "blocked"
        level = df[df.band == s.level]
        r = np.zeros(len(names))
        for stratum, n_j in level.groupby("stratum").size().items():
            r[names.index(f"C(cell)[{s.arm}|{stratum}|{s.level}]")] += n_j / len(level)
            r[names.index(f"C(cell)[control|{stratum}|{s.level}]")] -= n_j / len(level)
        contrast[(s.arm, s.level)] = r
        assert s.estimate == pytest.approx(r @ fit.params.to_numpy(), **TOL)
        assert s.std_error == pytest.approx(np.sqrt(r @ V @ r), **TOL)
    for t in res.interactions:
        d = np.array([contrast[(t.arm, lvl)] for lvl in spec.levels])
        B = d[1:] - d[0]
        Bb = B @ fit.params.to_numpy()
        w = Bb @ np.linalg.solve(B @ V @ B.T, Bb)
        assert t.statistic == pytest.approx(w, **TOL) and t.df == 2


def test_slopes_within_strata_equal_ols():
    df = stratified_trial(seed=7)
    res = analyze(
        df,
        arm="arm",
        control="control",
        outcome="y",
        block="stratum",
        moderators=[BandSpec("age", (40.0, 60.0))],
    )
    df["age_c"] = df.age - df.age.mean()
    fit = smf.ols("y ~ C(arm, Treatment('control')) * (C(stratum) + age_c)", df).fit(cov_type="HC2")
    for s in res.slopes:
        name = f"{arm_term(s.arm)}:age_c"
        assert s.estimate == pytest.approx(fit.params[name], **TOL)
        assert s.std_error == pytest.approx(fit.bse[name], **TOL)
        assert s.df == fit.df_resid


def test_tiny_strata_are_pooled_with_strata_of_the_same_probability_never_dropped():
    df = stratified_trial(n=2000, seed=8, arms=("control", "a"))
    p0 = df[df.stratum == "s0"].groupby("arm").p.first()  # control 8/9, a 1/9
    p1 = df[df.stratum == "s1"].groupby("arm").p.first()  # control 2/3, a 1/3 (as s3)
    tiny = pd.DataFrame(
        {
            "arm": ["control", "a", "control", "control", "a"],
            "stratum": ["t1", "t1", "t2", "t3", "t3"],
            "p": [p0["control"], p0["a"], p0["control"], p1["control"], p1["a"]],
            "age": 30.0,
            "x": 0.0,
            "y": [1.0, 2.0, 0.5, 0.2, 3.0],
            "g": "f",
        }
    )
    df = pd.concat([df, tiny], ignore_index=True)
    res = analyze(df, arm="arm", control="control", outcome="y", block="stratum", probability="p")
    assert res.n_analysed == len(df)
    pools = {p.members for p in res.design.pools}
    # t1 and t2 share s0's probabilities: pooled together, then with s0;
    # t3 shares s1's and s3's: pooled with the smaller of those
    assert any({"t1", "t2", "s0"} <= set(m) for m in pools)
    assert any("t3" in m and ({"s1", "s3"} & set(m)) for m in pools)
    assert not res.design.weighted
    assert any(w.code == "pooled_strata" for w in res.warnings)
    # the estimate is the blocked estimator over the pooled strata, as OLS says
    prep = prepare(df, arm="arm", control="control", outcome="y", block="stratum", probability="p")
    df["pooled"] = np.array(prep.design.pooled.labels)[prep.design.pooled.codes]
    d = centred_dummies(df, "pooled")
    fit = smf.ols(f"y ~ C(arm, Treatment('control')) * ({' + '.join(d)})", df).fit(cov_type="HC2")
    (e,) = res.effects
    assert e.estimate == pytest.approx(fit.params[arm_term("a")], **TOL)
    assert e.std_error == pytest.approx(fit.bse[arm_term("a")], **TOL)


def test_missing_covariate_gets_the_mean_and_an_indicator():
    df = stratified_trial(n=1500, seed=9, arms=("control", "a"))
    df.loc[:99, "x"] = np.nan
    res = analyze(df, arm="arm", control="control", outcome="y", covariates=["x"])
    assert res.n_analysed == len(df) and res.covariates_imputed == {"x": 100}
    assert res.dropped["missing_covariate"] == {"x": 0}
    assert any(w.code == "imputed_covariates" and "x 100" in w.message for w in res.warnings)
    miss = df.x.isna().astype(float)
    df["x_i"] = df.x.fillna(df.x.mean())
    df["x_c"], df["m_c"] = df.x_i - df.x_i.mean(), miss - miss.mean()
    fit = smf.ols("y ~ C(arm, Treatment('control')) * (x_c + m_c)", df).fit(cov_type="HC2")
    (e,) = res.adjusted_effects
    assert e.estimate == pytest.approx(fit.params[arm_term("a")], **TOL)
    assert e.std_error == pytest.approx(fit.bse[arm_term("a")], **TOL)


def test_a_missing_moderator_drops_the_row_only_from_that_moderators_subgroups():
    df = stratified_trial(n=1500, seed=10, arms=("control", "a"))
    df.loc[:49, "age"] = np.nan
    spec = BandSpec("age", (40.0, 60.0))
    res = analyze(df, arm="arm", control="control", outcome="y", moderators=[spec, BandSpec("g")])
    full = analyze(df, arm="arm", control="control", outcome="y")
    assert res.n_analysed == len(df) and res.dropped["missing_moderator"] == {"age": 50, "g": 0}
    assert res.effects[0].estimate == full.effects[0].estimate
    assert sum(s.n for s in res.subgroups if s.moderator == "age") == len(df) - 50
    assert sum(s.n for s in res.subgroups if s.moderator == "g") == len(df)


def test_the_registry_chooses_from_the_design():
    df = stratified_trial(n=600, seed=11)
    df["cl"] = np.arange(len(df)) // 3
    cases = [
        ({}, "difference_in_means", "lin"),
        ({"probability": "p"}, "ipw", "lin_ipw"),
        ({"block": "stratum"}, "blocked", "lin_blocked"),
        ({"block": "stratum", "probability": "p"}, "blocked", "lin_blocked"),
        ({"cluster": "cl"}, "cluster_robust", "lin_cluster_robust"),
    ]
    for kwargs, effects, adjusted in cases:
        design = prepare(df, arm="arm", control="control", outcome="y", **kwargs).design
        assert choose("effects", design).method == effects
        assert choose("adjusted", design).method == adjusted


@pytest.mark.parametrize(
    "kwargs, fragment",
    [
        (dict(probability="y"), "must be above 0 and at most 1"),
        (dict(preregistered=["agee"]), "'agee' is not a moderator of this analysis"),
    ],
)
def test_bad_design_inputs_are_named(kwargs, fragment):
    df = stratified_trial(n=300, seed=12)
    with pytest.raises(AnalysisInputError, match=fragment):
        analyze(
            df,
            arm="arm",
            control="control",
            outcome="y",
            moderators=[BandSpec("age", (40.0,))],
            **kwargs,
        )
