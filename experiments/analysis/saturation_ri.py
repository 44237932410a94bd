"""Randomization-inference intervals for the contrasts of a randomized saturation design,
by test inversion under a constant-effect model (Imbens and Rubin 2015, ch. 5; Ding,
Feller and Miratrix 2016 for imputing the other effects).

The contrasts are cell-mean differences against the pure-control cell 0 of a model
saturated in cells (`spillover.py`: cells pure control, treated at s, untreated at s; or
pure control, all members at s). To test that cell a's effect is tau0, every row's
outcome without treatment is imputed as y - theta[cell], with theta the estimated cell
effects except theta_a = tau0; the assignment is re-drawn R times as the platform's
randomizer (`experiments.saturation.saturation_ra`) draws it, and each re-drawn trial's
outcomes are the imputed ones plus theta of its new cells:

- the saturations are permuted over the clusters (the same number of clusters at each
  saturation as observed: complete randomization, conditioned on the counts),
- within a cluster of m members at saturation s, floor(s m) members are treated plus one
  with probability s m - floor(s m), a uniformly random subset.

The statistic is the CR2 t of the contrast (for a two-cell contrast with clusters nested
in cells, V = sum_g S_g^2 / (n_k^2 (1 - n_g / n_k)), S_g the cluster's residual sum in
cell k of n_k rows; zero for a cluster that is the whole cell), so the test is studentized.
p(tau0) = (1 + #{|t*_b| >= |t|}) / (1 + R) over the draws where both cells have rows, and
the interval is {tau0 : p(tau0) > alpha}, found from the estimate outwards (the first of
tau_hat -/+ se 2^k, k = 0, 1, ..., with p <= alpha brackets each bound; bisection to 1e-12
of the standard error). The re-drawn outcomes are linear in tau0, so each draw is reduced
once to five numbers and each p(tau0) costs O(R).

Draws come from `np.random.default_rng(SeedSequence(seed))`, R x clusters uniform keys
for the saturation permutation, R x clusters uniforms for the extra treated member, then
R x rows uniform keys for the members (`saturation_draws`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

INTERVAL_METHOD = "randomization_inference"
DRAWS = 999
SEED = 20261202
_CHUNK = 256
_DOUBLINGS = 60
_TOL = 1e-12


@dataclass(frozen=True)
class Draws:
    """Re-drawn assignments: each cluster's saturation index and each row's treatment."""

    level: np.ndarray  # draws x clusters, index into the levels (0 = pure control)
    treated: np.ndarray  # draws x rows, bool


def saturation_draws(
    cluster: np.ndarray, level_of_cluster: np.ndarray, levels: np.ndarray, draws: int, seed: int
) -> Draws:
    """R re-draws of the saturation design (see the module docstring).

    `cluster`: each row's cluster code 0..G-1; `level_of_cluster`: the observed level
    index of each cluster; `levels`: the saturations (levels[0] = 0)."""
    rng = np.random.default_rng(np.random.SeedSequence(int(seed)))
    g = len(level_of_cluster)
    order = np.argsort(rng.random((draws, g)), axis=1)
    level = np.asarray(level_of_cluster)[order]
    sizes = np.bincount(cluster, minlength=g)
    target = sizes[None, :] * np.asarray(levels)[level]
    base = np.floor(target + 1e-9)
    n_treated = (base + (rng.random((draws, g)) < np.clip(target - base, 0, 1))).astype(np.int64)
    keys = rng.random((draws, len(cluster)))
    # rank of each row's key among its cluster's rows
    shifted = keys + cluster[None, :]
    pos = np.argsort(shifted, axis=1)
    starts = np.concatenate([[0], np.cumsum(sizes)[:-1]])
    rank = np.empty_like(pos)
    np.put_along_axis(rank, pos, np.arange(len(cluster))[None, :], axis=1)
    rank -= starts[cluster][None, :]
    treated = rank < n_treated[:, cluster]
    return Draws(level, treated)


@dataclass(frozen=True)
class Interval:
    estimate: float
    std_error: float
    p_value: float
    ci_low: float
    ci_high: float


def _cluster_sums(x: np.ndarray, starts: np.ndarray) -> np.ndarray:
    """Per draw (row of x), the sums over each cluster's columns (columns sorted by cluster)."""
    return np.add.reduceat(x, starts, axis=1)


def _pieces(c, e, in_a, in_0, starts):
    """Per draw, for outcomes c + tau0 e: num = A + tau0 B (estimate minus tau0 is A +
    tau0 (B + 1) - tau0), V = qa + 2 tau0 qb + tau0^2 qc, and whether both cells have rows."""
    out = []
    for mask in (in_a, in_0):
        n_g = _cluster_sums(mask.astype(float), starts)
        big_n = n_g.sum(axis=1, keepdims=True)
        safe = np.where(big_n > 0, big_n, 1.0)
        c_g = _cluster_sums(np.where(mask, c, 0.0), starts)
        e_g = _cluster_sums(np.where(mask, e, 0.0), starts)
        c_bar = c_g.sum(axis=1, keepdims=True) / safe
        e_bar = e_g.sum(axis=1, keepdims=True) / safe
        share = n_g / safe
        w = np.where(share < 1 - 1e-12, 1.0 / (safe**2 * np.clip(1 - share, 1e-12, None)), 0.0)
        p, q = c_g - n_g * c_bar, e_g - n_g * e_bar
        out.append(
            (
                c_bar[:, 0],
                e_bar[:, 0],
                (w * p * p).sum(1),
                (w * p * q).sum(1),
                (w * q * q).sum(1),
                big_n[:, 0] > 0,
            )
        )
    (ca, ea, qa1, qb1, qc1, ok1), (c0, e0, qa0, qb0, qc0, ok0) = out
    return ca - c0, ea - e0, qa1 + qa0, qb1 + qb0, qc1 + qc0, ok1 & ok0


class _Contrast:
    """p(tau0) for the effect of cell a against cell 0."""

    def __init__(self, estimate, variance, pieces):
        self.estimate, self.variance = estimate, variance
        a, b, qa, qb, qc, ok = pieces
        self.a, self.b = a[ok], b[ok] - 1.0
        self.qa, self.qb, self.qc = qa[ok], qb[ok], qc[ok]
        self.valid = int(ok.sum())

    def p_value(self, tau0: float) -> float:
        num = self.a + tau0 * self.b
        var_star = self.qa + 2 * tau0 * self.qb + tau0 * tau0 * self.qc
        dev = self.estimate - tau0
        hits = num * num * self.variance >= dev * dev * var_star
        return (1.0 + np.count_nonzero(hits)) / (1.0 + self.valid)


def invert(p_value, estimate: float, se: float, alpha: float, direction: float) -> float:
    """The bound of {tau0 : p(tau0) > alpha} on one side: outward doubling from the
    estimate, then bisection to 1e-12 of se; +-inf when no step is rejected."""
    inside, outside = estimate, math.nan
    for k in range(_DOUBLINGS):
        trial = estimate + direction * se * 2.0**k
        if p_value(trial) <= alpha:
            outside = trial
            break
        inside = trial
    if math.isnan(outside):
        return direction * math.inf
    while abs(outside - inside) > _TOL * se:
        mid = 0.5 * (inside + outside)
        if mid in (inside, outside):
            break
        if p_value(mid) <= alpha:
            outside = mid
        else:
            inside = mid
    return 0.5 * (inside + outside)


def saturation_intervals(
    y: np.ndarray,
    cluster: np.ndarray,
    level_of_cluster: np.ndarray,
    levels: np.ndarray,
    models: list[tuple[np.ndarray, list[tuple[int, int]]]],
    cells_of,
    *,
    alpha: float,
    draws: int,
    seed: int,
) -> list[list[Interval | None]]:
    """Intervals for each model's contrasts.

    `cluster`: each row's cluster code 0..G-1; `level_of_cluster`: each cluster's index
    into `levels` (levels[0] = 0). `models`: per model, the observed cell of each row and
    the contrasts wanted as (cell a, its level index). The re-draws for a contrast at
    level l involve the pure-control clusters and the clusters at l only (their
    saturations permuted among them), so no other saturation's effect is imputed.
    `cells_of(model, level_per_row, treated)` gives a model's cells for a (re-drawn)
    assignment. None where a contrast has no rows or no variance."""
    results: list[list[Interval | None]] = [[None] * len(w) for _, w in models]
    row_level = np.asarray(level_of_cluster)[cluster]
    for level in sorted({lv for _, w in models for _, lv, _ in w}):
        rows = np.flatnonzero((row_level == 0) | (row_level == level))
        ids, code = np.unique(cluster[rows], return_inverse=True)
        order = np.argsort(code, kind="stable")  # rows sorted by cluster for the sums
        rows, code = rows[order], code[order]
        starts = np.flatnonzero(np.r_[True, code[1:] != code[:-1]])
        sub_levels = np.array([0.0, levels[level]])
        local = (np.asarray(level_of_cluster)[ids] == level).astype(np.int64)
        drawn = saturation_draws(code, local, sub_levels, draws, seed + level)
        yy = y[rows]
        for m, (cell_all, wanted) in enumerate(models):
            cell = cell_all[rows]
            k = 2 * len(levels) + 1  # more than any model's cells
            counts = np.bincount(cell, minlength=k)
            for j, (a, lv, sib) in enumerate(wanted):
                if lv != level or counts[a] == 0 or counts[0] == 0:
                    continue
                results[m][j] = _interval(
                    yy,
                    cell,
                    a,
                    sib,
                    k,
                    starts,
                    drawn,
                    lambda lvl, t, m=m, level=level: cells_of(m, lvl * level, t),
                    alpha,
                )
    return results


def within_difference(y, cell, a, sib, code) -> float:
    """Mean of cell a minus cell sib within clusters (OLS with cluster fixed effects:
    cluster differences weighted by n_a n_sib / (n_a + n_sib)); NaN without a cluster
    holding both."""
    g = int(code.max()) + 1
    n_a = np.bincount(code, weights=(cell == a), minlength=g)
    n_s = np.bincount(code, weights=(cell == sib), minlength=g)
    both = (n_a > 0) & (n_s > 0)
    if not both.any():
        return math.nan
    m_a = np.bincount(code, weights=y * (cell == a), minlength=g)[both] / n_a[both]
    m_s = np.bincount(code, weights=y * (cell == sib), minlength=g)[both] / n_s[both]
    w = n_a[both] * n_s[both] / (n_a[both] + n_s[both])
    return float(np.sum(w * (m_a - m_s)) / w.sum())


def _interval(y, cell, a, sib, k, starts, drawn: Draws, cells_of, alpha) -> Interval | None:
    one = (y[None, :], np.zeros((1, len(y))), (cell == a)[None, :], (cell == 0)[None, :])
    est, _, va, _, _, _ = _pieces(*one, starts)
    estimate, variance = float(est[0]), float(va[0])
    if not variance > 0:
        return None
    code = np.repeat(np.arange(len(starts)), np.diff(np.r_[starts, len(y)]))
    # Under H0 the effect of cell a is tau0 and of its sibling tau0 - (within-cluster
    # difference a - sib): offset[cell] + tau0 slope[cell]; pure control 0.
    offset, slope = np.zeros(k), np.zeros(k)
    slope[a] = 1.0
    if sib is not None and not np.any(cell == sib):
        sib = None  # saturation 1: no untreated members
    if sib is not None:
        delta = within_difference(y, cell, a, sib, code)
        if math.isnan(delta):  # no cluster holds both: the difference of the cell means
            delta = float(y[cell == a].mean() - y[cell == sib].mean())
        offset[sib], slope[sib] = -delta, 1.0
    base = y - offset[cell]
    chunks = []
    for lo in range(0, len(drawn.level), _CHUNK):
        new = cells_of(drawn.level[lo : lo + _CHUNK][:, code], drawn.treated[lo : lo + _CHUNK])
        c = base[None, :] + offset[new]
        e = slope[new] - slope[cell][None, :]
        chunks.append(_pieces(c, e, new == a, new == 0, starts))
    con = _Contrast(estimate, variance, tuple(np.concatenate(p) for p in zip(*chunks, strict=True)))
    se = math.sqrt(variance)
    return Interval(
        estimate,
        se,
        con.p_value(0.0),
        invert(con.p_value, estimate, se, alpha, -1.0),
        invert(con.p_value, estimate, se, alpha, 1.0),
    )
