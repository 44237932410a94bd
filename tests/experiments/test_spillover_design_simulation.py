"""Spillover estimates on the saturation designs the platform produces with few clusters:
12 or 18 clusters (4 or 6 per saturation 0 / 0.4 / 0.8) of very unequal sizes (5 to 80
members), assigned by the platform's own `saturation_ra`, with baselines and effects that
grow with the cluster's size, so the individual-weighted estimand differs from a
cluster-weighted one. Slow: 600 trials of one fixed population of clusters (fixed seeds: the
outcome noise from `count`, the assignment of trial i from count * 10,000 + i, the
randomization inference's re-draws from i) check the bias and 95% coverage (93-97%) of the
randomization-inference intervals of the direct, spillover and total effects against their
known values, and that intervals ignoring the clusters do not cover. Each case takes about
a minute of CPU.
(The estimator's arithmetic is checked against statsmodels in test_spillover.py.)

Truth: member i of cluster j at saturation s has outcome a_j + (T d_j + (1 - T) p_j) s +
noise for s > 0 and a_j + noise in pure control, so the direct effect at s is
s sum_j n_j d_j / N, the spillover s sum_j n_j p_j / N, and the total effect (s n_j
members of cluster j are treated) their s / (1 - s) mixture."""

from __future__ import annotations

import math

import numpy as np
import pytest

from experiments.analysis.spillover import spillover_effects
from experiments.saturation import saturation_ra

LEVELS = (0.0, 0.4, 0.8)
DRAWS = 499  # randomization-inference re-draws per trial (the report uses 999)
SIZES = (5, 80, 10, 60, 15, 40, 5, 50, 20, 30, 10, 25, 5, 45, 15, 35, 10, 20)


def clusters(count: int, seed: int = 0, heterogeneous: bool = True):
    """Sizes (5 to 80, multiples of 5 so 0.4 and 0.8 of them are whole), baselines a_j and effects
    d_j, p_j that rise with size."""
    rng = np.random.default_rng(seed)
    sizes = np.array(SIZES[:count])
    z = (sizes - sizes.mean()) / sizes.std()
    baseline = 1.0 + 0.3 * z + rng.normal(0, 0.3, count)
    direct = 0.6 + 0.3 * z * heterogeneous
    spill = 0.25 + 0.15 * z * heterogeneous
    return sizes, baseline, direct, spill


def truth(sizes, direct, spill) -> dict[tuple[str, float], float]:
    d = float(sizes @ direct / sizes.sum())
    p = float(sizes @ spill / sizes.sum())
    out = {}
    for s in LEVELS[1:]:
        out[("direct", s)] = s * d
        out[("spillover", s)] = s * p
        out[("total", s)] = s * (s * d + (1 - s) * p)
    return out


def run(count: int, trials: int, seed: int, heterogeneous: bool = True):
    sizes, baseline, direct, spill = clusters(count, heterogeneous=heterogeneous)
    assert sizes.min() >= 5 and sizes.max() >= 8 * sizes.min()  # very unequal
    member = np.repeat(np.arange(count), sizes)
    target = truth(sizes, direct, spill)
    rng = np.random.default_rng(seed)
    errors = {k: [] for k in target}
    hits = {k: 0 for k in target}
    iid_hits = {k: 0 for k in target}
    for i in range(trials):
        design = saturation_ra(member, LEVELS, seed * 10_000 + i)
        s, t = design.saturation, design.treated
        effect = np.where(t, direct[member], spill[member]) * s
        y = baseline[member] + effect + rng.normal(0, 1, len(member))
        for g in spillover_effects(y, t, s, member, draws=DRAWS, seed=i):
            at = np.isclose(s, g.saturation)
            pure = s == 0
            for part in ("direct", "spillover", "total"):
                key = (part, g.saturation)
                inf = getattr(g, part)
                errors[key].append(inf.estimate - target[key])
                hits[key] += inf.ci_low <= target[key] <= inf.ci_high
                side = at & (t if part == "direct" else ~t if part == "spillover" else True)
                iid_se = math.sqrt(
                    y[side].var(ddof=1) / side.sum() + y[pure].var(ddof=1) / pure.sum()
                )
                iid_hits[key] += abs(inf.estimate - target[key]) <= 1.959964 * iid_se
    return errors, hits, iid_hits


def check(count: int, heterogeneous: bool) -> None:
    trials = 600
    errors, hits, iid_hits = run(count, trials, seed=count, heterogeneous=heterogeneous)
    for key in errors:
        e = np.asarray(errors[key])
        mcse = e.std(ddof=1) / math.sqrt(len(e))
        print(
            f"{count} clusters, {key[0]} at {key[1]}: coverage {hits[key] / trials:.3f}, bias "
            f"{e.mean():+.4f} (mcse {mcse:.4f}); ignoring clusters {iid_hits[key] / trials:.3f}"
        )
    for key in errors:
        e = np.asarray(errors[key])
        mcse = e.std(ddof=1) / math.sqrt(len(e))
        rate = hits[key] / trials
        assert len(e) == trials
        assert 0.93 <= rate <= 0.97, (key, rate)
        assert abs(e.mean()) <= 3 * mcse, (key, e.mean(), mcse)
    # intervals that ignore the clusters are too short here: the design needs CR2
    assert min(iid_hits.values()) / trials < 0.90


@pytest.mark.slow
@pytest.mark.parametrize("count", [12, 18])
def test_few_unequal_clusters_with_one_effect_cover(count):
    """Baselines differ by cluster (and grow with size), effects do not. Randomization
    inference (499 draws, seed = trial): 94.7-97.0% (12) and 94.0-95.5% (18); CR2 t with
    Bell-McCaffrey df covered 89-93% here."""
    check(count, heterogeneous=False)


@pytest.mark.slow
@pytest.mark.parametrize(
    "count",
    [
        12,
        pytest.param(
            18,
            marks=pytest.mark.xfail(
                reason="open: with effects that grow with cluster size, 18 clusters cover "
                "91.8% (direct at 0.8) and 92.8% (total at 0.8), the rest 94.0-95.7% (600 "
                "trials, seed 18, 499 draws); the constant-effect null of the randomization "
                "inference does not hold and the cell-mean ratios are biased by about -0.04 "
                "at 0.8 (2 Monte Carlo SE). CR2 t with Bell-McCaffrey df covered 86-93%",
                strict=False,
            ),
        ),
    ],
)
def test_few_unequal_clusters_with_effects_that_grow_with_size_cover(count):
    """12 clusters: 93.0-96.7% (direct at 0.8 at 93.0%)."""
    check(count, heterogeneous=True)
