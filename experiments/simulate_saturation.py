"""Peer mentoring in a randomized saturation design, simulated: residents live in clusters
(streets of a neighbourhood) at positions along the street; the clusters are randomized to
saturations and members to the mentoring arm (`experiments.saturation`, the real
randomizer). A treated resident's chance of joining rises by `direct`; an untreated
resident's rises by a spillover from the treated members of their cluster that falls with
distance: `spillover x exp(-d / reach)`, d the distance to the nearest treated member
(positions in [0, 1) along the cluster). Pure-control clusters have no spillover.

The truth (`true_spillover`) is what the saturation-indicator estimates target: per
saturation s, averaged over the residents (each resident weighted once, as OLS on people
weights them) and over the within-cluster randomization at s, the change in the chance of
joining against the same residents in a pure-control cluster:
`{"0.4": {"direct", "spillover_untreated", "total"}, ...}` as `truth.json` holds it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from experiments.saturation import (
    check_saturations,
    format_saturation,
    saturation_ra,
    treated_counts,
)


@dataclass(frozen=True)
class SpilloverParams:
    direct: float = 0.08
    """Added chance of joining for a resident offered the mentoring arm."""
    spillover: float = 0.06
    """Added chance for an untreated resident right beside a treated one."""
    reach: float = 0.01
    """Distance (along the cluster, 0 to 1) over which the spillover falls by a factor e:
    with a hundred members, about one house."""


def positions(clusters: np.ndarray, seed: int) -> np.ndarray:
    """Each resident's place along their cluster, uniform in [0, 1), from the seed."""
    rng = np.random.default_rng(np.random.SeedSequence([int(seed), 31]))
    return rng.random(len(clusters))


def _lifts(
    codes: np.ndarray, pos: np.ndarray, treated: np.ndarray, sat: np.ndarray, p: SpilloverParams
) -> np.ndarray:
    """Each resident's added chance of joining given who in their cluster is treated."""
    lift = np.where(treated, p.direct, 0.0)
    order = np.lexsort((pos, codes))
    c, x, t = codes[order], pos[order], treated[order]
    n = len(c)
    # Distance to the nearest treated member of the same cluster: the previous and the
    # next treated member in (cluster, position) order, kept when in the same cluster.
    idx = np.arange(n)
    prev = np.maximum.accumulate(np.where(t, idx, -1))
    nxt = np.minimum.accumulate(np.where(t, idx, n)[::-1])[::-1]
    nearest = np.full(n, np.inf)
    ok = (prev >= 0) & (c[np.clip(prev, 0, n - 1)] == c)
    nearest[ok] = x[ok] - x[prev[ok]]
    ok = (nxt < n) & (c[np.clip(nxt, 0, n - 1)] == c)
    nearest[ok] = np.minimum(nearest[ok], x[nxt[ok]] - x[ok])
    spill = np.zeros(n)
    untreated = ~t
    spill[untreated] = p.spillover * np.exp(-nearest[untreated] / p.reach)
    out = np.empty(n)
    out[order] = spill
    return np.where(treated, lift, np.where(sat > 0, out, 0.0))


def joined_given(
    population: pd.DataFrame,
    cluster: str,
    saturation: np.ndarray,
    treated: np.ndarray,
    seed: int,
    params: SpilloverParams | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """(joined 0/1, added chance) per resident for a given assignment: each resident's
    chance under control (`true_join_logit`) plus the direct effect or the spillover."""
    p = params or SpilloverParams()
    clusters = population[cluster].to_numpy()
    codes = pd.factorize(clusters, sort=True)[0]
    pos = positions(clusters, seed)
    lift = _lifts(codes, pos, np.asarray(treated, bool), np.asarray(saturation, float), p)
    base = 1.0 / (1.0 + np.exp(-population["true_join_logit"].to_numpy()))
    rng = np.random.default_rng(np.random.SeedSequence([int(seed), 37]))
    joined = rng.random(len(base)) < np.clip(base + lift, 0.0, 1.0)
    return joined.astype(int), lift


def simulate_saturation_outcomes(
    population: pd.DataFrame,
    cluster: str,
    saturations: Sequence[float],
    seed: int,
    params: SpilloverParams | None = None,
) -> pd.DataFrame:
    """One saturation trial on a simulated population: per resident `cluster`,
    `saturation`, `treated` (offered the mentoring arm), `true_lift` and `joined`."""
    clusters = population[cluster].to_numpy()
    design = saturation_ra(clusters, saturations, seed)
    joined, lift = joined_given(
        population, cluster, design.saturation, design.treated, seed, params
    )
    return pd.DataFrame(
        {
            "cluster": clusters,
            "saturation": design.saturation,
            "treated": design.treated,
            "true_lift": lift,
            "joined": joined,
        }
    )


def true_spillover(
    population: pd.DataFrame,
    cluster: str,
    saturations: Sequence[float],
    params: SpilloverParams | None = None,
    draws: int = 200,
    seed: int = 0,
) -> dict[str, dict[str, float]]:
    """The direct, spillover and total effect at each positive saturation, as `truth.json`
    holds them, averaged over `draws` within-cluster randomizations of every cluster at s
    (clipping at 1 ignored: the simulated chances stay far below it)."""
    p = params or SpilloverParams()
    levels = check_saturations(saturations)
    clusters = population[cluster].to_numpy()
    codes = pd.factorize(clusters, sort=True)[0]
    pos = positions(clusters, seed)
    sizes = np.bincount(codes)
    starts = np.concatenate([[0], np.cumsum(sizes)[:-1]])
    rng = np.random.default_rng(np.random.SeedSequence([int(seed), 41]))
    out: dict[str, dict[str, float]] = {}
    for s in (x for x in levels if x > 0):
        sat = np.full(len(clusters), s)
        direct = spill = total = 0.0
        n_t = n_u = 0
        for _ in range(draws):
            n_treated = treated_counts(sizes, np.full(len(sizes), s), rng)
            keys = rng.random(len(clusters))
            ranked = np.lexsort((keys, codes))
            rank = np.empty(len(clusters), dtype=np.int64)
            rank[ranked] = np.arange(len(clusters)) - starts[codes[ranked]]
            treated = rank < n_treated[codes]
            lift = _lifts(codes, pos, treated, sat, p)
            direct += lift[treated].sum()
            spill += lift[~treated].sum()
            total += lift.mean()
            n_t += int(treated.sum())
            n_u += int((~treated).sum())
        out[format_saturation(s)] = {
            "direct": float(direct / n_t) if n_t else float("nan"),
            "spillover_untreated": float(spill / n_u) if n_u else float("nan"),
            "total": float(total / draws),
        }
    return out
