"""Randomization inference: on a small design the p-value equals a test-side full
enumeration of every assignment; on a larger one, re-draws with the design's randomizer
agree with the enumeration within Monte Carlo error and repeat with the seed."""

from __future__ import annotations

import itertools

import numpy as np
import pandas as pd
import pytest

from experiments.analysis import AnalysisInputError, analyze
from experiments.bands import BandSpec


def blocked_t(y: np.ndarray, treated: np.ndarray, strata: np.ndarray) -> float:
    """The blocked estimator's t statistic, written out: sum_j (N_j/N) tau_j over
    sum_j (N_j/N)^2 (s_Tj^2/n_Tj + s_Cj^2/n_Cj)."""
    est = var = 0.0
    for s in np.unique(strata):
        t, c = y[(strata == s) & treated], y[(strata == s) & ~treated]
        w = (strata == s).mean()
        est += w * (t.mean() - c.mean())
        var += w * w * (t.var(ddof=1) / len(t) + c.var(ddof=1) / len(c))
    return est / np.sqrt(var)


def small_blocked_trial(seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    strata = np.repeat(["a", "b"], [6, 7])
    arm = np.concatenate(
        [rng.permutation([1, 1, 1, 0, 0, 0]), rng.permutation([1, 1, 1, 0, 0, 0, 0])]
    )
    y = rng.normal(0, 1, 13) + 0.9 * arm + 0.5 * (strata == "b")
    return pd.DataFrame({"arm": np.where(arm == 1, "t", "c"), "stratum": strata, "y": y})


def enumerated_p(df: pd.DataFrame) -> float:
    y, strata = df.y.to_numpy(), df.stratum.to_numpy()
    observed = abs(blocked_t(y, (df.arm == "t").to_numpy(), strata))
    per_stratum = []
    for s in ("a", "b"):
        idx = np.flatnonzero(strata == s)
        k = int((df.arm.to_numpy()[idx] == "t").sum())
        per_stratum.append([idx[list(c)] for c in itertools.combinations(range(len(idx)), k)])
    hits = total = 0
    for combo in itertools.product(*per_stratum):
        treated = np.zeros(len(y), bool)
        treated[np.concatenate(combo)] = True
        hits += abs(blocked_t(y, treated, strata)) >= observed - 1e-12
        total += 1
    assert total == 20 * 35
    return hits / total


@pytest.mark.parametrize("seed", [0, 1])
def test_small_design_p_value_equals_full_enumeration(seed):
    df = small_blocked_trial(seed)
    res = analyze(
        df, arm="arm", control="c", outcome="y", block="stratum", randomization_inference=1000
    )
    (e,) = res.effects
    assert res.design.randomization_inference["exact"] is True
    assert res.design.randomization_inference["draws"] == 700
    assert e.ri_p_value == pytest.approx(enumerated_p(df), abs=1e-12)


def test_cluster_design_enumerates_cluster_assignments():
    rng = np.random.default_rng(4)
    sizes = np.array([3, 5, 2, 4, 6, 3, 2, 5])
    cl = np.repeat(np.arange(8), sizes)
    treated_clusters = np.array([1, 0, 1, 0, 1, 0, 1, 0])
    df = pd.DataFrame({"cl": cl, "arm": np.where(treated_clusters[cl] == 1, "t", "c")})
    df["y"] = rng.normal(0, 1, 8)[cl] + rng.normal(0, 1, len(cl)) + 0.5 * (df.arm == "t")
    res = analyze(
        df, arm="arm", control="c", outcome="y", cluster="cl", randomization_inference=100
    )
    (e,) = res.effects
    assert res.design.randomization_inference["draws"] == 70  # C(8, 4)
    # test side: the same CR2 t statistic for every cluster assignment
    observed = abs(e.statistic)
    hits = 0
    for chosen in itertools.combinations(range(8), 4):
        arm = np.where(np.isin(cl, chosen), "t", "c")
        r = analyze(df.assign(arm=arm), arm="arm", control="c", outcome="y", cluster="cl")
        hits += abs(r.effects[0].statistic) >= observed * (1 - 1e-9)
    assert e.ri_p_value == pytest.approx(hits / 70, abs=1e-12)


def test_monte_carlo_draws_agree_with_enumeration_and_repeat_with_the_seed():
    df = small_blocked_trial(3)
    exact = enumerated_p(df)
    runs = [
        analyze(
            df,
            arm="arm",
            control="c",
            outcome="y",
            block="stratum",
            randomization_inference=400,
            seed=s,
        )
        for s in (11, 11, 12)
    ]
    p = [r.effects[0].ri_p_value for r in runs]
    assert runs[0].design.randomization_inference["exact"] is False
    assert p[0] == p[1]  # seeded
    for q in p:
        assert abs(q - exact) < 4 * np.sqrt(exact * (1 - exact) / 400) + 1 / 400


def test_interactions_and_slopes_get_randomization_p_values():
    rng = np.random.default_rng(5)
    n = 400
    df = pd.DataFrame(
        {
            "arm": rng.choice(["c", "t"], n),
            "age": rng.integers(18, 80, n).astype(float),
            "st": rng.choice(["a", "b"], n),
        }
    )
    df["y"] = rng.normal(0, 1, n) + 0.8 * (df.arm == "t") * (df.age < 40)
    calls = []
    res = analyze(
        df,
        arm="arm",
        control="c",
        outcome="y",
        block="st",
        moderators=[BandSpec("age", (40.0, 60.0))],
        randomization_inference=199,
        seed=3,
        progress=lambda done, total: calls.append((done, total)),
    )
    assert calls[-1] == (199, 199) and len(calls) == 199
    for row in [*res.effects, *res.subgroups, *res.interactions, *res.slopes]:
        assert 1 / 200 <= row.ri_p_value <= 1
    (test,) = res.interactions
    assert test.p_value < 0.01 and test.ri_p_value < 0.05  # a real interaction
    assert "ri_p_value" in test.to_dict() and "ri_p_value" in res.effects[0].to_dict()
    plain = analyze(df, arm="arm", control="c", outcome="y")
    assert "ri_p_value" not in plain.effects[0].to_dict()


def test_clusters_spanning_strata_are_refused_clearly():
    df = pd.DataFrame(
        {
            "arm": ["c", "c", "t", "t", "c", "t"],
            "cl": [1, 1, 2, 2, 3, 4],
            "st": ["a", "b", "a", "a", "b", "b"],
            "y": [0.1, 0.5, 0.3, 0.9, 0.2, 0.4],
        }
    )
    with pytest.raises(AnalysisInputError, match="each cluster inside one stratum"):
        analyze(
            df,
            arm="arm",
            control="c",
            outcome="y",
            cluster="cl",
            block="st",
            randomization_inference=50,
        )
