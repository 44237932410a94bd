"""From a participant frame to the regressors of a covariate-adjusted arm comparison.

The secondary analyses (two outcomes side by side, mediation, compliance, response) take
the same inputs as the headline estimators: one row per randomized participant with the
arm, outcomes, baseline covariates and, optionally, the stratum, the recorded assignment
probability and the cluster (`TrialColumns`). `arm_data` checks them and codes them;
`lin_regressors` builds Lin's (2013) design: arm dummies, centred covariates and their
products with the arms. The design enters as METHODS.md says:
- strata: centred stratum indicators join the covariates (so they are interacted with the
  arm: Lin within strata, each stratum weighted by its share N_j/N); tiny strata (an arm
  with fewer than two units) are first pooled by the headline's rule (strata.py), with
  weights 1/p when a pool joins strata of different probabilities;
- assignment probabilities that vary within an arm (and no strata to carry them): weights
  1/p of the assigned arm;
- clusters: passed on for the CR2 covariance.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from experiments.analysis.strata import pool_strata
from experiments.analysis.trial import Design, Trial

SMALL_STRATUM = 30  # rows; a stratum this small may have no respondent by chance


class OutcomeInputError(ValueError):
    """Input a secondary analysis cannot use; the message names the column or value."""


@dataclass(frozen=True)
class TrialColumns:
    """Which columns of the participant frame hold the design."""

    arm: str = "arm"
    control: str = "control"
    covariates: tuple[str, ...] = ()
    """Baseline covariates for Lin's adjustment (measured before randomization)."""
    stratum: str | None = None
    probability: str | None = None
    """Recorded probability of the arm each participant was assigned."""
    cluster: str | None = None


@dataclass(frozen=True)
class ArmData:
    """The coded design of the rows kept (control is arm 0)."""

    arm: np.ndarray
    arms: tuple[str, ...]
    covariates: np.ndarray  # (n, p): raw covariates, then stratum indicators
    weights: np.ndarray | None
    design_weights: np.ndarray | None  # 1/p wherever probabilities differ within an arm
    clusters: np.ndarray | None
    units: np.ndarray  # the frame's row labels
    rows: np.ndarray  # positions of the kept rows in the frame
    dropped: int

    @property
    def n(self) -> int:
        return len(self.arm)

    def dummies(self) -> np.ndarray:
        """(n, arms - 1) indicators of each treated arm."""
        return (self.arm[:, None] == np.arange(1, len(self.arms))[None, :]).astype(float)


def numeric(frame: pd.DataFrame, column: str, what: str = "column") -> np.ndarray:
    """A column as floats (missing = NaN); text that is not a number is an error naming it."""
    if column not in frame.columns:
        raise OutcomeInputError(f"no {what} {column!r} in the data")
    values = pd.to_numeric(frame[column], errors="coerce")
    bad = values.isna() & frame[column].notna()
    if bad.any():
        row = bad.to_numpy().nonzero()[0][0]
        raise OutcomeInputError(
            f"{what} {column!r} has a value that is not a number ({frame[column].iloc[row]!r}, "
            f"row {row + 2} counting the header as row 1)"
        )
    return values.to_numpy(dtype=float)


def arm_data(
    frame: pd.DataFrame,
    columns: TrialColumns,
    required: Sequence[str] = (),
    counted: np.ndarray | None = None,
) -> ArmData:
    """Code the rows that have an arm and every `required` column.

    Rows missing a covariate, stratum, probability or cluster are dropped too and counted.
    `counted` (one boolean per frame row; default all) marks the rows that count as units
    when tiny strata are pooled, e.g. the respondents of a survey outcome.
    """
    if columns.arm not in frame.columns:
        raise OutcomeInputError(f"no arm column {columns.arm!r} in the data")
    arm_text = frame[columns.arm].astype("string")
    keep = arm_text.notna().to_numpy(dtype=bool, copy=True)
    needed = {c: numeric(frame, c) for c in dict.fromkeys([*required, *columns.covariates])}
    for values in needed.values():
        keep &= ~np.isnan(values)
    probability = None
    if columns.probability:
        probability = numeric(frame, columns.probability, "probability column")
        keep &= ~np.isnan(probability)
        if np.any((probability[keep] <= 0) | (probability[keep] > 1)):
            raise OutcomeInputError(
                f"probability column {columns.probability!r} must lie in (0, 1]"
            )
    for col in (columns.stratum, columns.cluster):
        if col:
            if col not in frame.columns:
                raise OutcomeInputError(f"no column {col!r} in the data")
            keep &= frame[col].notna().to_numpy()
    rows = np.flatnonzero(keep)
    names = arm_text.to_numpy(dtype=object)[rows]
    control = str(columns.control)
    levels = sorted({str(a) for a in names} - {control})
    if control not in set(names):
        raise OutcomeInputError(f"no analysable rows in the control arm {control!r}")
    if not levels:
        raise OutcomeInputError("no analysable rows in any arm besides the control")
    arms = (control, *levels)
    code = {a: i for i, a in enumerate(arms)}
    arm = np.fromiter((code[str(a)] for a in names), dtype=np.int64, count=len(names))
    covs = [needed[c][rows] for c in columns.covariates]
    clusters = frame[columns.cluster].to_numpy()[rows] if columns.cluster else None
    p = None if probability is None else probability[rows]
    pooled_weighted = False
    if columns.stratum:
        strata = frame[columns.stratum].astype(str).to_numpy()[rows]
        units = np.ones(len(rows), bool) if counted is None else np.asarray(counted)[rows]
        codes, pooled_weighted = _pooled_strata(strata, arm, arms, p, clusters, units)
        covs += [(codes == s).astype(float) for s in range(1, int(codes.max()) + 1)]
    weights = design_weights = None
    if p is not None:
        varies = any(np.ptp(p[arm == i]) > 1e-12 for i in range(len(arms)) if np.any(arm == i))
        if varies:
            design_weights = 1.0 / p
        if (varies and not columns.stratum) or pooled_weighted:
            weights = 1.0 / p
    return ArmData(
        arm=arm,
        arms=arms,
        covariates=np.column_stack(covs) if covs else np.empty((len(rows), 0)),
        weights=weights,
        design_weights=design_weights,
        clusters=clusters,
        units=frame.index.to_numpy()[rows],
        rows=rows,
        dropped=int(len(frame) - len(rows)),
    )


def _pooled_strata(
    strata: np.ndarray,
    arm: np.ndarray,
    arms: tuple[str, ...],
    probability: np.ndarray | None,
    clusters: np.ndarray | None,
    units: np.ndarray,
) -> tuple[np.ndarray, bool]:
    """Stratum codes after pooling the tiny strata of the `units` rows by the headline's
    rule (strata.py), and whether a pool joined strata of different probabilities (then
    weights 1/p are due). A stratum without any unit (no respondent at all) joins the pool
    with the most units when it has fewer than SMALL_STRATUM rows; a larger one keeps its
    own code and the estimator refuses it: nobody answering in a large stratum says that
    answering depends on the stratum, which the response model does not carry."""
    labels, codes = np.unique(strata, return_inverse=True)
    if not units.any():
        return np.zeros(len(codes), np.intp), False
    cluster_codes = None if clusters is None else pd.factorize(clusters)[0]
    u = np.flatnonzero(units)
    trial = Trial(np.zeros(len(u)), arm[u], arms, np.empty((len(u), 0)))
    design = Design(
        strata=codes[u],
        stratum_labels=tuple(labels),
        clusters=None if cluster_codes is None else cluster_codes[u],
        probability=None if probability is None else probability[u],
    )
    pooled = pool_strata(trial, design)
    target = np.full(len(labels), -1)
    target[codes[u]] = pooled.codes
    absent = (target < 0) & (np.bincount(codes, minlength=len(labels)) < SMALL_STRATUM)
    target[absent] = np.bincount(pooled.codes).argmax()
    alone = np.flatnonzero(target < 0)
    target[alone] = pooled.codes.max() + 1 + np.arange(len(alone))
    weighted = bool(pooled.pools and pooled.weighted) or bool(
        absent.any() and probability is not None
    )
    return pd.factorize(target[codes], sort=True)[0], weighted


def centred(values: np.ndarray) -> np.ndarray:
    """Columns minus their sample means: the sample's own composition is the target."""
    values = np.asarray(values, dtype=float)
    if values.ndim == 1:
        values = values[:, None]
    return values - values.mean(axis=0) if len(values) else values


def lin_regressors(data: ArmData, extra: np.ndarray | None = None) -> np.ndarray:
    """[1, arm dummies, centred covariates, arm dummies x centred covariates].

    `extra` adds covariates for this outcome only (e.g. its own baseline value). The arm
    dummies' coefficients (columns 1..arms-1) are the effects.
    """
    Z = data.covariates
    if extra is not None:
        Z = np.column_stack([Z, np.asarray(extra, dtype=float)])
    Zc = centred(Z)
    D = data.dummies()
    inter = (D[:, :, None] * Zc[:, None, :]).reshape(data.n, -1)
    return np.hstack([np.ones((data.n, 1)), D, Zc, inter])
