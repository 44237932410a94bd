"""Sample ratio mismatch in randomized saturation designs: clusters per saturation against
equal shares, and members offered at their cluster's share. Checked against scipy's
Pearson chi-square and a test-side binomial z per saturation, on the analysis engine,
and by simulation (slow): at most 1% false alarms over simulated saturation trials."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from experiments.analysis import analyze
from experiments.analysis.srm import saturation_srm
from experiments.saturation import saturation_ra

LEVELS = (0.0, 0.4, 0.8)


def trial(rng: np.random.Generator, n_clusters: int = 30, seed: int = 0):
    sizes = rng.integers(5, 60, n_clusters)
    clusters = np.repeat(np.arange(n_clusters), sizes)
    design = saturation_ra(clusters, LEVELS, seed)
    return clusters, design.saturation, design.treated.astype(int)


def reference(clusters, sat, offered, levels):
    """Test side: Pearson over clusters per saturation plus a binomial z^2 per share."""
    cluster_sat = pd.Series(sat).groupby(clusters).first().to_numpy()
    per_level = np.array([(np.isclose(cluster_sat, x)).sum() for x in levels])
    chi1 = stats.chisquare(per_level).statistic
    chi2, df2 = 0.0, 0
    for x in levels:
        at = np.isclose(sat, x)
        if 0 < x < 1 and at.any():
            n = at.sum()
            z = (offered[at].sum() - n * x) / np.sqrt(n * x * (1 - x))
            chi2 += z * z
            df2 += 1
    df = len(levels) - 1 + df2
    return chi1 + chi2, df, stats.chi2.sf(chi1 + chi2, df)


def test_a_saturation_trial_is_not_a_mismatch_and_equals_the_reference():
    clusters, sat, offered = trial(np.random.default_rng(4))
    r = saturation_srm(offered, ["control", "mentor"], clusters, sat)
    assert r.error is None and not r.flagged
    stat, df, p = reference(clusters, sat, offered, LEVELS)
    assert r.statistic == pytest.approx(stat, rel=1e-10, abs=1e-12)
    assert r.df == df == 4 and r.p_value == pytest.approx(p, rel=1e-8)
    assert r.expected["mentor"] == pytest.approx(sat.sum())
    assert r.observed == {"control": int((offered == 0).sum()), "mentor": int(offered.sum())}


def test_offered_members_lost_from_the_data_are_flagged():
    rng = np.random.default_rng(5)
    clusters, sat, offered = trial(rng, n_clusters=90)
    keep = ~((offered == 1) & (rng.random(len(offered)) < 0.3))
    r = saturation_srm(offered[keep], ["control", "mentor"], clusters[keep], sat[keep])
    assert r.flagged and r.p_value < 0.001
    stat, df, _ = reference(clusters[keep], sat[keep], offered[keep], LEVELS)
    assert r.statistic == pytest.approx(stat, rel=1e-10)


def test_clusters_missing_from_one_saturation_are_flagged():
    rng = np.random.default_rng(6)
    clusters, sat, offered = trial(rng, n_clusters=90)
    keep = ~np.isin(clusters, np.unique(clusters[sat == 0.8])[:25])
    r = saturation_srm(offered[keep], ["control", "mentor"], clusters[keep], sat[keep])
    assert r.flagged


def test_impossible_allocations_are_errors_naming_the_cluster():
    clusters = np.array([0, 0, 1, 1, 2, 2])
    sat = np.array([0, 0, 0.5, 0.5, 1, 1.0])
    offered = np.array([1, 0, 1, 0, 1, 1])
    r = saturation_srm(offered, ["c", "t"], clusters, sat, cluster_labels=["a", "b", "c"])
    assert r.error == "zero_weight_arm" and "'a'" in r.message and not r.flagged
    offered[0] = 0
    offered[5] = 0
    r = saturation_srm(offered, ["c", "t"], clusters, sat, cluster_labels=["a", "b", "c"])
    assert r.error == "zero_weight_arm" and "'c'" in r.message
    offered[5] = 1
    sat2 = sat.copy()
    sat2[3] = 0.4
    r = saturation_srm(offered, ["c", "t"], clusters, sat2, cluster_labels=["a", "b", "c"])
    assert r.error == "mixed_saturations" and "'b'" in r.message


def test_the_engine_tests_saturation_designs_instead_of_refusing_mixed_clusters():
    clusters, sat, offered = trial(np.random.default_rng(7))
    frame = pd.DataFrame(
        {
            "arm": np.where(offered == 1, "mentor", "control"),
            "y": np.random.default_rng(1).random(len(clusters)),
            "hood": [f"h{c}" for c in clusters],
            "s": sat,
        }
    )
    result = analyze(
        frame, arm="arm", control="control", outcome="y", cluster="hood", saturation="s"
    )
    assert result.srm.error is None, result.srm.message
    assert result.srm.unit == "participants" and result.srm.strata == 3
    assert result.srm.p_value == pytest.approx(reference(clusters, sat, offered, LEVELS)[2])


@pytest.mark.slow
@pytest.mark.parametrize("draws", ["complete", "independent"])
def test_false_alarms_at_most_one_percent_over_simulated_saturation_trials(draws):
    """1,000 saturation trials of 45 clusters of unequal size: randomized by the design's
    randomizer (complete: conservative), or by independent draws as members who arrive
    later are (cluster saturation equally likely, each member offered with chance s)."""
    rng = np.random.default_rng(2028)
    flagged = 0
    trials = 1000
    for k in range(trials):
        sizes = np.maximum(2, rng.lognormal(3.0, 0.8, 45).astype(int))
        clusters = np.repeat(np.arange(45), sizes)
        if draws == "complete":
            design = saturation_ra(clusters, LEVELS, seed=k)
            sat, offered = design.saturation, design.treated.astype(int)
        else:
            sat = np.asarray(LEVELS)[rng.integers(0, 3, 45)][clusters]
            offered = (rng.random(len(clusters)) < sat).astype(int)
        result = saturation_srm(offered, ["control", "mentor"], clusters, sat, levels=LEVELS)
        assert result.error is None
        flagged += result.flagged
    assert flagged / trials <= 0.01
