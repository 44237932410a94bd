"""Simulation check: 95% intervals cover known effects 94-96% of the time (slow)."""

from __future__ import annotations

import pytest

from experiments.analysis.calibration import coverage


@pytest.mark.slow
def test_intervals_cover_the_truth_about_95_percent_of_the_time():
    result = coverage(simulations=1500, n=3000, seed=7)
    assert result["main"].intervals == 4500
    assert result["subgroup"].intervals == 13500
    for key in ("main", "subgroup", "lin"):
        assert 0.94 <= result[key].rate <= 0.96, (key, result[key].rate)
