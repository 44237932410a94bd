"""Design-aware effects from the arm-saturated regression (linear.py): each arm's mean
standardized over cells, their contrasts against control, and the inference that fits
the design (HC2 with N - K df; CR2 with Bell-McCaffrey df when clusters were randomized).

An arm's standardized mean is sum_c (N_c / N) alpha_ac: its cell intercepts (at the
centred covariates' zero, i.e. at the trial's covariate means) weighted by each cell's
share of all rows, whatever arm they are in. With cells = strata this is the blocked
estimator; with centred covariates it is Lin's adjustment interacted with the strata; with
inverse-probability weights it is the Hajek (weighted-means) estimator.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from experiments.analysis.linear import Block, DegenerateDesign, Fit
from experiments.analysis.means import lift_from_means
from experiments.analysis.results import Effect, failed_effect, inference
from experiments.analysis.trial import Design, Trial


@dataclass(frozen=True)
class Cells:
    """Cell per row (0..count-1) and each cell's share of the rows it standardizes over."""

    codes: np.ndarray
    count: int
    share: np.ndarray


def cells_of(codes: np.ndarray | None, n: int) -> Cells:
    if codes is None:
        return Cells(np.zeros(n, dtype=np.intp), 1, np.ones(1))
    count = int(codes.max()) + 1 if len(codes) else 1
    share = np.bincount(codes, minlength=count) / max(len(codes), 1)
    return Cells(np.asarray(codes, dtype=np.intp), count, share)


def inverse_probability(design: Design, weighted: bool) -> np.ndarray | None:
    if not weighted or design.probability is None:
        return None
    return 1.0 / design.probability


def fit_arms(
    trial: Trial,
    cells: Cells,
    dense: np.ndarray | None = None,
    weight: np.ndarray | None = None,
    arms: list[int] | None = None,
) -> Fit:
    """One block per arm (or per arm listed), each with every cell; raises DegenerateDesign."""
    dense = np.zeros((trial.n, 0)) if dense is None else dense
    blocks = []
    for a in range(len(trial.arms)) if arms is None else arms:
        rows = np.flatnonzero(trial.arm == a)
        blocks.append(
            Block(
                rows,
                cells.codes[rows],
                cells.count,
                dense[rows],
                None if weight is None else weight[rows],
            )
        )
    return Fit(trial.y, blocks)


def mean_target(fit: Fit, block: int, share: np.ndarray) -> np.ndarray:
    """The coefficient row of a block's standardized mean."""
    row = np.zeros(fit.k)
    start = fit.offsets[block]
    row[start : start + len(share)] = share
    return row


@dataclass(frozen=True)
class Inferred:
    estimates: np.ndarray
    covariance: np.ndarray
    df: np.ndarray


def infer(fit: Fit, targets: np.ndarray, design: Design, clusters: np.ndarray | None) -> Inferred:
    """Estimates, covariance and df of the targets: CR2 and Bell-McCaffrey df with
    clusters, HC2 and the residual df of the saturated model otherwise."""
    targets = np.atleast_2d(targets)
    est = fit.estimates(targets)
    if clusters is not None:
        cr2 = fit.cr2(targets, clusters)
        return Inferred(est, cr2.covariance, cr2.df())
    cov = fit.hc2(targets)
    return Inferred(est, cov, np.full(len(est), float(fit.df_resid)))


def standardized_effects(
    trial: Trial,
    design: Design,
    cells: Cells,
    method: str,
    reference: str,
    dense: np.ndarray | None = None,
    weight: np.ndarray | None = None,
) -> list[Effect]:
    """Each arm against control: the difference of standardized means, its SE, df and the
    relative lift from the same fit (delta method with the two means' covariance)."""
    k = len(trial.arms)
    counts = np.bincount(trial.arm, minlength=k)
    try:
        fit = fit_arms(trial, cells, dense, weight)
    except DegenerateDesign as exc:
        return [
            failed_effect(
                trial.arms[j],
                trial.control,
                method,  # type: ignore[arg-type]
                "degenerate",
                str(exc),
                int(counts[j]),
                int(counts[0]),
            )
            for j in range(1, k)
        ]
    means = np.array([mean_target(fit, a, cells.share) for a in range(k)])
    diffs = means[1:] - means[0]
    try:
        res = infer(fit, np.vstack([diffs, means]), design, design.clusters)
    except DegenerateDesign as exc:
        return [
            failed_effect(
                trial.arms[j],
                trial.control,
                method,  # type: ignore[arg-type]
                "degenerate",
                str(exc),
                int(counts[j]),
                int(counts[0]),
            )
            for j in range(1, k)
        ]
    m = res.estimates[k - 1 :]
    Vm = res.covariance[k - 1 :, k - 1 :]
    out = []
    for j in range(1, k):
        est = float(res.estimates[j - 1])
        var = float(res.covariance[j - 1, j - 1])
        se = math.sqrt(var) if var > 0 else math.nan
        if not se > 0:
            out.append(
                failed_effect(
                    trial.arms[j],
                    trial.control,
                    method,  # type: ignore[arg-type]
                    "zero_variance",
                    "the outcome does not vary within the cells compared: no standard error",
                    int(counts[j]),
                    int(counts[0]),
                    float(m[j]),
                    float(m[0]),
                )
            )
            continue
        inf = inference(est, se, float(res.df[j - 1]), design.alpha)
        lift, lift_se = lift_from_means(
            float(m[j]), float(m[0]), float(Vm[j, j]), float(Vm[0, 0]), float(Vm[j, 0])
        )
        out.append(
            Effect(
                trial.arms[j],
                trial.control,
                method,  # type: ignore[arg-type]
                est,
                se,
                inf.ci_low,
                inf.ci_high,
                inf.p_value,
                inf.statistic,
                inf.df,
                int(counts[j]),
                int(counts[0]),
                float(m[j]),
                float(m[0]),
                lift,
                lift_se,
                variance=reference,
            )
        )
    return out


def centred(values: np.ndarray) -> np.ndarray:
    """Columns centred at the trial's means (all arms): Lin's adjustment then estimates
    the effect at the covariate means of everyone randomized."""
    return values - values.mean(axis=0) if values.size else values


def describe(design: Design, weighted: bool, cells: int | None, adjusted: bool = False) -> str:
    """The reference sentence of an estimate: variance estimator and its df."""
    parts = []
    if adjusted:
        parts.append("Lin covariate adjustment")
    if cells and cells > 1:
        parts.append(f"within {cells} strata")
    if weighted:
        parts.append("inverse-probability weights")
    where = f", {', '.join(parts)}" if parts else ""
    if design.clustered:
        return f"t, Bell-McCaffrey df (CR2 cluster-robust, {design.n_clusters} clusters{where})"
    return f"t, N - K df (HC2{where})"
