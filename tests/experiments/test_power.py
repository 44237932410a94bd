"""Power: the analytic formulas by their defining property, the simulation by calibration."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
from scipy import stats

from experiments.design import load_design
from experiments.power import (
    interaction_inflation,
    minimum_detectable_effect,
    sample_size_two_proportions,
    simulate_power,
)

CATALOG = Path(__file__).resolve().parents[2] / "experiments" / "catalog"


def normal_power(p1, p2, n, alpha):
    """Power of the two-proportion z-test with n per arm (the formula's own model)."""
    pbar = (p1 + p2) / 2
    za = stats.norm.isf(alpha / 2)
    num = abs(p2 - p1) * math.sqrt(n) - za * math.sqrt(2 * pbar * (1 - pbar))
    return stats.norm.cdf(num / math.sqrt(p1 * (1 - p1) + p2 * (1 - p2)))


def test_sample_size_ten_vs_twelve_percent():
    s = sample_size_two_proportions(0.10, 0.12)
    assert s.n_per_arm == 3841 and s.n_total == 7682
    assert normal_power(0.10, 0.12, s.n_per_arm, 0.05) >= 0.8
    assert normal_power(0.10, 0.12, s.n_per_arm - 1, 0.05) < 0.8


def test_sample_size_splits_alpha_over_arms():
    s = sample_size_two_proportions(0.10, 0.13, arms=4, correction="holm")
    assert s.alpha_per_test == pytest.approx(0.05 / 3)
    assert normal_power(0.10, 0.13, s.n_per_arm, 0.05 / 3) >= 0.8
    assert normal_power(0.10, 0.13, s.n_per_arm - 1, 0.05 / 3) < 0.8
    none = sample_size_two_proportions(0.10, 0.13, arms=4, correction="none")
    assert none.n_per_arm < s.n_per_arm
    with pytest.raises(ValueError):
        sample_size_two_proportions(0.1, 0.1)


def test_mde_inverts_the_sample_size():
    s = sample_size_two_proportions(0.20, 0.25)
    mde = minimum_detectable_effect(0.20, s.n_per_arm, s.n_per_arm)
    assert mde == pytest.approx(0.05, abs=2e-4) and mde <= 0.05
    assert minimum_detectable_effect(0.2, 4 * s.n_per_arm, 4 * s.n_per_arm) < mde / 1.9


def test_interaction_inflation():
    assert interaction_inflation(1.0, 0.5) == pytest.approx(4)
    assert interaction_inflation(0.5, 0.5) == pytest.approx(16)
    assert interaction_inflation(1.0, 0.2) == pytest.approx(1 / 0.16)


def test_simulated_power_matches_analytic_at_the_analytic_sample_size():
    design = load_design(str(CATALOG / "self-efficacy-cleanup.toml"))
    s = sample_size_two_proportions(0.10, 0.13, 0.05, 0.8)
    r = simulate_power(design, n_total=s.n_total, simulations=400, seed=3, heterogeneity=0)
    (main,) = r.main
    assert abs(main.power - 0.8) < 4 * main.mc_error + 0.01
    assert abs(main.bias) < 0.003
    # no heterogeneity: the Wald tests reject at most alpha of the time (Holm over family)
    for row in r.interactions:
        assert row.power <= 0.05 + 3 * math.sqrt(0.05 * 0.95 / 400)
    assert {row.target for row in r.interactions} == {"age", "self_efficacy"}


def test_simulated_interaction_power_grows_with_heterogeneity():
    design = load_design(str(CATALOG / "self-efficacy-cleanup.toml"))
    weak = simulate_power(design, n_total=8000, simulations=150, seed=1, heterogeneity=0.2)
    strong = simulate_power(design, n_total=8000, simulations=150, seed=1, heterogeneity=1.0)
    for w, s in zip(weak.interactions, strong.interactions, strict=True):
        assert s.power > w.power + 0.2


def test_complete_randomization_within_strata_is_exact_and_random():
    import numpy as np

    from experiments.power import _complete_within

    rng = np.random.default_rng(0)
    key = np.repeat([0, 1, 2], [101, 50, 7])
    weights = np.array([2.0, 1.0, 1.0])
    seen = np.zeros((len(key), 3))
    for _ in range(2000):
        arm = _complete_within(rng, key, weights)
        for s, n in ((0, 101), (1, 50), (2, 7)):
            counts = np.bincount(arm[key == s], minlength=3)
            expected = n * weights / weights.sum()
            assert np.all(np.abs(counts - expected) < 1)
        seen[np.arange(len(key)), arm] += 1
    # every unit lands in each arm with its design probability
    assert np.abs(seen / 2000 - weights / weights.sum()).max() < 0.05
