"""The age x self-efficacy cells and targeting on the designs the platform produces:
randomization within strata (each cell split in two strata, plus four tiny strata of
three people) whose probabilities of treatment are 0.2 / 0.5 / 0.8, with effects that
differ between the strata of a cell, so that a cell's plain difference in means is biased
(shown here). Slow tests simulate 500 trials of one fixed population (only the assignment
and the noise are redrawn, fixed seeds) and check bias and 95% coverage of the known cell
effects (93-97%) and of the targeting gain of the chosen rules; a fast test checks one
cell against statsmodels WLS with HC2 to 1e-8.

Truth: in stratum s the outcome is mu_s + tau_as (arm a) + noise, so arm a's effect in
cell c is sum_{s in c} N_s tau_as / N_c."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm

from experiments.analysis.cell_pooling import CellData, arm_cell_means, pool_cells
from experiments.analysis.targeting import balanced_folds, targeting_gain
from experiments.bands import DEFAULT_AGE_BANDS as AGE
from experiments.bands import DEFAULT_SELF_EFFICACY_BANDS as SE

ARMS = ("control", "peer", "efficacy")
P = np.array([0.2, 0.5, 0.8])  # probability of a message (split evenly between the two)


def population(n: int = 4000, seed: int = 0):
    """Ages, self-efficacy, cells and strata of a fixed population: every cell is split in
    two strata of different probabilities, and four tiny strata of three people sit in
    cells 0, 4, 8 and 2."""
    rng = np.random.default_rng(seed)
    age = rng.uniform(18, 86, n)
    se = np.clip(rng.normal(3, 0.8, n), 1, 5)
    cell = np.searchsorted(AGE.cuts, age, side="right") * 3 + np.searchsorted(
        SE.cuts, se, side="right"
    )
    stratum = cell * 2 + rng.integers(0, 2, n)
    tiny_cells = np.array([0, 4, 8, 2])
    age = np.r_[age, np.repeat([26.0, 45.0, 70.0, 26.0], 3)]
    se = np.r_[se, np.repeat([2.0, 3.0, 4.0, 4.0], 3)]
    cell = np.r_[cell, np.repeat(tiny_cells, 3)]
    stratum = np.r_[stratum, np.repeat(18 + np.arange(4), 3)]
    prob = np.r_[P[np.arange(18) % 3], [0.2, 0.8, 0.2, 0.5]]
    cell_of = np.r_[np.arange(18) // 2, tiny_cells]
    return age, se, cell, stratum, prob, cell_of


AGE_V, SE_V, CELL, STRATUM, PROB, CELL_OF = population()
S = len(PROB)
CELL_AGE = np.repeat([26.0, 45.0, 70.0], 3)
CELL_SE = np.tile([2.0, 3.0, 4.0], 3)
MU = 1 + 1.0 * (PROB - 0.5)  # strata with more messages have higher outcomes


def effects(crossing: float, seed: int = 1) -> np.ndarray:
    """Each message's effect per stratum (2, S): a smooth surface per cell (peer for the
    young, efficacy for the old, scaled by `crossing`), fixed deviations per cell, and a
    shift of 0.4 (p - 0.5) inside the cell."""
    dev = np.random.default_rng(seed).normal(0, 0.06, (2, 9))
    cells = np.vstack(
        [
            0.3 - crossing * 0.008 * (CELL_AGE - 45) - 0.1 * (CELL_SE - 3),
            0.3 + crossing * 0.008 * (CELL_AGE - 45),
        ]
    )
    return (cells + dev)[:, CELL_OF] + 0.4 * (PROB - 0.5)


def cell_truth(tau: np.ndarray) -> np.ndarray:
    n = np.bincount(STRATUM, minlength=S)
    return np.vstack([np.bincount(CELL_OF, weights=n * t, minlength=9) for t in tau]) / np.bincount(
        CELL_OF, weights=n, minlength=9
    )


def trial(rng: np.random.Generator, tau: np.ndarray) -> CellData:
    """Complete randomization in each stratum: floor(p n) messages (one more with the
    remainder's probability), dealt at random between the two messages."""
    arm = np.zeros(len(STRATUM), np.intp)
    for s in range(S):
        rows = rng.permutation(np.flatnonzero(STRATUM == s))
        m = int(math.floor(PROB[s] * len(rows)) + (rng.random() < PROB[s] * len(rows) % 1))
        arm[rows[:m]] = 1 + rng.permutation(np.arange(m) % 2)
    effect = np.vstack([np.zeros(S), tau])[arm, STRATUM]
    y = MU[STRATUM] + effect + rng.normal(0, 1, len(arm))
    share = np.where(arm == 0, 1 - PROB[STRATUM], PROB[STRATUM] / 2)
    return CellData(y, arm, ARMS, AGE_V, SE_V, AGE, SE, STRATUM.astype(str), share)


def test_a_cell_with_strata_of_different_probabilities_equals_statsmodels_wls_hc2():
    data = trial(np.random.default_rng(3), effects(1.0))
    means = arm_cell_means(data)
    est, se = means.effects()
    c = 5  # a cell without tiny strata: two strata of different probabilities
    rows = data.cell == c
    block = pd.factorize(data.strata[rows])[0]
    arm = data.arm[rows]
    X = np.column_stack([(block == b) & (arm == a) for b in range(2) for a in range(3)])
    fit = sm.WLS(data.y[rows], X.astype(float), weights=1 / data.probability[rows])
    fit = fit.fit(cov_type="HC2")
    share = np.bincount(block) / rows.sum()
    for a in (1, 2):
        contrast = np.zeros(6)
        contrast[[a, 3 + a]] = share
        contrast[[0, 3]] -= share
        assert est[a - 1, c] == pytest.approx(contrast @ fit.params, abs=1e-8)
        assert se[a - 1, c] == pytest.approx(
            math.sqrt(contrast @ fit.cov_params() @ contrast), abs=1e-8
        )


@pytest.mark.slow
def test_raw_and_pooled_cells_cover_on_unequal_probability_and_tiny_strata():
    tau = effects(1.0)
    truth = cell_truth(tau).ravel()  # cells come arm by arm, in row-major cell order
    rng = np.random.default_rng(2201)
    trials = 500
    raw_err = np.zeros(len(truth))
    raw_err_sq = np.zeros(len(truth))
    naive_err = np.zeros(len(truth))
    raw_hits = pooled_hits = 0
    raw_sq = pooled_sq = 0.0
    for _ in range(trials):
        data = trial(rng, tau)
        table = pool_cells(arm_cell_means(data))
        assert table.error is None
        est = np.array(
            [
                [c.estimate, c.std_error, c.pooled_estimate, c.pooled_ci_low, c.pooled_ci_high]
                for c in table.cells
            ]
        )
        raw_err += est[:, 0] - truth
        raw_err_sq += (est[:, 0] - truth) ** 2
        raw_hits += int(np.sum(np.abs(est[:, 0] - truth) <= 1.959964 * est[:, 1]))
        pooled_hits += int(np.sum((est[:, 3] <= truth) & (truth <= est[:, 4])))
        raw_sq += float(np.sum((est[:, 0] - truth) ** 2))
        pooled_sq += float(np.sum((est[:, 2] - truth) ** 2))
        cell = data.cell
        naive = [
            data.y[(cell == c) & (data.arm == a)].mean()
            - data.y[(cell == c) & (data.arm == 0)].mean()
            for a in (1, 2)
            for c in range(9)
        ]
        naive_err += np.asarray(naive) - truth
    intervals = trials * len(truth)
    raw_rate, pooled_rate = raw_hits / intervals, pooled_hits / intervals
    bias, naive_bias = raw_err / trials, naive_err / trials
    mcse = np.sqrt((raw_err_sq / trials - bias**2) / (trials - 1))
    print(
        f"{trials} trials, {intervals} intervals: raw coverage {raw_rate:.4f}, pooled "
        f"{pooled_rate:.4f}; largest |bias| raw {np.abs(bias).max():.4f}, naive "
        f"{np.abs(naive_bias).max():.3f}, largest |bias| / mcse {np.abs(bias / mcse).max():.2f}; MSE raw {raw_sq / intervals:.4f}, pooled "
        f"{pooled_sq / intervals:.4f}"
    )
    assert 0.94 <= raw_rate <= 0.96
    assert 0.93 <= pooled_rate <= 0.97
    # 18 cells: each raw cell's mean error within 3.5 Monte Carlo standard errors of 0
    assert np.abs(bias / mcse).max() < 3.5
    assert np.abs(naive_bias / mcse).min() > 5  # every naive cell is off
    assert pooled_sq < raw_sq


@pytest.mark.slow
def test_targeting_gain_covers_the_chosen_rules_gain_on_unequal_probability_strata():
    tau = effects(0.5)  # half the crossing: the folds' rules vary
    theta = np.vstack([np.zeros(9), cell_truth(tau)])  # control first
    share = np.bincount(CELL, minlength=9) / len(CELL)
    trials, covered, errors = 400, 0, []
    for seed in range(trials):
        data = trial(np.random.default_rng(2300 + seed), tau)
        gain = targeting_gain(data, folds=3, seed=seed)
        fold = balanced_folds(data, 3, np.random.default_rng(seed))
        labels = ["|".join(c.values()) for c in data.cells]
        truth = 0.0
        for k in range(3):
            rule = np.array([data.arms.index(gain.rules[k][label]) for label in labels])
            single = data.arms.index(gain.single_best[k])
            truth += np.mean(fold == k) * float(share @ (theta[rule, np.arange(9)] - theta[single]))
        covered += gain.ci_low <= truth <= gain.ci_high
        errors.append(gain.estimate - truth)
    rate = covered / trials
    mcse = np.std(errors, ddof=1) / math.sqrt(trials)
    print(f"gain: coverage {rate:.3f}, bias {np.mean(errors):+.4f} (mcse {mcse:.4f})")
    assert 0.93 <= rate <= 0.97
    assert abs(np.mean(errors)) <= 3 * mcse
