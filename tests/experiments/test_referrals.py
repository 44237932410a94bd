"""The referral-chain comparison (referred residents against a comparison arm): against
statsmodels OLS of `y ~ 1 + referred` with the test-side CR2 and Bell-McCaffrey df of
test_analysis_cr2.py (clusters: the inviting mentor, the comparison member's randomized
cluster) and statsmodels' HC2 when no row shares a cluster; and by simulation (slow)."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm
from scipy import stats
from test_analysis_cr2 import CR2Reference

from experiments.analysis.referrals import referral_effect


def chains(rng: np.random.Generator, mentors: int = 25, gap: float = 0.15):
    """Comparison members in 40 clusters, and each mentor's 1-8 invitees with a mentor
    effect; rows of other arms (ignored) and a few missing outcomes mixed in."""
    sizes = rng.integers(5, 30, 40)
    cmp_cluster = np.repeat(np.arange(40), sizes)
    cmp_y = (rng.random(len(cmp_cluster)) < 0.2 + rng.normal(0, 0.05, 40)[cmp_cluster]).astype(
        float
    )
    invitees = rng.integers(1, 9, mentors)
    mentor = np.repeat(np.arange(100, 100 + mentors), invitees)
    ref_y = (
        rng.random(len(mentor)) < 0.2 + gap + rng.normal(0, 0.08, mentors)[mentor - 100]
    ).astype(float)
    other = 30
    frame = pd.DataFrame(
        {
            "y": np.r_[cmp_y, ref_y, rng.random(other)],
            "mentor": [None] * len(cmp_y) + list(mentor) + [None] * other,
            "arm": ["control"] * len(cmp_y) + ["control"] * (len(mentor) // 2)
            + ["mentor"] * (len(mentor) - len(mentor) // 2) + ["mentor"] * other,
            "cluster": list(cmp_cluster) + [None] * len(mentor) + list(range(other)),
        }
    )  # fmt: skip
    frame.loc[[3, len(cmp_y) + 1], "y"] = np.nan
    return frame


def reference(frame: pd.DataFrame):
    use = frame["y"].notna() & (frame["mentor"].notna() | (frame["arm"] == "control"))
    d = frame[use]
    referred = d["mentor"].notna().to_numpy(float)
    X = np.column_stack([np.ones(len(d)), referred])
    y = d["y"].to_numpy()
    groups = np.where(referred == 1, "m" + d["mentor"].astype(str), "c" + d["cluster"].astype(str))
    return X, y, groups


def test_equals_statsmodels_ols_with_test_side_cr2_and_bell_mccaffrey_df():
    frame = chains(np.random.default_rng(11))
    got = referral_effect(
        frame["y"], frame["mentor"], frame["arm"] == "control", frame["cluster"]
    ).effect
    X, y, groups = reference(frame)
    ols = sm.OLS(y, X).fit()
    ref = CR2Reference(X, y, groups)
    se = math.sqrt(ref.V[1, 1])
    dof = ref.df(np.array([0.0, 1.0]))
    q = stats.t.isf(0.025, dof)
    assert got.estimate == pytest.approx(ols.params[1], rel=1e-8, abs=1e-10)
    assert got.std_error == pytest.approx(se, rel=1e-8)
    assert got.df == pytest.approx(dof, rel=1e-8)
    assert got.ci_low == pytest.approx(ols.params[1] - q * se, rel=1e-8)
    assert got.ci_high == pytest.approx(ols.params[1] + q * se, rel=1e-8)
    assert got.p_value == pytest.approx(2 * stats.t.sf(abs(ols.params[1] / se), dof), rel=1e-6)


def test_without_shared_clusters_the_standard_error_is_hc2():
    rng = np.random.default_rng(12)
    n = 300
    y = rng.normal(size=n)
    mentor = np.where(np.arange(n) < 60, np.arange(n).astype(object), None)
    got = referral_effect(y, mentor, np.ones(n, bool))
    X = np.column_stack([np.ones(n), (np.arange(n) < 60).astype(float)])
    hc2 = sm.OLS(y, X).fit(cov_type="HC2")
    assert got.effect.estimate == pytest.approx(hc2.params[1], rel=1e-10)
    assert got.effect.std_error == pytest.approx(hc2.bse[1], rel=1e-8)
    assert got.n_referred == 60 and got.n_comparison == 240 and got.mentors == 60


def test_counts_means_and_what_cannot_be_compared():
    frame = chains(np.random.default_rng(13), mentors=6)
    got = referral_effect(frame["y"], frame["mentor"], frame["arm"] == "control", frame["cluster"])
    d = got.to_dict()
    referred = frame["mentor"].notna() & frame["y"].notna()
    assert d["n_referred"] == int(referred.sum()) and d["mentors"] == 6
    assert d["mean_referred"] == pytest.approx(frame.loc[referred, "y"].mean())
    assert "Not randomized" in d["note"] and d["comparison"] == "control"
    none = referral_effect([1.0, 0.0], [None, None], [True, True])
    assert none.to_dict()["estimate"] is None and "no referred residents" in none.message
    alone = referral_effect([1.0, 0.0, 1.0], [7, 7, None], [False, False, True])
    assert "one mentor" in alone.message or alone.to_dict()["ci_low"] is None


@pytest.mark.slow
def test_coverage_over_500_simulated_referral_chains():
    """Mentors' invitees with a mentor-level effect, comparison members in clusters:
    the 95% interval covers the true mean difference in 93-97% of 500 chains."""
    rng = np.random.default_rng(2029)
    covered = 0
    trials = 500
    for _ in range(trials):
        sizes = rng.integers(5, 30, 40)
        g = np.repeat(np.arange(40), sizes)
        cmp_y = 0.3 + rng.normal(0, 0.3, 40)[g] + rng.normal(0, 1, len(g))
        k = rng.integers(1, 9, 30)
        m = np.repeat(np.arange(30), k)
        ref_y = 0.5 + rng.normal(0, 0.3, 30)[m] + rng.normal(0, 1, len(m))
        got = referral_effect(
            np.r_[cmp_y, ref_y],
            np.r_[np.full(len(g), None, dtype=object), m.astype(object)],
            np.ones(len(g) + len(m), bool),
            np.r_[g.astype(object), np.full(len(m), None, dtype=object)],
        ).effect
        covered += got.ci_low <= 0.2 <= got.ci_high
    assert 0.93 <= covered / trials <= 0.97
