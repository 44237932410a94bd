"""Always-valid monitoring: the asymptotic confidence sequence and its p-value against a
test-side implementation of the published formula (Waudby-Smith et al. 2023, as GrowthBook
writes it), the summed-cells path against the registry's estimator, and by simulation."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from scipy import optimize

from experiments.analysis import AnalysisInputError, analyze, choose
from experiments.analysis.sequential import rho_squared
from experiments.analysis.strata import pool_strata
from experiments.analysis.trial import prepare


def paper_cs(estimate, variance, n, alpha, n_star):
    """Asymptotic CS: mu_n +- sigma_n sqrt(2 (n rho^2 + 1) / (n^2 rho^2) log(sqrt(n rho^2 + 1)
    / alpha)), sigma_n^2 = n Var(mu_n), rho^2 = (-2 log a + log(-2 log a + 1)) / N*."""
    rho2 = (-2 * math.log(alpha) + math.log(-2 * math.log(alpha) + 1)) / n_star
    sigma = math.sqrt(n * variance)
    w = sigma * math.sqrt(
        2 * (n * rho2 + 1) / (n * n * rho2) * math.log(math.sqrt(n * rho2 + 1) / alpha)
    )
    return estimate - w, estimate + w


def paper_p(estimate, variance, n, alpha, n_star):
    """The smallest level a' whose sequence (rho fixed by alpha) excludes zero, by root finding."""
    rho2 = (-2 * math.log(alpha) + math.log(-2 * math.log(alpha) + 1)) / n_star
    sigma = math.sqrt(n * variance)

    def gap(log_a):
        w = sigma * math.sqrt(
            2 * (n * rho2 + 1) / (n * n * rho2) * (math.log(math.sqrt(n * rho2 + 1)) - log_a)
        )
        return abs(estimate) - w

    if gap(0.0) <= 0:
        return 1.0
    return math.exp(optimize.brentq(gap, -700, 0.0, xtol=1e-14))


def frame(n=3000, seed=0, effect=0.0, days=8, strata=False):
    rng = np.random.default_rng(seed)
    arm = rng.choice(["control", "peer", "info"], n)
    y = rng.normal(0, 1, n) + effect * (arm == "peer")
    out = pd.DataFrame({"arm": arm, "y": y, "day": rng.integers(1, days + 1, n)})
    if strata:
        out["stratum"] = rng.choice(["a", "b", "c", "d"], n, p=[0.4, 0.3, 0.2, 0.1])
    return out


def test_looks_equal_the_published_formula_with_difference_in_means():
    df = frame(seed=1, effect=0.15)
    res = analyze(df, arm="arm", control="control", outcome="y", sequential="day")
    n_star = len(df)
    for seq in res.sequential:
        assert seq.method == "asymptotic_confidence_sequence"
        assert [x.through for x in seq.looks] == list(range(1, 9))
        running = 1.0
        for look in seq.looks:
            rows = df[df.day <= look.through]
            t = rows.loc[rows.arm == seq.arm, "y"]
            c = rows.loc[rows.arm == "control", "y"]
            est = t.mean() - c.mean()
            var = t.var() / len(t) + c.var() / len(c)
            lo, hi = paper_cs(est, var, len(rows), 0.05, n_star)
            assert look.n == len(rows)
            assert look.estimate == pytest.approx(est, rel=1e-10, abs=1e-12)
            assert (look.ci_low, look.ci_high) == pytest.approx((lo, hi), rel=1e-9)
            running = min(running, paper_p(est, var, len(rows), 0.05, n_star))
            assert look.p_value == pytest.approx(running, rel=1e-6, abs=1e-12)
    # the last look is the headline estimate
    assert res.sequential[0].looks[-1].estimate == pytest.approx(res.effects[0].estimate)
    # p <= alpha exactly when some look's interval excluded zero
    for seq in res.sequential:
        assert (seq.looks[-1].p_value <= 0.05) == seq.ever_excluded_zero


def test_summed_cells_give_the_registry_estimator_at_every_look():
    df = frame(n=4000, seed=2, effect=0.1, strata=True)
    res = analyze(df, arm="arm", control="control", outcome="y", block="stratum", sequential="day")
    prep = prepare(df, arm="arm", control="control", outcome="y", block="stratum")
    from dataclasses import replace

    for t, _ in enumerate(res.sequential[0].looks):
        mask = (df.day <= t + 1).to_numpy()
        sub, design = prep.trial.subset(mask), prep.design.subset(mask)
        design = replace(design, pooled=pool_strata(sub, design))
        effects = choose("effects", design)(sub, design)
        for seq, e in zip(res.sequential, effects, strict=True):
            look = seq.looks[t]
            n = int(mask.sum())
            lo, hi = paper_cs(e.estimate, e.std_error**2, n, 0.05, len(df))
            assert e.method == "blocked"
            assert look.estimate == pytest.approx(e.estimate, rel=1e-9)
            assert (look.ci_low, look.ci_high) == pytest.approx((lo, hi), rel=1e-9)
    assert res.design.sequential["estimator"] == "blocked"


def test_cluster_designs_count_clusters_and_use_cr2():
    rng = np.random.default_rng(3)
    g = np.repeat(np.arange(60), rng.integers(3, 12, 60))
    arm_of = rng.permutation(np.arange(60) % 2)
    df = pd.DataFrame(
        {
            "arm": np.where(arm_of[g] == 1, "peer", "control"),
            "street": g.astype(str),
            "y": rng.normal(0, 1, len(g)),
            "week": rng.integers(1, 4, 60)[g],  # a street enrols in one week
        }
    )
    res = analyze(
        df, arm="arm", control="control", outcome="y", cluster="street", sequential="week"
    )
    (seq,) = res.sequential
    assert seq.estimator == "cluster_robust"
    assert seq.looks[-1].n == 60
    assert seq.looks[-1].estimate == pytest.approx(res.effects[0].estimate)


def test_dates_order_the_looks_and_bad_times_are_refused():
    df = frame(n=600, seed=4, days=3)
    df["when"] = df.day.map({1: "2026-11-09", 2: "2026-11-10", 3: "2026-11-30"})
    df.loc[5, "when"] = None  # no time: left out of the looks only
    res = analyze(df, arm="arm", control="control", outcome="y", sequential="when")
    assert [x.through for x in res.sequential[0].looks] == [
        "2026-11-09",
        "2026-11-10",
        "2026-11-30",
    ]
    assert res.design.sequential["rows_without_time"] == 1
    assert res.n_analysed == 600
    df.loc[7, "when"] = "next tuesday"
    with pytest.raises(AnalysisInputError, match="'next tuesday' at data row 8"):
        analyze(df, arm="arm", control="control", outcome="y", sequential="when")
    with pytest.raises(AnalysisInputError, match="no column 'nope'"):
        analyze(df, arm="arm", control="control", outcome="y", sequential="nope")


def test_rho_is_tightest_at_the_tuning_sample():
    # The half-width's multiplier sqrt(2 (n rho^2 + 1) / (n rho^2) log(...)) / sqrt(n)
    # relative to the fixed-horizon z / sqrt(n) is smallest near n = N*.
    from experiments.analysis.sequential import half_width

    ratios = {
        n: half_width(1 / math.sqrt(n), n, 0.05, 5000) * math.sqrt(n) for n in (500, 5000, 50000)
    }
    assert ratios[5000] < ratios[500] and ratios[5000] < ratios[50000]
    assert rho_squared(0.05, 5000) == pytest.approx(
        (-2 * math.log(0.05) + math.log(-2 * math.log(0.05) + 1)) / 5000
    )


@pytest.mark.slow
def test_aa_with_ten_looks_ever_excludes_zero_at_most_five_percent():
    """1,000 A/A trials of 2,000 participants (binary outcome, 10% base rate), ten daily
    looks: the always-valid interval ever excludes zero in at most 5% of trials, where the
    fixed-horizon interval looked at the same ten times does in about 17-20%. In 500 more
    trials with a true effect the sequences cover it at every look in at least 95%."""
    rng = np.random.default_rng(2026)
    null_trials, effect_trials, n = 1000, 500, 2000
    ever_cs = ever_fixed = covered = 0
    for i in range(null_trials + effect_trials):
        arm = rng.choice(["control", "peer"], n)
        day = rng.integers(1, 11, n)
        effect = 0.0 if i < null_trials else 0.03
        y = (rng.random(n) < 0.1 + effect * (arm == "peer")).astype(float)
        df = pd.DataFrame({"arm": arm, "joined": y, "day": day})
        res = analyze(
            df, arm="arm", control="control", outcome="joined", sequential="day", flow_columns=False
        )
        (seq,) = res.sequential
        if effect == 0:
            ever_cs += seq.ever_excluded_zero
            # the fixed-horizon z test at each look, from cumulative sums per day and arm
            treated = arm == "peer"
            n_t = np.cumsum(np.bincount(day, weights=treated, minlength=11))[1:]
            n_c = np.cumsum(np.bincount(day, weights=~treated, minlength=11))[1:]
            s_t = np.cumsum(np.bincount(day, weights=y * treated, minlength=11))[1:]
            s_c = np.cumsum(np.bincount(day, weights=y * ~treated, minlength=11))[1:]
            p_t, p_c = s_t / n_t, s_c / n_c
            var = p_t * (1 - p_t) / (n_t - 1) + p_c * (1 - p_c) / (n_c - 1)
            ever_fixed += bool(np.any(np.abs(p_t - p_c) > 1.96 * np.sqrt(var)))
        else:
            covered += all(x.ci_low <= effect <= x.ci_high for x in seq.looks)
    print(
        f"A/A ever excluded zero {ever_cs / null_trials:.3f} (fixed horizon "
        f"{ever_fixed / null_trials:.3f}); coverage at every look {covered / effect_trials:.3f}"
    )
    assert ever_cs / null_trials <= 0.05
    assert ever_fixed / null_trials > 0.10  # the peeking problem the sequences solve
    assert covered / effect_trials >= 0.95
