"""Age x self-efficacy cells: each arm's effect in every cell of two banded moderators, raw
and partially pooled, an omnibus test that the cells differ, and trend tests.

Raw effect of arm a in cell c (design-aware). Every participant is in one block: the
randomization stratum inside the cell when strata are given, else the cell itself. In a
block, each arm's mean is the difference-in-means mean, or with recorded assignment
probabilities the inverse-probability weighted (Hajek) mean, w_i = 1 / p_i; its variance
is HC2 of the weighted regression on block x arm indicators,
sum w_i^2 (y_i - mean)^2 / (1 - w_i / sum w) / (sum w)^2, which is s^2 / n when the
weights are equal (the Neyman variance). The cell's standardized arm mean is sum_b (N_b / N_c) x
block mean (N_b counts every arm), its variance sum_b (N_b / N_c)^2 x block variance, and
the effect is the arm's standardized mean minus control's (the blocked difference in
means restricted to the cell). A block where an arm has fewer than two participants is
pooled with the cell's other such blocks, and if that pool is still short, with the cell's
largest block; the weighted means keep a pool of blocks with different probabilities
unbiased. Arms are independent given the design, so two arms' effects in one cell share
only the control mean's variance: that is their covariance.

Pooled effect: the normal-normal model of `experiments.analysis.empirical_bayes` over all
arms' cells at once, toward a model with, for each arm, an intercept and slopes in the
cell's mean age and mean self-efficacy (centred on the participants' means), one
between-cell variance tau^2 for all arms (reported at its REML estimate), estimates and
intervals averaged over tau^2 (Morris 1983).

Omnibus test: within every arm, all of its cells have the same effect: Wald statistic
(A d)' (A S A')^-1 (A d), A the contrasts of each cell with the arm's first, chi-square
with sum over arms of (cells - 1) df. Trend tests: each arm's slope in each moderator,
from the model at the REML tau^2, Wald z. The plan may pre-register either.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field, replace

import numpy as np
import pandas as pd

from experiments.analysis.dist import chi2_sf, norm_isf, norm_sf
from experiments.analysis.empirical_bayes import PooledEstimates, PoolingError, pool
from experiments.bands import DEFAULT_AGE_BANDS, DEFAULT_SELF_EFFICACY_BANDS, BandSpec


class CellInputError(ValueError):
    """Input the cell table cannot use; the message names the column, value or row."""


def cell_levels(
    moderators: tuple[str, str], levels: tuple[Sequence[str], Sequence[str]]
) -> list[dict[str, str]]:
    """The cells' levels in cell order (row-major), e.g. {"age": "18-34", "self_efficacy": "low"}."""
    (m1, m2), (l1, l2) = moderators, levels
    return [{m1: a, m2: b} for a in l1 for b in l2]


@dataclass(frozen=True)
class ArmCellMeans:
    """Standardized arm means per cell (control first) and their variances, with the data
    the pooling model needs. Cells are numbered row-major over the two moderators."""

    arms: tuple[str, ...]
    moderators: tuple[str, str]
    levels: tuple[tuple[str, ...], tuple[str, ...]]
    n: np.ndarray  # (A, C) participants per arm and cell
    mean: np.ndarray  # (A, C) standardized mean (NaN where an arm has < 2 in the cell)
    variance: np.ndarray  # (A, C) variance of that mean
    x: np.ndarray  # (C, 2) mean moderator values of the cell's participants

    @property
    def cells(self) -> list[dict[str, str]]:
        return cell_levels(self.moderators, self.levels)

    def effects(self) -> tuple[np.ndarray, np.ndarray]:
        """Each arm's effect against control per cell and its standard error: (A-1, C)."""
        est = self.mean[1:] - self.mean[0]
        se = np.sqrt(self.variance[1:] + self.variance[0])
        return est, se


@dataclass(frozen=True)
class CellData:
    """A trial's analysable rows for the cell table: outcome, arm codes (0 = control, in
    the order of `arms`), the two moderators' numeric values and bands, and optionally
    each row's randomization stratum and the recorded probability of its own arm."""

    y: np.ndarray
    arm: np.ndarray
    arms: tuple[str, ...]
    row_values: np.ndarray
    column_values: np.ndarray
    row_spec: BandSpec
    column_spec: BandSpec
    strata: np.ndarray | None = None
    probability: np.ndarray | None = None

    @property
    def n_cells(self) -> int:
        return (len(self.row_spec.cuts or ()) + 1) * (len(self.column_spec.cuts or ()) + 1)

    @property
    def cells(self) -> list[dict[str, str]]:
        specs = (self.row_spec, self.column_spec)
        return cell_levels(
            (self.row_spec.column, self.column_spec.column), tuple(s.levels or () for s in specs)
        )

    @property
    def cell(self) -> np.ndarray:
        """Each row's cell, row-major over the two moderators' bands."""
        r = np.searchsorted(np.asarray(self.row_spec.cuts), self.row_values, side="right")
        c = np.searchsorted(np.asarray(self.column_spec.cuts), self.column_values, side="right")
        return r * (len(self.column_spec.cuts or ()) + 1) + c

    def subset(self, mask: np.ndarray) -> CellData:
        def cut(a):
            return None if a is None else a[mask]

        return replace(
            self,
            y=self.y[mask],
            arm=self.arm[mask],
            row_values=self.row_values[mask],
            column_values=self.column_values[mask],
            strata=cut(self.strata),
            probability=cut(self.probability),
        )


def arm_cell_means(data: CellData) -> ArmCellMeans:
    """The standardized arm means per cell (module docstring) of the rows in `data`."""
    y, arm, arms = np.asarray(data.y, float), np.asarray(data.arm, np.intp), data.arms
    rv, cv = np.asarray(data.row_values, float), np.asarray(data.column_values, float)
    strata, probability = data.strata, data.probability
    A, C, cell = len(arms), data.n_cells, data.cell
    w = np.ones(len(y)) if probability is None else 1.0 / np.asarray(probability, float)
    block = np.zeros(len(y), np.intp) if strata is None else pd.factorize(strata)[0]
    key = _pool_short_blocks(cell, pd.factorize(cell * (block.max() + 1) + block)[0], arm, A)
    K = key.max() + 1
    key_cell = np.zeros(K, np.intp)
    key_cell[key] = cell
    ka = key * A + arm
    nk = np.bincount(ka, minlength=K * A).reshape(K, A)
    sw = np.bincount(ka, weights=w, minlength=K * A)
    m = np.divide(
        np.bincount(ka, weights=w * y, minlength=K * A),
        sw,
        out=np.full(K * A, np.nan),
        where=sw > 0,
    )
    dev = w * (y - m[ka])
    with np.errstate(invalid="ignore", divide="ignore"):
        leverage = w / sw[ka]  # of the weighted regression on block x arm indicators
        ss = np.bincount(ka, weights=dev * dev / (1 - leverage), minlength=K * A)
        v = ss / (sw * sw)
    m, v = m.reshape(K, A), v.reshape(K, A)
    v[nk < 2] = np.nan
    m[nk < 2] = np.nan
    size = nk.sum(axis=1).astype(float)
    cell_size = np.bincount(key_cell, weights=size, minlength=C)
    share = size / cell_size[key_cell]
    mean = np.zeros((C, A))
    var = np.zeros((C, A))
    np.add.at(mean, key_cell, share[:, None] * m)
    np.add.at(var, key_cell, share[:, None] ** 2 * v)
    n = np.bincount(cell * A + arm, minlength=C * A).reshape(C, A)
    x = np.column_stack(
        [
            np.bincount(cell, weights=vals, minlength=C)
            / np.maximum(np.bincount(cell, minlength=C), 1)
            for vals in (rv, cv)
        ]
    )
    row_spec, column_spec = data.row_spec, data.column_spec
    levels = (tuple(row_spec.levels or ()), tuple(column_spec.levels or ()))
    return ArmCellMeans(
        tuple(arms), (row_spec.column, column_spec.column), levels, n.T, mean.T, var.T, x
    )


def _pool_short_blocks(cell: np.ndarray, key: np.ndarray, arm: np.ndarray, A: int) -> np.ndarray:
    """Block codes after pooling, within each cell, the blocks where an arm has fewer than
    two participants (then a still-short pool joins the cell's largest block)."""
    K = key.max() + 1
    counts = np.bincount(key * A + arm, minlength=K * A).reshape(K, A)
    short = (counts < 2).any(axis=1)
    if not short.any():
        return key
    key_cell = np.zeros(K, np.intp)
    key_cell[key] = cell
    target = np.arange(K)
    for c in np.unique(key_cell[short]):
        members = np.flatnonzero(key_cell == c)
        pool_members = members[short[members]]
        whole = members[~short[members]]
        if (counts[pool_members].sum(axis=0) < 2).any() and whole.size:
            largest = whole[np.argmax(counts[whole].sum(axis=1))]
            pool_members = np.append(pool_members, largest)
        target[pool_members] = pool_members[0]
    return pd.factorize(target[key])[0]


@dataclass(frozen=True)
class CellEffect:
    arm: str
    levels: dict[str, str]
    n: int
    n_treatment: int
    n_control: int
    estimate: float
    std_error: float
    pooled_estimate: float
    pooled_std_error: float
    pooled_ci_low: float
    pooled_ci_high: float
    shrinkage: float
    error: str | None = None
    message: str = ""

    def to_dict(self) -> dict:
        return {
            "arm": self.arm,
            "levels": dict(self.levels),
            "n": self.n,
            "estimate": _f(self.estimate),
            "std_error": _f(self.std_error),
            "pooled_estimate": _f(self.pooled_estimate),
            "pooled_ci_low": _f(self.pooled_ci_low),
            "pooled_ci_high": _f(self.pooled_ci_high),
        }


@dataclass(frozen=True)
class Trend:
    """An arm's change in effect per unit of a moderator across cells (the smooth model)."""

    arm: str
    moderator: str
    slope: float
    std_error: float
    ci_low: float
    ci_high: float
    p_value: float

    def to_dict(self) -> dict:
        return {k: _f(v) if isinstance(v, float) else v for k, v in self.__dict__.items()}


@dataclass
class CellTable:
    """Raw and pooled cell effects, the omnibus test, trends, and what the pooling used."""

    moderators: tuple[str, str]
    levels: tuple[tuple[str, ...], tuple[str, ...]]
    alpha: float
    cells: list[CellEffect]
    tau2: float
    omnibus_statistic: float
    omnibus_df: int
    omnibus_p_value: float
    trends: list[Trend]
    means: ArmCellMeans
    pooled: PooledEstimates | None = None
    index: list[tuple[int, int]] = field(default_factory=list)  # (arm - 1, cell) per pooled row
    present: list[int] = field(default_factory=list)  # arms (code - 1) with a model block
    centre: np.ndarray | None = None  # the participants' mean moderator values
    error: str | None = None
    message: str = ""

    def model_effects(self) -> np.ndarray:
        """The smooth model's effect of every arm in every cell at the REML tau^2: (A-1, C),
        NaN for an arm with no estimable cell (or when nothing was pooled)."""
        out = np.full((len(self.means.arms) - 1, len(self.means.cells)), np.nan)
        if self.pooled is None or self.centre is None:
            return out
        x = self.means.x - self.centre
        for k, a in enumerate(self.present):
            out[a] = self.pooled.beta[3 * k] + x @ self.pooled.beta[3 * k + 1 : 3 * k + 3]
        return out

    def to_dict(self) -> dict:
        return {
            "cells": [c.to_dict() for c in self.cells],
            "heterogeneity": {
                "omnibus_p_value": _f(self.omnibus_p_value),
                "tau2": _f(self.tau2),
            },
        }

    def details(self) -> dict:
        """What a report adds beside the table: the test's statistic and df, the trends,
        the pooling's error if any."""
        return {
            "omnibus_statistic": _f(self.omnibus_statistic),
            "omnibus_df": self.omnibus_df,
            "trends": [t.to_dict() for t in self.trends],
            "error": self.error,
            "message": self.message,
        }


def _f(x: float) -> float | None:
    return float(x) if x is not None and math.isfinite(x) else None


def omnibus_wald(d: np.ndarray, S: np.ndarray, groups: np.ndarray) -> tuple[float, int, float]:
    """Wald test that the estimates within each group are equal (contrasts with each
    group's first), chi-square with sum(group sizes - 1) df."""
    rows = []
    for g in np.unique(groups):
        idx = np.flatnonzero(groups == g)
        for j in idx[1:]:
            a = np.zeros(len(d))
            a[idx[0]], a[j] = -1.0, 1.0
            rows.append(a)
    if not rows:
        return math.nan, 0, math.nan
    A = np.array(rows)
    Ad = A @ d
    stat = float(Ad @ np.linalg.solve(A @ S @ A.T, Ad))
    return stat, len(rows), chi2_sf(stat, len(rows))


def _stacked(means: ArmCellMeans):
    """The estimable (arm, cell) effects in one vector with their covariance and the
    smooth model's design: per arm an intercept and slopes in the cell's mean moderator
    values, centred on the participants' means."""
    est, _ = means.effects()
    A1, C = est.shape
    var = means.variance
    # an arm whose outcome does not vary in the cell has no standard error of its own
    ok = np.isfinite(est) & (var[1:] > 0)
    index = [(a, c) for a in range(A1) for c in range(C) if ok[a, c]]
    arm_of = np.array([a for a, _ in index], dtype=np.intp)
    cell_of = np.array([c for _, c in index], dtype=np.intp)
    d = est[arm_of, cell_of]
    same_cell = cell_of[:, None] == cell_of[None, :]
    S = np.where(same_cell, var[0, cell_of][None, :], 0.0)
    S[np.diag_indices(len(index))] += var[arm_of + 1, cell_of]
    centre = (means.x * means.n.sum(axis=0)[:, None]).sum(axis=0) / means.n.sum()
    present = sorted(set(arm_of.tolist()))
    X = np.zeros((len(index), 3 * len(present)))
    for k, a in enumerate(present):
        rows = arm_of == a
        X[rows, 3 * k] = 1.0
        X[rows, 3 * k + 1 : 3 * k + 3] = means.x[cell_of[rows]] - centre
    return index, present, d, S, X, centre


def pool_cells(means: ArmCellMeans, alpha: float = 0.05) -> CellTable:
    """Raw effects, their partial pooling, the omnibus and trend tests (module docstring)."""
    index, present, d, S, X, centre = _stacked(means)
    stat, df, p = omnibus_wald(d, S, np.array([a for a, _ in index]))
    pooled, error, message = None, None, ""
    try:
        pooled = pool(d, S, X)
    except PoolingError as exc:
        error, message = "pooling", f"the cells were not pooled: {exc}"
    z = norm_isf(alpha / 2)
    row = {ac: i for i, ac in enumerate(index)}
    nan = math.nan
    cells = []
    for a in range(len(means.arms) - 1):
        for c, levels in enumerate(means.cells):
            n_t, n_c = int(means.n[a + 1, c]), int(means.n[0, c])
            base = dict(
                arm=means.arms[a + 1], levels=levels, n=n_t + n_c, n_treatment=n_t, n_control=n_c
            )
            i = row.get((a, c))
            if i is None:
                few = min(n_t, n_c) < 2
                cells.append(
                    CellEffect(
                        **base, estimate=nan, std_error=nan, pooled_estimate=nan,
                        pooled_std_error=nan, pooled_ci_low=nan, pooled_ci_high=nan,
                        shrinkage=nan,
                        error="too_few_rows" if few else "zero_variance",
                        message="fewer than two participants in the arm or control here"
                        if few else "the outcome does not vary in the arm here",
                    )
                )  # fmt: skip
                continue
            pe = pse = b = nan
            if pooled is not None:
                pe, pse = float(pooled.mean[i]), float(pooled.std_error[i])
                b = float(pooled.shrinkage[i])
            cells.append(
                CellEffect(
                    **base, estimate=float(d[i]), std_error=math.sqrt(S[i, i]),
                    pooled_estimate=pe, pooled_std_error=pse,
                    pooled_ci_low=pe - z * pse, pooled_ci_high=pe + z * pse, shrinkage=b,
                )
            )  # fmt: skip
    trends = []
    if pooled is not None:
        for k, a in enumerate(present):
            for j, name in enumerate(means.moderators, start=1):
                col = 3 * k + j
                slope = float(pooled.beta[col])
                sd = math.sqrt(pooled.beta_cov[col, col])
                p_trend = 2 * norm_sf(abs(slope / sd))
                trends.append(
                    Trend(
                        means.arms[a + 1], name, slope, sd, slope - z * sd, slope + z * sd, p_trend
                    )
                )
    return CellTable(
        moderators=means.moderators,
        levels=means.levels,
        alpha=alpha,
        cells=cells,
        tau2=pooled.tau2 if pooled is not None else nan,
        omnibus_statistic=stat,
        omnibus_df=df,
        omnibus_p_value=p,
        trends=trends,
        means=means,
        pooled=pooled,
        index=index,
        present=present,
        centre=centre,
        error=error,
        message=message,
    )


def cell_data(
    frame: pd.DataFrame,
    *,
    arm: str,
    control: str,
    outcome: str,
    moderators: tuple[BandSpec, BandSpec] = (DEFAULT_AGE_BANDS, DEFAULT_SELF_EFFICACY_BANDS),
    stratum: str | None = None,
    probability: str | None = None,
) -> CellData:
    """The analysable rows of a participant frame (one row per randomized participant);
    rows missing the arm, outcome or a moderator are left out."""
    row_spec, column_spec = moderators
    for spec in moderators:
        if spec.cuts is None:
            raise CellInputError(
                f"moderator {spec.column!r} needs cut points (e.g. {spec.column}:35,55)"
            )
    needed = [arm, outcome, row_spec.column, column_spec.column]
    needed += [c for c in (stratum, probability) if c]
    missing = [c for c in dict.fromkeys(needed) if c not in frame.columns]
    if missing:
        raise CellInputError(f"no column {missing[0]!r} in the data")
    arm_text = frame[arm].astype("string")
    if not (arm_text == control).any():
        raise CellInputError(f"control value {control!r} does not occur in column {arm!r}")
    values = {c: _numbers(frame, c) for c in (outcome, row_spec.column, column_spec.column)}
    keep = arm_text.notna().to_numpy() & np.all([~np.isnan(v) for v in values.values()], axis=0)
    prob = None
    if probability:
        prob = _numbers(frame, probability)
        bad = keep & ~((prob > 0) & (prob <= 1))
        if bad.any():
            pos = int(np.flatnonzero(bad)[0])
            raise CellInputError(
                f"column {probability!r}: {prob[pos]:g} at data row {pos + 1} "
                "is not a probability in (0, 1]"
            )
        prob = prob[keep]
    names = arm_text[keep]
    arms = (control, *sorted(set(names) - {control}))
    return CellData(
        y=values[outcome][keep],
        arm=pd.Categorical(names, categories=arms).codes.astype(np.intp),
        arms=arms,
        row_values=values[row_spec.column][keep],
        column_values=values[column_spec.column][keep],
        row_spec=row_spec,
        column_spec=column_spec,
        strata=frame[stratum].astype("string").fillna("NA").to_numpy()[keep] if stratum else None,
        probability=prob,
    )


def cell_table(frame: pd.DataFrame, *, alpha: float = 0.05, **columns) -> CellTable:
    """The cell table of a participant frame; `columns` as for `cell_data`."""
    return pool_cells(arm_cell_means(cell_data(frame, **columns)), alpha)


def _numbers(frame: pd.DataFrame, col: str) -> np.ndarray:
    s = frame[col]
    if pd.api.types.is_numeric_dtype(s) or pd.api.types.is_bool_dtype(s):
        return s.to_numpy(dtype=float)
    out = pd.to_numeric(s, errors="coerce")
    bad = out.isna() & s.notna() & (s.astype(str).str.strip() != "")
    if bad.any():
        pos = int(np.flatnonzero(bad.to_numpy())[0])
        raise CellInputError(
            f"column {col!r}: {s.iloc[pos]!r} at data row {pos + 1} is not a number"
        )
    return out.to_numpy(dtype=float)
