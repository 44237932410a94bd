"""Randomized saturation designs (Baird, Bohren, McIntosh and Ozler 2018): clusters are
randomized to a saturation, then members within each cluster to the treatment arm at
that share.

Two stages, each a pure function of the seed and the sorted cluster and unit ids:

1. **Clusters to saturations**: complete randomization of the clusters over the
   saturations with equal weights (`block_ra`, blocked by stratum when given), so the
   numbers of clusters per saturation differ by at most one (within each stratum).
2. **Members to arms**: a cluster of m members at saturation s gets floor(s m) treated
   members, plus one more with probability s m - floor(s m), so the count is within one
   of s m and its expectation is exactly s m; which members is a random permutation.

Saturation 0 clusters are the pure controls the spillover estimates compare against;
saturation 1 clusters have no untreated members.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from experiments.randomization import Allocation, RandomizationError, block_ra

# Saturations are written with this many decimals at most (0.4, 0.333).
_DECIMALS = 6


@dataclass(frozen=True)
class SaturationAssignment:
    """Per unit (in the order given): the cluster's saturation and whether it is treated."""

    saturation: np.ndarray  # float per unit
    treated: np.ndarray  # bool per unit
    cluster_saturation: dict[str, float]


def check_saturations(values: Sequence[float]) -> tuple[float, ...]:
    """Saturations as given, checked: numbers in [0, 1], at least two, none twice."""
    out = []
    for v in values:
        try:
            x = float(v)
        except (TypeError, ValueError):
            raise RandomizationError(f"saturation {v!r} is not a number") from None
        if not math.isfinite(x) or not 0.0 <= x <= 1.0:
            raise RandomizationError(
                f"saturation {v!r} is outside [0, 1]: give shares such as 0, 0.4, 0.8"
            )
        out.append(round(x, _DECIMALS))
    if len(out) < 2:
        raise RandomizationError("give at least two saturations, e.g. 0,0.4,0.8")
    if len(set(out)) != len(out):
        dup = next(x for x in out if out.count(x) > 1)
        raise RandomizationError(f"saturation {dup:g} is listed twice")
    return tuple(out)


def parse_saturations(text: str) -> tuple[float, ...]:
    """`0,0.4,0.8` -> (0.0, 0.4, 0.8); percentages are refused with a hint."""
    parts = [p.strip() for p in str(text).split(",")]
    if any(not p for p in parts):
        raise RandomizationError(f"{text!r}: give comma-separated shares, e.g. 0,0.4,0.8")
    for p in parts:
        if p.endswith("%"):
            raise RandomizationError(f"{p!r}: give shares between 0 and 1 (40% is 0.4)")
    return check_saturations(parts)


def format_saturation(x: float) -> str:
    """The saturation as written in files and reports: 0, 0.4, 0.333333."""
    return f"{round(float(x), _DECIMALS):g}"


def treated_counts(
    sizes: np.ndarray, saturation: np.ndarray, rng: np.random.Generator
) -> np.ndarray:
    """Treated members per cluster: floor(s m), plus one with probability s m - floor(s m)."""
    target = np.asarray(sizes, dtype=float) * np.asarray(saturation, dtype=float)
    base = np.floor(target + 1e-9)
    frac = np.clip(target - base, 0.0, 1.0)
    return (base + (rng.random(len(target)) < frac)).astype(np.int64)


def saturation_ra(
    clusters: np.ndarray,
    saturations: Sequence[float],
    seed: int,
    strata: np.ndarray | None = None,
) -> SaturationAssignment:
    """Randomize a saturation design: units' clusters in, saturation and treatment out.

    `clusters` (and `strata`) are per unit, in the units' canonical order (the caller
    sorts by unit id so that the result does not depend on row order).
    """
    import pandas as pd

    levels = check_saturations(saturations)
    clusters = np.asarray(clusters)
    n = len(clusters)
    if n == 0:
        return SaturationAssignment(np.empty(0), np.empty(0, dtype=bool), {})
    codes, uniques = pd.factorize(clusters, sort=True)
    if (codes < 0).any():
        raise RandomizationError("every unit needs a cluster id (some are missing)")
    n_clusters = len(uniques)
    if strata is None:
        cluster_strata = np.zeros(n_clusters, dtype=np.int64)
    else:
        strata = np.asarray(strata)
        if strata.dtype.kind not in "iu":
            strata = pd.factorize(strata, sort=True)[0]
        cluster_strata = np.full(n_clusters, -1, dtype=np.int64)
        cluster_strata[codes] = strata
        mismatch = cluster_strata[codes] != strata
        if mismatch.any():
            pos = int(np.flatnonzero(mismatch)[0])
            raise RandomizationError(
                f"cluster {str(uniques[codes[pos]])!r} has members in more than one stratum: "
                "block clusters only by characteristics shared by the whole cluster"
            )
    labels = tuple(format_saturation(s) for s in levels)
    level_of_cluster = block_ra(cluster_strata, Allocation.equal(labels), seed)
    cluster_sat = np.asarray(levels)[level_of_cluster]
    # Stage 2 draws from its own stream of the same seed.
    rng = np.random.default_rng(np.random.SeedSequence([int(seed), 2]))
    sizes = np.bincount(codes, minlength=n_clusters)
    n_treated = treated_counts(sizes, cluster_sat, rng)
    keys = rng.random(n)
    order = np.lexsort((keys, codes))
    starts = np.concatenate([[0], np.cumsum(sizes)[:-1]])
    rank = np.empty(n, dtype=np.int64)
    rank[order] = np.arange(n) - starts[codes[order]]
    treated = rank < n_treated[codes]
    return SaturationAssignment(
        cluster_sat[codes],
        treated,
        {str(u): float(s) for u, s in zip(uniques, cluster_sat, strict=True)},
    )
