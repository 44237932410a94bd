"""Targeting: which arm is best in each age x self-efficacy cell and how sure we are, what
targeting would gain over giving everyone the single best arm, and a calibration check of
the heterogeneity model (exploratory).

- Best arm per cell: draws from the pooled cells' posterior (the mixture over tau^2 of
  `experiments.analysis.empirical_bayes`); control's effect is 0; the probability an arm
  is best is the share of draws in which its effect is the largest.
- Gain from targeting, cross-fitted: participants are split into K folds (at random
  within each cell x arm x stratum, so every fold keeps the design's balance). Fold k is
  judged against the rule chosen on the next m = floor((K - 1) / 2) folds in a circle
  (the arm with the largest pooled effect in each cell) and the single best arm chosen on
  them (the largest average pooled effect over the cells, weighted by their shares of all
  participants): gain_k = sum_c share_c (M_k[rule(c), c] - M_k[best, c]), M_k the fold's
  standardized arm means per cell (design-aware, as the cell table), with variance
  sum_c share_c^2 (Var M_k[rule(c), c] + Var M_k[best, c]) over the cells where the two
  differ. No two folds choose each other's rules, so the folds' errors are uncorrelated
  (ordinary cross-fitting, where every other fold chooses, lets a fold's noise steer the
  rule that another fold's noise is judged by: 89% coverage in this module's
  simulation), and gain = sum_k (n_k / n) gain_k has variance sum_k (n_k / n)^2
  Var gain_k; the interval is normal. Its target is the gain of the rules the folds
  chose; no participant both chooses and judges a rule.
- Calibration (Chernozhukov, Demirer, Duflo and Fernandez-Val): for each arm against
  control, repeated random halves; on the auxiliary half the pooled cell effect is the
  proxy S and the control mean the baseline B of each cell; on the main half, weighted
  least squares (weights 1 / (p (1 - p)), p the arm's share among the arm's and control's
  rows in the stratum) of y on 1, B, S, D - p and (D - p)(S - mean S), HC2: the
  coefficient of D - p is the average effect, that of the product the heterogeneity
  loading (1 when the proxy is calibrated, 0 when it carries no heterogeneity). Sorted
  group average effects (GATES): D - p within groups of the proxy's quantiles. Over the
  splits: medians of the estimates and of the bounds of per-split intervals at level
  1 - alpha / 2, and p-values min(1, 2 x median), which keep level 1 - alpha. Exploratory.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from experiments.analysis.cell_pooling import CellData, CellTable, arm_cell_means, pool_cells
from experiments.analysis.dist import norm_isf, norm_sf
from experiments.analysis.sandwich import DegenerateDesign, LinearFit, least_squares


class TargetingError(ValueError):
    """Data too thin to choose or judge a targeting rule."""


@dataclass(frozen=True)
class BestArm:
    levels: dict[str, str]
    best: str
    probability: float
    effect: float  # the best arm's pooled effect against control (0 for control)
    probabilities: dict[str, float]

    def to_dict(self) -> dict:
        return {
            "levels": dict(self.levels),
            "best": self.best,
            "probability": self.probability,
            "effect": self.effect,
            "probabilities": dict(self.probabilities),
        }


def best_arms(table: CellTable, draws: int = 20_000, seed: int = 0) -> list[BestArm]:
    """Per cell, the arm with the largest pooled effect and the posterior probability that
    it is the best (control included, at 0). Cells where an arm could not be estimated
    compare the arms that could."""
    if table.pooled is None:
        raise TargetingError(table.message)
    sample = table.pooled.draws(np.random.default_rng(seed), draws)
    arms = table.means.arms
    out = []
    for c, levels in enumerate(table.means.cells):
        cols = [(a + 1, i) for i, (a, cell) in enumerate(table.index) if cell == c]
        names = [arms[0]] + [arms[a] for a, _ in cols]
        effects = np.column_stack([np.zeros(draws)] + [sample[:, i] for _, i in cols])
        share = np.bincount(effects.argmax(axis=1), minlength=len(names)) / draws
        means = [0.0] + [float(table.pooled.mean[i]) for _, i in cols]
        best = int(np.argmax(means))
        out.append(
            BestArm(
                levels=levels,
                best=names[best],
                probability=float(share[best]),
                effect=means[best],
                probabilities=dict(zip(names, map(float, share), strict=True)),
            )
        )
    return out


def balanced_folds(data: CellData, folds: int, rng: np.random.Generator) -> np.ndarray:
    """A fold per row: a random permutation within each cell x arm (x stratum), dealt
    round-robin, so each fold holds about 1/K of every group."""
    key = data.cell * len(data.arms) + data.arm
    if data.strata is not None:
        stratum = pd.factorize(data.strata)[0]
        key = key * (int(stratum.max()) + 1) + stratum
    order = np.lexsort((rng.random(len(key)), key))
    rank = np.empty(len(key), np.intp)
    sorted_key = key[order]
    starts = np.r_[0, np.flatnonzero(np.diff(sorted_key)) + 1]
    first = np.repeat(starts, np.diff(np.r_[starts, len(key)]))
    rank[order] = np.arange(len(key)) - first
    offset = rng.integers(0, folds, int(key.max()) + 1)  # no fold always gets the extras
    return (rank + offset[key]) % folds


def _pooled_effects(table: CellTable) -> np.ndarray:
    """Pooled effect per arm (control = 0) and cell: (A, C). A cell without an estimate of
    its own for an arm (too few participants, or no variation) takes the smooth model's
    effect there; NaN only for an arm with no estimable cell at all."""
    if table.pooled is None:
        raise TargetingError(table.message)
    A, C = len(table.means.arms), len(table.means.cells)
    out = np.zeros((A, C))
    out[1:] = table.model_effects()
    for i, (a, c) in enumerate(table.index):
        out[a + 1, c] = table.pooled.mean[i]
    return out


@dataclass(frozen=True)
class TargetingGain:
    """Cross-fitted gain of targeting by cell over the single best arm (outcome units)."""

    estimate: float
    std_error: float
    ci_low: float
    ci_high: float
    p_value: float
    folds: int
    single_best: tuple[str, ...]  # per fold
    rules: tuple[dict[str, str], ...] = field(default=())  # per fold: "age|self_efficacy" -> arm

    def to_dict(self) -> dict:
        return {
            "estimate": self.estimate,
            "std_error": self.std_error,
            "ci_low": self.ci_low,
            "ci_high": self.ci_high,
            "p_value": self.p_value,
            "folds": self.folds,
            "single_best": list(self.single_best),
        }


def targeting_gain(
    data: CellData, folds: int = 5, seed: int = 0, alpha: float = 0.05
) -> TargetingGain:
    """The cross-fitted gain and its interval (module docstring)."""
    if folds < 3:
        raise TargetingError("cross-fitting the gain needs at least three folds")
    fold = balanced_folds(data, folds, np.random.default_rng(seed))
    C = data.n_cells
    share = np.bincount(data.cell, minlength=C) / len(data.y)
    labels = ["|".join(c.values()) for c in data.cells]
    choosers = (folds - 1) // 2
    total = var = 0.0
    singles, rules = [], []
    for k in range(folds):
        held = fold == k
        choose = np.isin(fold, [(k + j) % folds for j in range(1, choosers + 1)])
        effects = _pooled_effects(pool_cells(arm_cell_means(data.subset(choose))))
        if np.isnan(effects).any():
            raise TargetingError(
                f"fold {k + 1}: an arm has no cell with an estimable effect to choose a rule by"
            )
        rule = effects.argmax(axis=0)
        single = int(np.argmax(effects @ share))
        judge = arm_cell_means(data.subset(held))
        differ = np.flatnonzero(rule != single)
        m, v = judge.mean[:, differ], judge.variance[:, differ]
        picked, base = rule[differ], np.full(len(differ), single)
        cols = np.arange(len(differ))
        gap = m[picked, cols] - m[base, cols]
        gap_var = v[picked, cols] + v[base, cols]
        if not np.all(np.isfinite(gap) & np.isfinite(gap_var)):
            raise TargetingError(
                f"fold {k + 1}: an arm has too few participants in a cell to judge the rule"
            )
        weight = held.mean()
        total += weight * float(share[differ] @ gap)
        var += weight**2 * float(share[differ] ** 2 @ gap_var)
        singles.append(data.arms[single])
        rules.append({label: data.arms[a] for label, a in zip(labels, rule, strict=True)})
    total, se = float(total), math.sqrt(var)
    z = norm_isf(alpha / 2)
    p = 2 * norm_sf(abs(total) / se) if se > 0 else math.nan
    return TargetingGain(
        total, se, total - z * se, total + z * se, p, folds, tuple(singles), tuple(rules)
    )


@dataclass(frozen=True)
class Quantity:
    """A median over splits: estimate, interval (level >= 1 - alpha), adjusted p-value."""

    estimate: float
    ci_low: float
    ci_high: float
    p_value: float

    def to_dict(self) -> dict:
        return {k: v if math.isfinite(v) else None for k, v in self.__dict__.items()}


@dataclass(frozen=True)
class Calibration:
    """Best linear predictor and sorted group effects of one arm (exploratory)."""

    arm: str
    average_effect: Quantity
    loading: Quantity
    groups: tuple[Quantity, ...]  # lowest predicted effect first
    top_minus_bottom: Quantity
    splits: int
    label: str = "exploratory"

    def to_dict(self) -> dict:
        return {
            "arm": self.arm,
            "average_effect": self.average_effect.to_dict(),
            "loading": self.loading.to_dict(),
            "groups": [g.to_dict() for g in self.groups],
            "top_minus_bottom": self.top_minus_bottom.to_dict(),
            "splits": self.splits,
            "label": self.label,
        }


def _median(rows: list[tuple[float, float, float, float]]) -> Quantity:
    est, lo, hi, p = np.median(np.asarray(rows), axis=0)
    return Quantity(float(est), float(lo), float(hi), float(min(1.0, 2 * p)))


def _row(beta: float, se: float, z: float) -> tuple[float, float, float, float]:
    return beta, beta - z * se, beta + z * se, 2 * norm_sf(abs(beta) / se)


def _propensity(data: CellData, rows: np.ndarray, treated: np.ndarray) -> np.ndarray:
    group = (
        np.zeros(len(rows), np.intp) if data.strata is None else pd.factorize(data.strata[rows])[0]
    )
    n = np.bincount(group)
    t = np.bincount(group, weights=treated.astype(float))
    return (t / n)[group]


@dataclass(frozen=True)
class SplitFit:
    """One arm's BLP and GATES regressions on the main half of one split."""

    blp: LinearFit
    gates: LinearFit | None  # None when ties in the proxy left fewer groups than asked


def calibration_split(data: CellData, main: np.ndarray, groups: int = 3) -> dict[int, SplitFit]:
    """The regressions of one split (`main`: the rows of the main half), per arm code."""
    aux = pool_cells(arm_cell_means(data.subset(~main)))
    if aux.pooled is None:
        return {}
    proxy, baseline = _pooled_effects(aux), aux.means.mean[0]
    cell = data.cell
    out = {}
    for a in range(1, len(data.arms)):
        rows = np.flatnonzero(main & ((data.arm == a) | (data.arm == 0)))
        s, b = proxy[a, cell[rows]], baseline[cell[rows]]
        ok = np.isfinite(s) & np.isfinite(b)
        rows, s, b = rows[ok], s[ok], b[ok]
        if len(rows) == 0 or np.ptp(s) == 0:
            continue
        d = (data.arm[rows] == a).astype(float)
        p = _propensity(data, rows, d)
        root_w = 1 / np.sqrt(p * (1 - p))
        y = data.y[rows] * root_w
        controls = [np.ones(len(rows)), b, s]
        blp = np.column_stack([*controls, d - p, (d - p) * (s - s.mean())])
        bins = np.asarray(pd.qcut(s, groups, labels=False, duplicates="drop"))
        try:
            blp_fit = least_squares(blp * root_w[:, None], y)
            gates_fit = None
            if bins.max() == groups - 1:
                gates = np.column_stack(
                    [*controls] + [(d - p) * (bins == g) for g in range(groups)]
                )
                gates_fit = least_squares(gates * root_w[:, None], y)
        except DegenerateDesign:
            continue
        out[a] = SplitFit(blp_fit, gates_fit)
    return out


def calibration(
    data: CellData, splits: int = 20, groups: int = 3, seed: int = 0, alpha: float = 0.05
) -> list[Calibration]:
    """BLP and GATES for every arm against control over `splits` random halves (module
    docstring); an arm whose proxy does not vary, or a split whose regression is
    degenerate, is left out of the medians."""
    rng = np.random.default_rng(seed)
    z = norm_isf(alpha / 4)  # per-split level 1 - alpha/2
    fits: dict[int, list[SplitFit]] = {a: [] for a in range(1, len(data.arms))}
    for _ in range(splits):
        for a, fit in calibration_split(data, balanced_folds(data, 2, rng) == 0, groups).items():
            fits[a].append(fit)
    contrast = np.zeros(3 + groups)
    contrast[[3, 2 + groups]] = (-1.0, 1.0)  # top group minus bottom group
    out = []
    for a, found in fits.items():
        with_groups = [f.gates for f in found if f.gates is not None]
        if not with_groups:
            continue
        gates = tuple(
            _median([_row(g.beta[3 + j], g.std_errors[3 + j], z) for g in with_groups])
            for j in range(groups)
        )
        diff = [
            _row(float(contrast @ g.beta), math.sqrt(contrast @ g.cov @ contrast), z)
            for g in with_groups
        ]
        out.append(
            Calibration(
                arm=data.arms[a],
                average_effect=_median(
                    [_row(f.blp.beta[3], f.blp.std_errors[3], z) for f in found]
                ),
                loading=_median([_row(f.blp.beta[4], f.blp.std_errors[4], z) for f in found]),
                groups=gates,
                top_minus_bottom=_median(diff),
                splits=len(found),
            )
        )
    return out
