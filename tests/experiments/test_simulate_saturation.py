"""The saturation simulator: spillover falls with distance and rises with saturation; the
truth it writes to truth.json is what the estimates target (coverage over re-runs)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from experiments.analysis.spillover import spillover_effects
from experiments.saturation import saturation_ra
from experiments.simulate import SimulationParams, simulate_population
from experiments.simulate_saturation import (
    SpilloverParams,
    _lifts,
    joined_given,
    simulate_saturation_outcomes,
    true_spillover,
)

LEVELS = (0, 0.4, 0.8)


def test_spillover_falls_with_distance_and_needs_a_treated_neighbour():
    p = SpilloverParams(direct=0.1, spillover=0.05, reach=0.1)
    codes = np.array([0, 0, 0, 1, 1])
    pos = np.array([0.0, 0.1, 0.5, 0.0, 0.1])
    treated = np.array([True, False, False, False, False])
    sat = np.array([0.4, 0.4, 0.4, 0.4, 0.4])
    lift = _lifts(codes, pos, treated, sat, p)
    assert lift[0] == pytest.approx(0.1)
    assert lift[1] == pytest.approx(0.05 * np.exp(-1))
    assert lift[2] == pytest.approx(0.05 * np.exp(-5))
    assert lift[3] == lift[4] == 0.0  # no treated member in their cluster
    assert (_lifts(codes, pos, treated, np.zeros(5), p)[1:] == 0).all()  # pure control


def test_truth_has_the_interface_shape_and_grows_with_saturation():
    population = simulate_population(1000, seed=2, params=SimulationParams(neighbourhood_size=50))
    truth = true_spillover(population, "neighbourhood", LEVELS, draws=50)
    assert set(truth) == {"0.4", "0.8"}
    for values in truth.values():
        assert set(values) == {"direct", "spillover_untreated", "total"}
        assert values["direct"] == pytest.approx(SpilloverParams().direct)
    assert truth["0.8"]["spillover_untreated"] > truth["0.4"]["spillover_untreated"]
    s = 0.4
    mix = s * truth["0.4"]["direct"] + (1 - s) * truth["0.4"]["spillover_untreated"]
    assert truth["0.4"]["total"] == pytest.approx(mix, rel=0.05)
    sim = simulate_saturation_outcomes(population, "neighbourhood", LEVELS, seed=4)
    assert list(sim.columns) == ["cluster", "saturation", "treated", "true_lift", "joined"]
    assert not sim.loc[sim["saturation"] == 0, "treated"].any()


@pytest.mark.slow
def test_intervals_cover_the_simulated_truth():
    """300 re-randomizations and outcome draws of one population of 3,000 in 60
    neighbourhoods: the 95% intervals cover the truth about 95% of the time."""
    population = simulate_population(3000, seed=5, params=SimulationParams(neighbourhood_size=50))
    truth = true_spillover(population, "neighbourhood", LEVELS, draws=100, seed=0)
    hits: dict = {}
    trials = 300
    clusters = population["neighbourhood"].to_numpy()
    base = 1 / (1 + np.exp(-population["true_join_logit"].to_numpy()))
    for i in range(trials):
        # The truth's positions (seed 0) stay; the design and the outcome noise vary.
        d = saturation_ra(clusters, LEVELS, 1000 + i)
        _, lift = joined_given(population, "neighbourhood", d.saturation, d.treated, 0)
        joined = (np.random.default_rng(i).random(len(base)) < base + lift).astype(int)
        sim = pd.DataFrame(
            {"cluster": clusters, "saturation": d.saturation, "treated": d.treated,
             "joined": joined}
        )  # fmt: skip
        for e in spillover_effects(
            sim["joined"], sim["treated"], sim["saturation"], sim["cluster"]
        ):
            t = truth[f"{e.saturation:g}"]
            for part, key in (("direct", "direct"), ("spillover", "spillover_untreated"),
                              ("total", "total")):  # fmt: skip
                inf = getattr(e, part)
                hits[(part, e.saturation)] = hits.get((part, e.saturation), 0) + (
                    inf.ci_low <= t[key] <= inf.ci_high
                )
    coverage = {k: v / trials for k, v in hits.items()}
    print("coverage", coverage)
    assert all(0.92 <= c <= 0.98 for c in coverage.values()), coverage
