"""Simulation checks (slow): 95% intervals cover known effects 94-96% of the time, and
tests of a true null reject at most at their level, on the designs the platform makes.
Each runs at least 1,000 trials through the whole `analyze` pipeline (calibration.py
describes the trials); benchmarks/coverage_sim.py runs the same checks with more trials."""

from __future__ import annotations

import pytest

from experiments.analysis.calibration import cluster_coverage, coverage, stratified_coverage


@pytest.mark.slow
def test_intervals_cover_the_truth_about_95_percent_of_the_time():
    result = coverage(simulations=1500, n=3000, seed=7)
    assert result["main"].intervals == 4500
    assert result["subgroup"].intervals == 13500
    for key in ("main", "subgroup", "lin"):
        assert 0.94 <= result[key].rate <= 0.96, (key, result[key].rate)


@pytest.mark.slow
def test_stratified_design_with_probabilities_02_05_08_covers_and_keeps_its_size():
    result = stratified_coverage(simulations=2000, n=2500, seed=8)
    assert result["main"].intervals == 2000 and result["subgroup"].intervals == 6000
    for key in ("main", "lin", "subgroup"):
        assert 0.94 <= result[key].rate <= 0.96, (key, result[key].rate)
    assert result["interaction_rejections"].rate <= 0.06


@pytest.mark.slow
@pytest.mark.parametrize("clusters", [10, 20])
def test_few_unequal_clusters_cover_and_keep_the_interaction_tests_size(clusters):
    result = cluster_coverage(clusters, simulations=1000, seed=clusters)
    assert result["main"].intervals == 1000
    assert result["main"].rate >= 0.935, result["main"].rate
    assert result["subgroup"].rate >= 0.935, result["subgroup"].rate
    assert result["interaction_rejections"].rate <= 0.07
