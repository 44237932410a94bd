"""Randomized saturation designs: the counts the design promises, reproducibility, and
that each member's chance of treatment is its cluster's saturation (by frequency)."""

from __future__ import annotations

import numpy as np
import pytest

from experiments.randomization import RandomizationError
from experiments.saturation import (
    check_saturations,
    format_saturation,
    parse_saturations,
    saturation_ra,
)


def _clusters(n_clusters: int = 47, seed: int = 3) -> np.ndarray:
    rng = np.random.default_rng(seed)
    sizes = rng.integers(1, 30, n_clusters)
    return np.repeat([f"street{i:03d}" for i in range(n_clusters)], sizes)


@pytest.mark.parametrize("levels", [(0, 0.4, 0.8), (0, 1), (0, 0.25, 0.5, 0.75, 1)])
@pytest.mark.parametrize("seed", [1, 20261202, 99])
def test_design_counts(levels, seed):
    clusters = _clusters()
    result = saturation_ra(clusters, levels, seed)
    per_cluster = result.cluster_saturation
    # every member carries its cluster's saturation
    assert all(per_cluster[c] == s for c, s in zip(clusters, result.saturation, strict=True))
    counts = [sum(1 for s in per_cluster.values() if s == level) for level in levels]
    assert max(counts) - min(counts) <= 1
    for c, s in per_cluster.items():
        members = clusters == c
        treated = int(result.treated[members].sum())
        assert abs(treated - s * members.sum()) < 1
    # pure-control clusters have no treated member; full ones no untreated
    assert not result.treated[result.saturation == 0].any()
    assert result.treated[result.saturation == 1].all()


def test_same_seed_same_design_other_seed_differs():
    clusters = _clusters()
    a = saturation_ra(clusters, (0, 0.4, 0.8), 7)
    b = saturation_ra(clusters, (0, 0.4, 0.8), 7)
    c = saturation_ra(clusters, (0, 0.4, 0.8), 8)
    assert np.array_equal(a.treated, b.treated) and np.array_equal(a.saturation, b.saturation)
    assert not (np.array_equal(a.treated, c.treated) and np.array_equal(a.saturation, c.saturation))


def test_blocked_by_stratum_balances_each_stratum():
    clusters = _clusters(60)
    codes = np.array([int(c[-3:]) for c in clusters])
    strata = np.where(codes % 2 == 0, "east", "west")
    result = saturation_ra(clusters, (0, 0.5, 1), 11, strata)
    for stratum in ("east", "west"):
        sats = [
            s
            for c, s in result.cluster_saturation.items()
            if int(c[-3:]) % 2 == (stratum == "west")
        ]
        counts = [sats.count(level) for level in (0, 0.5, 1)]
        assert max(counts) - min(counts) <= 1


def test_cluster_spanning_strata_is_refused():
    clusters = np.array(["a", "a", "b", "b"])
    with pytest.raises(RandomizationError, match="cluster 'a' has members in more than one"):
        saturation_ra(clusters, (0, 0.5), 1, np.array(["x", "y", "x", "x"]))


def test_treatment_probability_is_the_saturation():
    """Over many seeds, a member of a 5-person cluster at 0.3 is treated 30% of the time
    (floor 1, plus one with probability 0.5), and each saturation gets 1/3 of clusters."""
    clusters = np.repeat(np.arange(6), 5)
    treated = np.zeros(len(clusters))
    at_03 = np.zeros(len(clusters))
    draws = 3000
    for seed in range(draws):
        r = saturation_ra(clusters, (0, 0.3, 0.9), seed)
        at_03 += r.saturation == 0.3
        treated += r.treated & (r.saturation == 0.3)
    share = treated.sum() / at_03.sum()
    assert abs(share - 0.3) < 4 * np.sqrt(0.3 * 0.7 / at_03.sum() * 5)
    assert np.allclose(at_03 / draws, 1 / 3, atol=0.04)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("0,1.4", "outside \\[0, 1\\]"),
        ("-0.1,0.5", "outside"),
        ("0,40%", "40% is 0.4"),
        ("0,,0.8", "comma-separated"),
        ("0,abc", "not a number"),
        ("0.5", "at least two"),
        ("0,0.4,0.40", "listed twice"),
        ("0,nan", "outside"),
    ],
)
def test_bad_saturations_are_refused(text, message):
    with pytest.raises(RandomizationError, match=message):
        parse_saturations(text)


def test_formatting():
    assert check_saturations([0, "0.4", 1]) == (0.0, 0.4, 1.0)
    assert [format_saturation(x) for x in (0, 0.4, 1, 1 / 3)] == ["0", "0.4", "1", "0.333333"]
