"""Spillover estimates of a randomized saturation design (Baird, Bohren, McIntosh and Ozler
2018): per saturation s, against the members of pure-control (saturation 0) clusters,

- the direct effect: treated members of s-clusters,
- the spillover: untreated members of s-clusters,
- the total effect: all members of s-clusters,

the first two from one individual-level OLS `y ~ 1 + sum_s [T 1(S=s) + (1-T) 1(S=s)]`,
the third from `y ~ 1 + sum_s 1(S=s)`. Both regressions are saturated in their cells
(pure control; each saturation by treatment), so they are fitted with the cell-means
path of `linear.py`: coefficients are cell-mean differences, CR2 cluster-robust
standard errors (Bell and McCaffrey 2002) by the randomized cluster and Bell-McCaffrey
degrees of freedom per contrast (`linear.Fit` and its `cr2`; the df is reported).

Intervals and p-values come from randomization inference inverted under a constant-effect
model (`saturation_ri.py`): the saturations and the members are re-drawn as the
platform's randomizer draws them and the CR2 t of each contrast is recomputed. On the
platform's designs (4 to 6 clusters of 5 to 80 members per saturation) CR2 t intervals
with Bell-McCaffrey df covered 86-93% in simulation, and a restricted wild cluster
bootstrap-t (Webb weights) no better; see experiments/METHODS.md.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from experiments.analysis.linear import Block, DegenerateDesign, Fit
from experiments.analysis.results import Inference, clean
from experiments.analysis.saturation_ri import DRAWS, INTERVAL_METHOD, SEED, saturation_intervals

METHOD = "saturation_ols"
REFERENCE = (
    "randomization inference (saturations and members re-drawn, CR2 t, interval by test "
    "inversion under constant effects); saturation-indicator OLS, CR2 by cluster, "
    "Bell-McCaffrey df reported"
)


@dataclass(frozen=True)
class SpilloverEffect:
    """One arm at one saturation: direct, spillover and total effects against pure control.

    A part that cannot be estimated (no untreated members at saturation 1, a single
    cluster) has NaN numbers (null in JSON) and `message` says why.
    """

    arm: str
    saturation: float
    direct: Inference
    spillover: Inference
    total: Inference
    n_treated: int
    n_untreated: int
    n_pure_control: int
    clusters: int
    pure_control_clusters: int
    method: str = METHOD
    reference: str = REFERENCE
    message: str = ""
    interval_method: str = INTERVAL_METHOD
    draws: int = DRAWS
    seed: int = SEED
    # Outcome means of the cells compared (for the report's plot).
    mean_treated: float = math.nan
    mean_untreated: float = math.nan
    mean_pure_control: float = math.nan

    def to_dict(self) -> dict:
        out: dict = {"arm": self.arm, "saturation": float(self.saturation)}
        for name in ("direct", "spillover", "total"):
            inf: Inference = getattr(self, name)
            out[name] = clean(inf.estimate)
            out[f"{name}_ci_low"] = clean(inf.ci_low)
            out[f"{name}_ci_high"] = clean(inf.ci_high)
            out[f"{name}_std_error"] = clean(inf.std_error)
            out[f"{name}_df"] = clean(inf.df)
            out[f"{name}_p_value"] = clean(inf.p_value)
        out.update(
            n_treated=self.n_treated,
            n_untreated=self.n_untreated,
            n_pure_control=self.n_pure_control,
            clusters=self.clusters,
            pure_control_clusters=self.pure_control_clusters,
            mean_treated=clean(self.mean_treated),
            mean_untreated=clean(self.mean_untreated),
            mean_pure_control=clean(self.mean_pure_control),
            method=self.method,
            reference=self.reference,
            interval_method=self.interval_method,
            randomization_draws=self.draws,
            randomization_seed=self.seed,
            message=self.message or None,
        )
        return out


_NAN = Inference(math.nan, math.nan, math.nan, math.nan, math.nan, math.nan, math.nan)


def _contrasts(
    y: np.ndarray, cell: np.ndarray, n_cells: int, clusters: np.ndarray, pairs
) -> list[Inference]:
    """Cell-mean differences (cell a minus cell b for each pair) with CR2 and BM df; the
    p-value and interval are set from randomization inference afterwards."""
    present = np.bincount(cell, minlength=n_cells) > 0
    wanted = [(a, b) for a, b in pairs if present[a] and present[b]]
    out = {p: _NAN for p in pairs}
    if wanted:
        # Renumber the cells that have rows (the fit needs every cell filled).
        remap = np.cumsum(present) - 1
        k = int(present.sum())
        fit = Fit(y, [Block(np.arange(len(y)), remap[cell], k, np.empty((len(y), 0)))])
        targets = np.zeros((len(wanted), k))
        for t, (a, b) in enumerate(wanted):
            targets[t, remap[a]] += 1.0
            targets[t, remap[b]] -= 1.0
        est = fit.estimates(targets)
        try:
            cr2 = fit.cr2(targets, clusters)
            se = np.sqrt(np.clip(np.diag(cr2.covariance), 0.0, None))
            df = cr2.df()
        except DegenerateDesign:
            se = np.full(len(wanted), math.nan)
            df = se
        for t, pair in enumerate(wanted):
            z = float(est[t] / se[t]) if se[t] > 0 else math.nan
            nan = math.nan
            out[pair] = Inference(float(est[t]), float(se[t]), float(df[t]), z, nan, nan, nan)
    return [out[p] for p in pairs]


def _cells_of(model: int, level: np.ndarray, treated: np.ndarray) -> np.ndarray:
    """Cells of a (re-drawn) assignment: level index per row (0 pure control)."""
    if model == 0:
        return np.where(level == 0, 0, 2 * level - 1 + ~treated)
    return level


def _with_ri(inf: Inference, interval) -> Inference:
    if interval is None or not math.isfinite(inf.std_error):
        return inf
    return Inference(
        inf.estimate,
        inf.std_error,
        inf.df,
        inf.statistic,
        interval.p_value,
        interval.ci_low,
        interval.ci_high,
    )


def spillover_effects(
    y: np.ndarray,
    treated: np.ndarray,
    saturation: np.ndarray,
    clusters: np.ndarray,
    *,
    arm: str = "treatment",
    alpha: float = 0.05,
    draws: int = DRAWS,
    seed: int = SEED,
) -> list[SpilloverEffect]:
    """Direct, spillover and total effect at each positive saturation.

    Per row: outcome, treated (bool), the saturation of its cluster, its cluster. Rows of
    saturation 0 are the pure controls; a treated row there is an error (DegenerateDesign),
    and so is a cluster at two saturations. `draws` and `seed`: the randomization
    inference's re-draws.
    """
    y = np.asarray(y, dtype=float)
    treated = np.asarray(treated, dtype=bool)
    saturation = np.round(np.asarray(saturation, dtype=float), 6)
    clusters = np.asarray(clusters)
    pure = saturation == 0
    if not pure.any():
        raise DegenerateDesign(
            "no pure-control clusters (saturation 0): spillover is measured against them"
        )
    if (treated & pure).any():
        raise DegenerateDesign("a treated member is in a saturation 0 (pure-control) cluster")
    levels: Sequence[float] = sorted(set(saturation[~pure].tolist()))
    index = {s: i for i, s in enumerate(levels)}
    sat_code = np.array([index.get(s, -1) for s in saturation.tolist()], dtype=np.int64)
    # Cells of the direct/spillover model: 0 pure control, 1 + 2i treated at level i,
    # 2 + 2i untreated at level i; of the total model: 0 pure control, 1 + i level i.
    cell = np.where(pure, 0, 1 + 2 * sat_code + (~treated).astype(np.int64))
    pairs = [(1 + 2 * i + part, 0) for i in range(len(levels)) for part in (0, 1)]
    parts = _contrasts(y, cell, 1 + 2 * len(levels), clusters, pairs)
    total_cell = np.where(pure, 0, 1 + sat_code)
    totals = _contrasts(
        y, total_cell, 1 + len(levels), clusters, [(1 + i, 0) for i in range(len(levels))]
    )
    ri = _randomization_intervals(
        y, treated, sat_code, clusters, cell, total_cell, levels, alpha, draws, seed
    )
    parts = [_with_ri(inf, iv) for inf, iv in zip(parts, ri[0], strict=True)]
    totals = [_with_ri(inf, iv) for inf, iv in zip(totals, ri[1], strict=True)]
    pure_clusters = len(np.unique(clusters[pure]))

    def mean(mask: np.ndarray) -> float:
        return float(y[mask].mean()) if mask.any() else math.nan

    out = []
    for i, s in enumerate(levels):
        at = sat_code == i
        n_t, n_u = int((at & treated).sum()), int((at & ~treated).sum())
        notes = []
        if n_u == 0:
            notes.append("no untreated members at this saturation: no spillover estimate")
        if n_t == 0:
            notes.append("no treated members at this saturation: no direct estimate")
        if pure_clusters < 2 or len(np.unique(clusters[at])) < 2:
            notes.append("fewer than two clusters on a side: no cluster-robust interval")
        out.append(
            SpilloverEffect(
                arm=arm,
                saturation=float(s),
                direct=parts[2 * i],
                spillover=parts[2 * i + 1],
                total=totals[i],
                n_treated=n_t,
                n_untreated=n_u,
                n_pure_control=int(pure.sum()),
                clusters=len(np.unique(clusters[at])),
                pure_control_clusters=pure_clusters,
                message="; ".join(notes),
                draws=draws,
                seed=seed,
                mean_treated=mean(at & treated),
                mean_untreated=mean(at & ~treated),
                mean_pure_control=mean(pure),
            )
        )
    return out


def _randomization_intervals(
    y, treated, sat_code, clusters, cell, total_cell, levels, alpha, draws, seed
):
    """RI p-values and intervals of the direct/spillover contrasts (in the order of
    `pairs`) and of the total contrasts."""
    ids, code = np.unique(clusters, return_inverse=True)
    row_level = sat_code + 1  # 0 pure control, i + 1 the i-th positive saturation
    level_of_cluster = np.zeros(len(ids), dtype=np.int64)
    level_of_cluster[code] = row_level
    if np.any(level_of_cluster[code] != row_level):
        raise DegenerateDesign("a cluster has members at two saturations: one per cluster")
    parts = []
    for i in range(len(levels)):
        parts += [(1 + 2 * i, i + 1, 2 + 2 * i), (2 + 2 * i, i + 1, 1 + 2 * i)]
    totals = [(1 + i, i + 1, None) for i in range(len(levels))]
    return saturation_intervals(
        y,
        code,
        level_of_cluster,
        np.r_[0.0, np.asarray(levels, dtype=float)],
        [(cell, parts), (total_cell, totals)],
        _cells_of,
        alpha=alpha,
        draws=draws,
        seed=seed,
    )
