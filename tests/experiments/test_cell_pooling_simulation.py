"""Simulation acceptance for the age x self-efficacy cells (slow): over many simulated
trials with known cell effects, the pooled estimates have lower mean squared error than
the raw ones and their 95% intervals cover 93-97%; with no heterogeneity the omnibus and
trend tests reject about 5% of the time."""

from __future__ import annotations

import math

import numpy as np
import pytest

from experiments.analysis.cell_pooling import CellData, arm_cell_means, pool_cells
from experiments.bands import DEFAULT_AGE_BANDS as AGE
from experiments.bands import DEFAULT_SELF_EFFICACY_BANDS as SE

ARMS = ("control", "peer", "efficacy")
AGE_MID = np.array([26.0, 45.0, 70.0])
SE_MID = np.array([2.0, 3.0, 4.0])
CELL_AGE, CELL_SE = (m.ravel() for m in np.meshgrid(AGE_MID, SE_MID, indexing="ij"))
CONTROL_RATE = 0.12 - 0.001 * (CELL_AGE - 45) + 0.02 * (CELL_SE - 3)


def smooth(intercept, per_year, per_point):
    return intercept + per_year * (CELL_AGE - 45) + per_point * (CELL_SE - 3)


def simulate(rng: np.random.Generator, n: int, effects: np.ndarray):
    """One trial: ages 18-85, self-efficacy ~ N(3, 0.8) on 1-5, arms 1:1:1, a 0/1
    outcome whose rate is the cell's control rate plus the arm's effect in the cell."""
    age = rng.uniform(18, 86, n)
    se = np.clip(rng.normal(3, 0.8, n), 1, 5)
    cell = np.searchsorted(AGE.cuts, age, side="right") * 3 + np.searchsorted(
        SE.cuts, se, side="right"
    )
    arm = rng.integers(0, 3, n)
    p = CONTROL_RATE[cell] + np.where(arm > 0, effects[np.maximum(arm - 1, 0), cell], 0.0)
    y = (rng.random(n) < p).astype(float)
    return arm_cell_means(CellData(y, arm, ARMS, age, se, AGE, SE))


def within(rate: float, target: float, trials: int, sigmas: float = 3.0) -> bool:
    return abs(rate - target) <= sigmas * math.sqrt(target * (1 - target) / trials)


@pytest.mark.slow
def test_pooled_cells_beat_raw_and_cover():
    # Known cell effects: a smooth surface per arm plus fixed deviations of about 0.85 of
    # a raw cell's standard error (one draw, kept fixed for every trial).
    deviations = np.random.default_rng(1).normal(0, 0.03, (2, 9))
    truth = np.vstack([smooth(0.04, -0.0005, 0.005), smooth(0.03, 0.0, -0.01)]) + deviations
    rng = np.random.default_rng(2026)
    trials = 500
    raw_se = pooled_se = 0.0
    covered = intervals = 0
    for _ in range(trials):
        table = pool_cells(simulate(rng, 6000, truth))
        assert table.error is None
        est = np.array(
            [
                [c.estimate, c.pooled_estimate, c.pooled_ci_low, c.pooled_ci_high]
                for c in table.cells
            ]
        )
        t = truth.ravel()  # cells come arm by arm, each in row-major cell order
        raw_se += np.sum((est[:, 0] - t) ** 2)
        pooled_se += np.sum((est[:, 1] - t) ** 2)
        covered += int(np.sum((est[:, 2] <= t) & (t <= est[:, 3])))
        intervals += len(t)
    coverage = covered / intervals
    print(
        f"MSE raw {raw_se / intervals:.3g}, pooled {pooled_se / intervals:.3g}; coverage {coverage:.4f}"
    )
    assert pooled_se < 0.75 * raw_se
    assert 0.93 <= coverage <= 0.97


@pytest.mark.slow
def test_omnibus_and_trend_tests_hold_their_size_without_heterogeneity():
    # Every cell has the arm's one effect (the control rate still differs by cell).
    truth = np.vstack([np.full(9, 0.03), np.full(9, 0.01)])
    rng = np.random.default_rng(7)
    trials = 1000
    omnibus = 0
    trends = np.zeros(4)
    for _ in range(trials):
        table = pool_cells(simulate(rng, 4500, truth))
        omnibus += table.omnibus_p_value < 0.05
        trends += np.array([t.p_value < 0.05 for t in table.trends])
    print(f"omnibus rejects {omnibus / trials:.3f}; trends {np.round(trends / trials, 3)}")
    assert within(omnibus / trials, 0.05, trials)
    for rate in trends / trials:
        assert within(rate, 0.05, trials)
