"""Strata for within-stratum estimates, with tiny strata pooled rather than dropped.

A stratum is *tiny* when an arm has fewer than two units in it (clusters in a cluster
design): its within-stratum difference has no variance estimate. The rule:

1. tiny strata are pooled with each other when their arms' recorded assignment
   probabilities agree (without a probability column every stratum is taken to have the
   design's probabilities);
2. a pool that is still tiny takes in the smallest whole strata with the same
   probabilities, one at a time, until every arm has two units;
3. a pool that is still tiny after that joins the largest stratum whatever its
   probabilities, and the estimates then weight every row by the inverse of its recorded
   probability (a pooled difference of inverse-probability weighted means stays
   unbiased where probabilities differ).

Within a pool of strata that share their probabilities the pooled difference in means is
unbiased, so no row and no stratum is ever left out; the report lists every pool.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from experiments.analysis.trial import Design, Trial

TOLERANCE = 1e-9


@dataclass(frozen=True)
class Pool:
    """Strata analysed as one: `members` are their labels."""

    members: tuple[str, ...]
    reason: str


@dataclass(frozen=True)
class PooledStrata:
    """A stratum code per row after pooling, the label of each code, and the pools made."""

    codes: np.ndarray
    labels: tuple[str, ...]
    pools: tuple[Pool, ...] = field(default=())
    weighted: bool = False

    @property
    def count(self) -> int:
        return len(self.labels)


def _units(codes: np.ndarray, arm: np.ndarray, k: int, S: int, clusters) -> np.ndarray:
    """Units (rows, or distinct clusters) of each arm in each stratum: an S x k table."""
    cell = codes * k + arm
    if clusters is None:
        return np.bincount(cell, minlength=S * k).reshape(S, k)
    pairs = np.unique(np.column_stack([cell, clusters]), axis=0)
    return np.bincount(pairs[:, 0], minlength=S * k).reshape(S, k)


def _signatures(codes, arm, k, S, probability) -> tuple[np.ndarray, bool]:
    """Each stratum's probability per arm (NaN where the arm is absent) and whether any
    probability varies inside a stratum's arm."""
    if probability is None:
        return np.zeros((S, k)), False
    cell = codes * k + arm
    n = np.bincount(cell, minlength=S * k)
    s = np.bincount(cell, weights=probability, minlength=S * k)
    mean = np.divide(s, n, out=np.full(S * k, np.nan), where=n > 0)
    varies = bool(np.any(np.abs(probability - mean[cell]) > TOLERANCE))
    return mean.reshape(S, k), varies


def _agree(a: np.ndarray, b: np.ndarray) -> bool:
    both = ~np.isnan(a) & ~np.isnan(b)
    return bool(np.all(np.abs(a[both] - b[both]) <= TOLERANCE))


def _merge(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.where(np.isnan(a), b, a)


def pool_strata(
    trial: Trial,
    design: Design,
    strata: np.ndarray | None = None,
    arms: np.ndarray | None = None,
) -> PooledStrata:
    """Pool the tiny strata of `strata` (default: the design's) under the rule above.

    `arms` (a boolean per arm) names the arms that need two units in every stratum
    (default: all); a subgroup leaves out the arms too small to estimate in it."""
    raw = design.strata if strata is None else strata
    if raw is None:
        raise ValueError("pool_strata needs strata")
    present, codes = np.unique(raw, return_inverse=True)
    labels_in = design.stratum_labels
    names = [labels_in[c] if c < len(labels_in) else str(c) for c in present]
    k, S = len(trial.arms), len(present)
    units = _units(codes, trial.arm, k, S, design.clusters)
    sig, varies = _signatures(codes, trial.arm, k, S, design.probability)
    if arms is not None:
        units, sig = units[:, arms], sig[:, arms]
    tiny = (units < 2).any(axis=1)
    groups: list[list[int]] = []  # pools of stratum indices
    group_sig: list[np.ndarray] = []
    for s in np.flatnonzero(tiny):
        for g, members in enumerate(groups):
            if _agree(group_sig[g], sig[s]):
                members.append(int(s))
                group_sig[g] = _merge(group_sig[g], sig[s])
                break
        else:
            groups.append([int(s)])
            group_sig.append(sig[s].copy())
    kept = [int(s) for s in np.argsort(units.sum(axis=1), kind="stable") if not tiny[s]]
    reasons = ["fewer than two units in an arm; pooled with strata of the same probabilities"]
    reasons *= len(groups)
    weighted = varies
    for g, members in enumerate(groups):
        while (units[members].sum(axis=0) < 2).any():
            fit = next((s for s in kept if _agree(group_sig[g], sig[s])), None)
            if fit is None:
                break
            kept.remove(fit)
            members.append(fit)
            group_sig[g] = _merge(group_sig[g], sig[fit])
    # A pool that is still tiny joins another pool, else the largest whole stratum.
    still = [g for g, m in enumerate(groups) if (units[m].sum(axis=0) < 2).any()]
    for g in still:
        others = [h for h in range(len(groups)) if h != g and groups[h]]
        if kept:
            target = kept[-1]
            kept.remove(target)
            groups[g].append(target)
        elif others:
            h = max(others, key=lambda h: units[groups[h]].sum())
            groups[h].extend(groups[g])
            groups[g] = []
            g = h
        reasons[g] = (
            "too few units in an arm even among strata of the same probabilities; pooled "
            "with other strata and weighted by inverse probability"
        )
        weighted = weighted or design.probability is not None
    out = np.empty(S, dtype=np.intp)
    labels: list[str] = []
    pools: list[Pool] = []
    for s in kept:
        out[s] = len(labels)
        labels.append(names[s])
    for g, members in enumerate(groups):
        if not members:
            continue
        members = sorted(members)
        out[members] = len(labels)
        member_names = tuple(names[s] for s in members)
        labels.append("pooled: " + " + ".join(member_names))
        pools.append(Pool(member_names, reasons[g]))
    return PooledStrata(out[codes], tuple(labels), tuple(pools), weighted)
