"""Survey-measured effects when not everyone answers: the inverse-probability-weighted
estimate and one sentence on which reading the data support (with Lee's bounds).

Weighted estimate: within each arm, a logistic model of answering the survey on the given
covariates (measured for everyone: baseline answers, or a recorded step such as the pledge
to join, never the outcome); each respondent counts 1 / (predicted probability) (times
the design weight), and the effect is the weighted Lin regression of the respondents'
outcome on the arms, the centred covariates (strata as indicators, and the outcome's own
baseline value if given) and their products: with no covariates, the difference of the
arms' weighted means (Hajek). It is unbiased if, within each arm, answering depends only
on the response model's covariates (missing at random). Its standard error comes from the
stacked estimating equations of the response models and the weighted regression
(M-estimation, so the response models' uncertainty is included), summed by cluster when
clusters were randomized; normal reference.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from experiments.analysis.adjustment import (
    OutcomeInputError,
    TrialColumns,
    arm_data,
    lin_regressors,
    numeric,
)
from experiments.analysis.bounds import LeeBounds, lee_bounds
from experiments.analysis.dist import norm_sf
from experiments.analysis.sandwich import Contrast
from experiments.p_values import p_text

MAX_ITERATIONS = 50


def logistic(
    X: np.ndarray, r: np.ndarray, weights: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Weighted maximum-likelihood logistic regression (Newton-Raphson): coefficients and
    fitted probabilities. Refuses perfect prediction, which leaves some weights infinite."""
    w = np.ones(len(r)) if weights is None else weights
    if np.linalg.matrix_rank(X) < X.shape[1]:
        raise OutcomeInputError(
            "the response model cannot be fitted (a covariate is constant or collinear)"
        )
    separated = OutcomeInputError(
        "the response model predicts answering perfectly for some participants: "
        "drop or coarsen the covariate that separates respondents from the others"
    )
    beta = np.zeros(X.shape[1])
    for _ in range(MAX_ITERATIONS):
        p = 1.0 / (1.0 + np.exp(-(X @ beta)))
        grad = X.T @ (w * (r - p))
        hess = (X * (w * p * (1 - p))[:, None]).T @ X
        try:
            step = np.linalg.solve(hess, grad)
        except np.linalg.LinAlgError:
            raise separated from None
        beta = beta + step
        if np.max(np.abs(step)) < 1e-10:
            break
    p = 1.0 / (1.0 + np.exp(-(X @ beta)))
    if not np.all(np.isfinite(p)) or np.any(p[r == 1] > 1 - 1e-8) or np.any(p[r == 1] < 1e-6):
        raise separated
    return beta, p


def response_weights(
    frame: pd.DataFrame,
    columns: TrialColumns,
    response: str,
    response_covariates: Sequence[str],
) -> np.ndarray:
    """1 / (predicted probability of answering) for each respondent, from a logistic model
    fitted within each arm; NaN for everyone else (rows of `frame`, in order). For analyses
    of respondents that should stand for everyone randomized (e.g. mediation)."""
    answered = numeric(frame, response, "response column")
    data = arm_data(frame, columns, required=[response, *response_covariates])
    r = (answered[data.rows] == 1).astype(float)
    Z = np.column_stack(
        [np.ones(data.n)] + [numeric(frame, c)[data.rows] for c in response_covariates]
    )
    out = np.full(len(frame), np.nan)
    for i in range(len(data.arms)):
        m = data.arm == i
        _, p = logistic(Z[m], r[m])
        rows = data.rows[m]
        out[rows] = np.where(r[m] == 1, 1.0 / p, np.nan)
    return out


@dataclass(frozen=True)
class WeightedEffect:
    arm: str
    control: str
    outcome: str
    estimate: Contrast
    mean_arm: float
    mean_control: float
    response_covariates: tuple[str, ...]

    def to_dict(self) -> dict:
        e = self.estimate

        def clean(x: float) -> float | None:
            return float(x) if math.isfinite(x) else None

        return {
            "arm": self.arm,
            "control": self.control,
            "outcome": self.outcome,
            "estimate": clean(e.estimate),
            "std_error": clean(e.std_error),
            "ci_low": clean(e.ci_low),
            "ci_high": clean(e.ci_high),
            "p_value": clean(e.p_value),
            "mean_arm": clean(self.mean_arm),
            "mean_control": clean(self.mean_control),
            "response_covariates": list(self.response_covariates),
        }


def response_weighted_effects(
    frame: pd.DataFrame,
    columns: TrialColumns,
    outcome: str,
    response_covariates: Sequence[str],
    response: str | None = None,
    baseline: str | None = None,
    alpha: float = 0.05,
) -> list[WeightedEffect]:
    """Each arm's inverse-probability-weighted (Lin-adjusted) effect on a survey `outcome`.

    `response` names the 0/1 answered column (default: the outcome is present);
    `response_covariates` must be recorded for everyone randomized; `baseline` is the
    outcome's own baseline value, an extra covariate.
    """
    y_all = numeric(frame, outcome, "outcome")
    answered = numeric(frame, response, "response column") if response else None
    required = [c for c in (*response_covariates, response, baseline) if c]
    answered_all = (answered == 1) if answered is not None else ~np.isnan(y_all)
    # tiny strata are pooled by their respondents: the weighted regression needs them
    data = arm_data(frame, columns, required=required, counted=answered_all)
    r = answered_all[data.rows]
    if np.any(r & np.isnan(y_all[data.rows])):
        raise OutcomeInputError(f"a respondent has no {outcome}")
    y = np.nan_to_num(y_all[data.rows])
    X = lin_regressors(data, numeric(frame, baseline)[data.rows] if baseline else None)
    Z = np.column_stack(
        [np.ones(data.n)] + [numeric(frame, c)[data.rows] for c in response_covariates]
    )
    d = np.ones(data.n) if data.weights is None else data.weights
    p = np.ones(data.n)
    for i in range(len(data.arms)):
        m = data.arm == i
        if r[m].sum() < 2:
            raise OutcomeInputError(f"arm {data.arms[i]!r} has fewer than two respondents")
        _, p[m] = logistic(Z[m], r[m].astype(float), d[m])
    ipw = np.where(r, d / p, 0.0)
    if np.linalg.matrix_rank(X[r]) < X.shape[1]:
        # inv() of a singular matrix returns noise rather than failing: refuse instead
        raise OutcomeInputError(
            f"the weighted regression of {outcome} cannot be fitted: a stratum or "
            "covariate level has no respondent in some arm"
        )
    try:
        bread = np.linalg.inv((X * ipw[:, None]).T @ X)
    except np.linalg.LinAlgError:
        raise OutcomeInputError(
            f"the weighted regression of {outcome} cannot be fitted (an empty or constant cell)"
        ) from None
    beta = bread @ (X.T @ (ipw * y))
    e = np.where(r, y - X @ beta, 0.0)
    # HC2: each respondent's residual scaled by 1 / sqrt(1 - leverage) of the weighted
    # regression, as the headline's estimators; with strata the arm x stratum cells are
    # small and the plain sandwich's intervals were short (89% in a simulation).
    leverage = ipw * np.einsum("ij,jk,ik->i", X, bread, X)
    psi = X * (ipw * e / np.sqrt(np.clip(1.0 - leverage, 1e-12, None)))[:, None]
    # the response models' uncertainty: psi - J_bg J_gg^-1 psi_g, arm by arm
    for i in range(len(data.arms)):
        m = data.arm == i
        Zm, pm, dm = Z[m], p[m], d[m]
        psi_g = Zm * (dm * (r[m] - pm))[:, None]
        J_gg = -(Zm * (dm * pm * (1 - pm))[:, None]).T @ Zm
        J_bg = -(X[m] * (ipw[m] * e[m] * (1 - pm))[:, None]).T @ Zm
        psi[m] -= psi_g @ np.linalg.solve(J_gg, J_bg.T)
    phi = psi @ bread  # each participant's influence on beta (bread is symmetric)
    if data.clusters is not None:
        _, codes = np.unique(data.clusters, return_inverse=True)
        summed = np.zeros((int(codes.max()) + 1, phi.shape[1]))
        np.add.at(summed, codes, phi)
        phi = summed
    cov = phi.T @ phi
    out = []
    for j in range(1, len(data.arms)):
        arm_rows, control_rows = r & (data.arm == j), r & (data.arm == 0)
        out.append(
            WeightedEffect(
                data.arms[j],
                data.arms[0],
                outcome,
                Contrast.of(float(beta[j]), math.sqrt(cov[j, j]), math.inf, alpha),
                float(np.average(y[arm_rows], weights=ipw[arm_rows])),
                float(np.average(y[control_rows], weights=ipw[control_rows])),
                tuple(response_covariates),
            )
        )
    return out


# -- the reading ------------------------------------------------------------------------


@dataclass(frozen=True)
class SurveyReading:
    """For one arm and survey outcome: response by arm, the respondents-only estimate, Lee
    bounds, the weighted estimate, and which reading the data support."""

    bounds: LeeBounds
    weighted: WeightedEffect | None
    response_p_value: float
    reading: str

    def to_dict(self) -> dict:
        return {
            "bounds": self.bounds.to_dict(),
            "weighted": self.weighted.to_dict() if self.weighted else None,
            "response_p_value": self.response_p_value
            if math.isfinite(self.response_p_value)
            else None,
            "reading": self.reading,
        }


def _response_test(b: LeeBounds, n_arm: int, n_control: int) -> float:
    """Two-sided test that the arm and control answer at the same rate (pooled z)."""
    pooled = (b.response_arm * n_arm + b.response_control * n_control) / (n_arm + n_control)
    se = math.sqrt(pooled * (1 - pooled) * (1 / n_arm + 1 / n_control))
    if se == 0:
        return math.nan
    return 2 * norm_sf(abs(b.response_arm - b.response_control) / se)


def reading(b: LeeBounds, weighted: WeightedEffect | None, response_p: float, alpha: float) -> str:
    """Which reading of a survey-measured effect the data support, in one or two sentences."""
    rates = (
        f"{100 * b.response_arm:.0f}% answered in {b.arm} against "
        f"{100 * b.response_control:.0f}% in {b.control}"
    )
    if not (math.isfinite(response_p) and response_p < alpha):
        return (
            f"{b.outcome}: {rates} (no clear difference, {p_text(response_p)}): the "
            "respondents-only estimate is a fair reading; the bounds are shown for reference."
        )
    span = f"Lee bounds {b.lower:+.3g} to {b.upper:+.3g}"
    if b.lower > 0 or b.upper < 0:
        sign = "positive" if b.lower > 0 else "negative"
        text = (
            f"{b.outcome}: {rates} ({p_text(response_p)}), so the respondents-only estimate "
            f"may be biased. {span}: even trimming the extra respondents in the least "
            f"favourable way leaves a {sign} effect."
        )
    else:
        text = (
            f"{b.outcome}: {rates} ({p_text(response_p)}), so the respondents-only estimate "
            f"may be biased. {span} include zero: without knowing who the extra respondents "
            "are, the data do not establish the effect."
        )
    if weighted is not None:
        e = weighted.estimate
        inside = b.lower <= e.estimate <= b.upper
        covs = ", ".join(weighted.response_covariates) or "nothing"
        text += (
            f" Weighting for who answered (by {covs}) gives {e.estimate:+.3g} "
            f"({e.ci_low:+.3g} to {e.ci_high:+.3g}), the reading to use if answering "
            "depends on nothing else"
            + (
                "."
                if inside
                else "; it lies outside the bounds, so either response is not monotone or "
                "the response model misses something."
            )
        )
    return text


def survey_readings(
    frame: pd.DataFrame,
    columns: TrialColumns,
    outcome: str,
    response: str | None = None,
    response_covariates: Sequence[str] = (),
    baseline: str | None = None,
    alpha: float = 0.05,
    bootstrap: int = 200,
    seed: int = 0,
) -> list[SurveyReading]:
    """Lee bounds, the weighted estimate (when response covariates are given) and the
    reading, for every arm of a survey-measured `outcome`."""
    bounds = lee_bounds(frame, columns, outcome, response, alpha, bootstrap, seed)
    weighted = (
        {
            w.arm: w
            for w in response_weighted_effects(
                frame, columns, outcome, response_covariates, response, baseline, alpha
            )
        }
        if response_covariates
        else {}
    )
    arm = frame[columns.arm].astype(str)
    out = []
    for b in bounds:
        p = _response_test(b, int((arm == b.arm).sum()), int((arm == b.control).sum()))
        w = weighted.get(b.arm)
        out.append(SurveyReading(b, w, p, reading(b, w, p, alpha)))
    return out
