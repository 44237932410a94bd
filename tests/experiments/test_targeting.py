"""Targeting: best arm per cell against the posterior computed exactly on the tau^2 grid,
the cross-fitted gain against a pandas re-computation of each fold, and the BLP / GATES
regressions against statsmodels WLS with HC2."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm
from scipy import stats

from experiments.analysis.cell_pooling import CellData, arm_cell_means, pool_cells
from experiments.analysis.targeting import (
    TargetingError,
    balanced_folds,
    best_arms,
    calibration,
    calibration_split,
    targeting_gain,
)
from experiments.bands import DEFAULT_AGE_BANDS as AGE
from experiments.bands import DEFAULT_SELF_EFFICACY_BANDS as SE

AGE_MID = np.array([26.0, 45.0, 70.0])
SE_MID = np.array([2.0, 3.0, 4.0])
CELL_AGE, CELL_SE = (m.ravel() for m in np.meshgrid(AGE_MID, SE_MID, indexing="ij"))
CONTROL_RATE = 0.12 - 0.001 * (CELL_AGE - 45) + 0.02 * (CELL_SE - 3)
# peer works for the young, efficacy for the old: targeting should gain
CROSSING = np.vstack([0.04 - 0.002 * (CELL_AGE - 45), 0.03 + 0.001 * (CELL_AGE - 45)])


def trial(effects, n=9000, seed=0, arms=("control", "peer", "efficacy"), strata=False):
    rng = np.random.default_rng(seed)
    age = rng.uniform(18, 86, n)
    se = np.clip(rng.normal(3, 0.8, n), 1, 5)
    cell = np.searchsorted(AGE.cuts, age, side="right") * 3 + np.searchsorted(
        SE.cuts, se, side="right"
    )
    arm = rng.integers(0, len(arms), n)
    p = CONTROL_RATE[cell] + np.where(arm > 0, effects[np.maximum(arm - 1, 0), cell], 0.0)
    y = (rng.random(n) < p).astype(float)
    block = rng.choice(["north", "south"], n) if strata else None
    return CellData(y, arm, tuple(arms), age, se, AGE, SE, block)


def test_best_arm_probability_equals_the_grid_posterior():
    data = trial(CROSSING[:1], arms=("control", "peer"), n=6000, seed=1)
    table = pool_cells(arm_cell_means(data))
    rows = best_arms(table, draws=40_000, seed=3)
    grid = table.pooled.grid
    for c, row in enumerate(rows):
        assert sum(row.probabilities.values()) == pytest.approx(1.0)
        # one arm against control: P(theta > 0) = sum_g w_g Phi(mean_g / sd_g), exactly
        i = table.index.index((0, c))
        exact = float(grid.weight @ stats.norm.cdf(grid.mean[:, i] / np.sqrt(grid.cov[:, i, i])))
        assert row.probabilities["peer"] == pytest.approx(exact, abs=4 * math.sqrt(0.25 / 40_000))
        assert row.best == ("peer" if table.pooled.mean[i] > 0 else "control")
        assert row.probability == row.probabilities[row.best]


def test_best_arms_follow_the_crossing_effects():
    table = pool_cells(arm_cell_means(trial(CROSSING, n=20_000, seed=2)))
    rows = {(r.levels["age"], r.levels["self_efficacy"]): r for r in best_arms(table)}
    assert rows[("18-34", "middle")].best == "peer" and rows[("18-34", "middle")].probability > 0.95
    assert rows[("55+", "middle")].best == "efficacy" and rows[("55+", "middle")].probability > 0.95


def test_folds_keep_every_cell_and_arm_balanced():
    data = trial(CROSSING, n=3000, seed=4, strata=True)
    fold = balanced_folds(data, 5, np.random.default_rng(0))
    groups = pd.DataFrame({"cell": data.cell, "arm": data.arm, "s": data.strata, "fold": fold})
    counts = groups.groupby(["cell", "arm", "s", "fold"]).size().unstack(fill_value=0)
    assert (counts.max(axis=1) - counts.min(axis=1)).max() <= 1


def test_gain_equals_a_recomputation_of_each_fold():
    data = trial(CROSSING, n=12_000, seed=5)
    gain = targeting_gain(data, folds=3, seed=9)
    fold = balanced_folds(data, 3, np.random.default_rng(9))
    frame = pd.DataFrame({"y": data.y, "arm": np.asarray(data.arms)[data.arm], "cell": data.cell})
    share = frame["cell"].value_counts(normalize=True).sort_index().to_numpy()
    labels = ["|".join(c.values()) for c in data.cells]
    total = var = 0.0
    for k in range(3):
        held = frame[fold == k]
        stats_ = held.groupby(["arm", "cell"])["y"].agg(["mean", "var", "count"])
        rule, single = gain.rules[k], gain.single_best[k]
        for c, label in enumerate(labels):
            if rule[label] == single:
                continue
            a, b = stats_.loc[(rule[label], c)], stats_.loc[(single, c)]
            total += len(held) / len(frame) * share[c] * (a["mean"] - b["mean"])
            var += (len(held) / len(frame) * share[c]) ** 2 * (
                a["var"] / a["count"] + b["var"] / b["count"]
            )
    assert gain.estimate == pytest.approx(total, rel=1e-9)
    assert gain.std_error == pytest.approx(math.sqrt(var), rel=1e-9)
    assert gain.ci_low > 0  # the crossing effects make targeting worth it
    assert set(gain.single_best) <= {"peer", "efficacy"}


def test_gain_is_zero_when_one_arm_is_best_everywhere():
    strong = np.vstack([np.full(9, 0.15), np.full(9, 0.0)])
    gain = targeting_gain(trial(strong, n=9000, seed=6), folds=3)
    assert gain.single_best == ("peer", "peer", "peer")
    assert gain.estimate == 0.0 and gain.std_error == 0.0 and math.isnan(gain.p_value)


def test_thin_data_is_refused_clearly():
    with pytest.raises(
        TargetingError, match="fold 1: an arm has too few participants in a cell to judge"
    ):
        targeting_gain(trial(CROSSING, n=300, seed=7), folds=5)
    with pytest.raises(TargetingError, match="the cells were not pooled: no estimates"):
        targeting_gain(trial(CROSSING, n=60, seed=7), folds=5)
    with pytest.raises(TargetingError, match="the cells were not pooled"):
        best_arms(pool_cells(arm_cell_means(trial(CROSSING, n=60, seed=7))))
    with pytest.raises(TargetingError, match="three folds"):
        targeting_gain(trial(CROSSING, n=300, seed=7), folds=2)


def test_blp_and_gates_equal_statsmodels_wls_hc2():
    data = trial(CROSSING, n=9000, seed=8)
    main = balanced_folds(data, 2, np.random.default_rng(1)) == 0
    fits = calibration_split(data, main, groups=3)
    aux = pool_cells(arm_cell_means(data.subset(~main)))
    for a in (1, 2):
        rows = main & ((data.arm == a) | (data.arm == 0))
        cell = data.cell[rows]
        proxy = np.array([aux.pooled.mean[aux.index.index((a - 1, c))] for c in cell])
        base = aux.means.mean[0][cell]
        d = (data.arm[rows] == a).astype(float)
        p = d.mean()  # no strata: the arm's share among its and control's rows
        X = np.column_stack([np.ones(len(d)), base, proxy, d - p, (d - p) * (proxy - proxy.mean())])
        ref = sm.WLS(data.y[rows], X, weights=1 / (p * (1 - p))).fit(cov_type="HC2")
        np.testing.assert_allclose(fits[a].blp.beta, ref.params, rtol=1e-8)
        np.testing.assert_allclose(fits[a].blp.std_errors, ref.bse, rtol=1e-8)
        bins = pd.qcut(proxy, 3, labels=False)
        G = np.column_stack(
            [np.ones(len(d)), base, proxy] + [(d - p) * (bins == g) for g in range(3)]
        )
        ref = sm.WLS(data.y[rows], G, weights=1 / (p * (1 - p))).fit(cov_type="HC2")
        np.testing.assert_allclose(fits[a].gates.beta, ref.params, rtol=1e-8)
        np.testing.assert_allclose(fits[a].gates.std_errors, ref.bse, rtol=1e-8)


def test_calibration_finds_the_heterogeneity_it_should():
    cal = {c.arm: c for c in calibration(trial(CROSSING, n=20_000, seed=10), splits=10)}
    peer = cal["peer"]
    assert peer.label == "exploratory" and peer.splits == 10
    assert peer.loading.ci_low > 0  # the proxy carries real heterogeneity
    assert peer.groups[0].estimate < peer.groups[-1].estimate
    assert peer.top_minus_bottom.p_value < 0.05
    assert peer.average_effect.ci_low < 0.04 < peer.average_effect.ci_high
    assert set(peer.to_dict()) >= {"average_effect", "loading", "groups", "top_minus_bottom"}


@pytest.mark.slow
def test_gain_interval_covers_the_chosen_rules_gain():
    """Simulation acceptance: over 500 trials the 95% interval covers the gain of the rules
    the folds chose (known cell effects) about 95% of the time."""
    effects = 0.03 + (CROSSING - 0.03) / 2  # half the crossing: the folds' rules vary
    theta = np.vstack([np.zeros(9), effects])  # control first
    trials, covered, gains = 500, 0, []
    for seed in range(trials):
        data = trial(effects, n=6000, seed=seed)
        gain = targeting_gain(data, folds=3, seed=seed)
        share = np.bincount(data.cell, minlength=9) / len(data.y)
        fold = balanced_folds(data, 3, np.random.default_rng(seed))
        labels = ["|".join(c.values()) for c in data.cells]
        truth = 0.0
        for k in range(3):
            rule = np.array([data.arms.index(gain.rules[k][label]) for label in labels])
            single = data.arms.index(gain.single_best[k])
            gap = theta[rule, np.arange(9)] - theta[single]
            truth += np.mean(fold == k) * float(share @ gap)
        covered += gain.ci_low <= truth <= gain.ci_high
        gains.append(truth)
    rate = covered / trials
    print(f"coverage {rate:.3f}; mean gain of the chosen rules {np.mean(gains):.4f}")
    assert abs(rate - 0.95) <= 3 * math.sqrt(0.95 * 0.05 / trials)
