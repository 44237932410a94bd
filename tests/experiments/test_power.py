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


@pytest.mark.slow  # a simulation (run by .ci/run: -m slow)
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


@pytest.mark.slow  # a simulation (run by .ci/run: -m slow)
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


def test_analytic_power_equals_statsmodels_normal_and_t_power():
    from statsmodels.stats.power import NormalIndPower, TTestIndPower

    from experiments.power import analytic_power, design_effect

    # Individual randomization, equal SDs: statsmodels' two-sample z power.
    ref = NormalIndPower().power(effect_size=0.2 / 1.1, nobs1=300, alpha=0.05, ratio=500 / 300)
    assert analytic_power(0.2, 1.1, 1.1, 300, 500, 0.05) == pytest.approx(ref, rel=1e-10)
    # Clusters of m with ICC rho: the t test on cluster means (G_T + G_C - 2 df), whose
    # variance per cluster is sigma^2 (1 + (m - 1) rho) / m.
    m, rho, g_t, g_c, sigma = 20, 0.05, 30, 40, 0.4
    deff = design_effect(rho, m)
    assert deff == pytest.approx(1 + 19 * 0.05)
    es = 0.05 / math.sqrt(sigma**2 * deff / m)
    ref = TTestIndPower().power(effect_size=es, nobs1=g_t, alpha=0.05, ratio=g_c / g_t)
    got = analytic_power(0.05, sigma, sigma, g_t * m, g_c * m, 0.05, deff, g_t + g_c - 2)
    assert got == pytest.approx(ref, rel=1e-8)
    assert design_effect(0.1, 10, cv=0.5) == pytest.approx(1 + (1.25 * 10 - 1) * 0.1)


def test_the_heterogeneity_spread_is_centred_on_the_stated_effect():
    design = load_design(str(CATALOG / "self-efficacy-cleanup.toml"))
    r = simulate_power(design, n_total=3000, simulations=20, seed=2, heterogeneity=1.0)
    # Age 18-85 falls unevenly in the bands 18-34 / 35-54 / 55+: uncentred, the average
    # effect would be about 1.2 x the stated one.
    assert r.main[0].truth == pytest.approx(r.effect, abs=0.0015)


def test_cluster_designs_are_simulated_as_clusters_and_analysed_with_cr2():
    design = load_design(str(CATALOG / "self-efficacy-cleanup.toml"))
    r = simulate_power(design, n_total=1990, simulations=10, seed=2, icc=0.1, cluster_size=10)
    assert r.clusters == 199 and r.n_total == 1990 and r.design_effect == pytest.approx(1.9)
    assert r.estimator.startswith("cluster_robust") and r.interaction_test == "htz_f"
    assert r.to_dict()["icc"] == 0.1
    with pytest.raises(ValueError, match="--cluster-size"):
        simulate_power(design, simulations=10, icc=0.1)


def _design_without_moderators(tmp_path, cluster: str | None = None) -> Path:
    text = (CATALOG / "self-efficacy-cleanup.toml").read_text()
    text = text.replace('moderators = ["age", "self_efficacy"]', "moderators = []")
    assert "moderators = []" in text
    path = tmp_path / "design.toml"
    path.write_text(text)
    return path


@pytest.mark.slow
@pytest.mark.parametrize("cluster", [None, (0.05, 10)])
def test_nudge_power_is_within_two_points_of_the_analytic_power(tmp_path, cluster):
    """4,000 simulated trials through `nudge power` (Monte Carlo SE about 0.6 points):
    the main effect's power is within 2 points of the analytic value, with individual
    randomization in strata and with clusters of 10 at ICC 0.05 (design effect 1.45)."""
    import json

    from click.testing import CliRunner

    from nudge_app.cli.power import command

    path = _design_without_moderators(tmp_path)
    args = [str(path), "--simulations", "4000", "--format", "json", "--seed", "11"]
    if cluster:
        args += ["--icc", str(cluster[0]), "--cluster-size", str(cluster[1]), "--n", "5200"]
    else:
        args += ["--n", "3600"]
    res = CliRunner().invoke(command, args)
    assert res.exit_code == 0, res.output
    (main,) = json.loads(res.output)["main"]
    # The analytic value, written out here: normal (or t on G - 2 df) with the unpooled
    # variance of the two proportions inflated by the design effect.
    p1, p2 = 0.10, 0.13
    n = 5200 if cluster else 3600
    deff = 1 + (cluster[1] - 1) * cluster[0] if cluster else 1.0
    se = math.sqrt(deff * (p1 * (1 - p1) + p2 * (1 - p2)) / (n / 2))
    if cluster:
        df = n / cluster[1] - 2
        crit = stats.t.isf(0.025, df)
        analytic = stats.nct.sf(crit, df, 0.03 / se) + stats.nct.cdf(-crit, df, 0.03 / se)
    else:
        analytic = stats.norm.sf(stats.norm.isf(0.025) - 0.03 / se)
    assert main["analytic"] == pytest.approx(analytic, abs=1e-4)
    assert abs(main["power"] - analytic) <= 0.02
