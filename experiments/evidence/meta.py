"""Random-effects meta-analysis: one pooled effect from the effects of several campaigns.

Each campaign i gives an estimate y_i with standard error s_i (v_i = s_i^2). The model is
y_i ~ N(theta_i, v_i), theta_i ~ N(mu, tau^2); weights w*_i = 1 / (v_i + tau^2) and
mu = sum w*_i y_i / sum w*_i.

- tau^2 by DerSimonian-Laird (one step of the method of moments) or REML (Fisher scoring
  on the restricted log-likelihood, each step halved until the likelihood rises, started
  at the DerSimonian-Laird value; converged when a step changes tau^2 by less than 1e-10
  relative, and then checked: the score is zero, or negative at the boundary tau^2 = 0).
- Interval for mu: Hartung-Knapp-Sidik-Jonkman (the default with REML):
  Var(mu) = q / sum w*, q = sum w*_i (y_i - mu)^2 / (k - 1), t with k - 1 df; or Wald
  (the default with DerSimonian-Laird): Var(mu) = 1 / sum w*, normal.
- Prediction interval for the effect in a new campaign (Higgins, Thompson and Spiegelhalter
  2009): mu +- t_{k-2} sqrt(tau^2 + 1 / sum w*); it needs three campaigns or more.
- Heterogeneity: Cochran's Q = sum w_i (y_i - mu_FE)^2 with w_i = 1 / v_i, df k - 1, and
  I^2 = max(0, (Q - (k - 1)) / Q) (Higgins and Thompson 2002), the same for either tau^2.

One campaign is not an error: the result carries its own estimate and interval, no tau^2,
and a message saying so. A missing, infinite, zero or negative standard error, or a
missing estimate, raises `MetaAnalysisInputError` naming the campaign (0-based `index`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np

from experiments.analysis.dist import chi2_sf, norm_isf, norm_sf, t_isf, t_sf

Tau2Method = Literal["reml", "dl"]
IntervalMethod = Literal["hksj", "wald"]
TAU2_METHODS: tuple[str, ...] = ("reml", "dl")
DEFAULT_INTERVAL: dict[str, IntervalMethod] = {"reml": "hksj", "dl": "wald"}
REML_TOLERANCE = 1e-10
REML_MAX_ITERATIONS = 100


class MetaAnalysisInputError(ValueError):
    """Estimates or standard errors that cannot be pooled; `index` is the campaign (0-based)
    and `field` is "estimate" or "std_error" (None for a problem with the whole input)."""

    def __init__(self, message: str, index: int | None = None, field: str | None = None):
        super().__init__(message)
        self.index = index
        self.field = field


@dataclass(frozen=True)
class MetaAnalysis:
    """The pooled effect, its interval, the between-campaign variance and the heterogeneity.

    `df` is the interval's t degrees of freedom (inf for a normal reference). `weights` are
    each campaign's share of the random-effects weight (they sum to 1; for a forest plot).
    `error` is a code when part of the result could not be computed; `message` says why.
    """

    k: int
    estimate: float
    std_error: float
    ci_low: float
    ci_high: float
    df: float
    p_value: float
    tau2: float
    tau2_method: Tau2Method
    interval: IntervalMethod
    q: float
    q_p_value: float
    i2: float
    prediction_low: float
    prediction_high: float
    prediction_sd: float
    weights: tuple[float, ...]
    iterations: int = 0
    alpha: float = 0.05
    error: str | None = None
    message: str = ""

    def to_dict(self) -> dict:
        out: dict = {}
        for name in self.__dataclass_fields__:
            value = getattr(self, name)
            if isinstance(value, float):
                value = value if math.isfinite(value) else None
            elif isinstance(value, tuple):
                value = [float(x) for x in value]
            out[name] = value
        return out


# The pooled figures a summary shows and other tools read, in this order.
POOLED_FIELDS = (
    "k",
    "estimate",
    "std_error",
    "ci_low",
    "ci_high",
    "tau2",
    "i2",
    "prediction_low",
    "prediction_high",
)


def check_inputs(
    estimates: Sequence[float], std_errors: Sequence[float]
) -> tuple[np.ndarray, np.ndarray]:
    """The estimates and standard errors as float arrays, or MetaAnalysisInputError."""
    y = np.asarray(estimates, dtype=float).ravel()
    s = np.asarray(std_errors, dtype=float).ravel()
    if y.size != s.size:
        raise MetaAnalysisInputError(
            f"{y.size} estimate(s) but {s.size} standard error(s): give one of each per campaign"
        )
    if y.size == 0:
        raise MetaAnalysisInputError("no campaigns to pool")
    bad = np.flatnonzero(~np.isfinite(y))
    if bad.size:
        i = int(bad[0])
        raise MetaAnalysisInputError(f"campaign {i + 1}: the estimate is missing", i, "estimate")
    bad = np.flatnonzero(~np.isfinite(s) | (s <= 0))
    if bad.size:
        i = int(bad[0])
        what = "missing" if math.isnan(s[i]) else f"{s[i]:g}"
        raise MetaAnalysisInputError(
            f"campaign {i + 1}: the standard error is {what}; it must be a positive number",
            i,
            "std_error",
        )
    return y, s


def tau2_dersimonian_laird(y: np.ndarray, v: np.ndarray) -> float:
    """max(0, (Q - (k - 1)) / (S1 - S2 / S1)), S1 = sum w, S2 = sum w^2, w = 1 / v."""
    w = 1.0 / v
    s1, s2 = w.sum(), (w * w).sum()
    mu = (w @ y) / s1
    q = float(w @ (y - mu) ** 2)
    return max(0.0, (q - (len(y) - 1)) / (s1 - s2 / s1))


def _restricted_loglik(y: np.ndarray, v: np.ndarray, tau2: float) -> float:
    w = 1.0 / (v + tau2)
    sw = w.sum()
    mu = (w @ y) / sw
    return -0.5 * float(np.log(v + tau2).sum() + math.log(sw) + w @ (y - mu) ** 2)


def _reml_score(y: np.ndarray, v: np.ndarray, tau2: float) -> tuple[float, float]:
    """Twice the REML score y'PPy - tr(P), and tr(PP) (twice the Fisher information)."""
    w = 1.0 / (v + tau2)
    sw, sw2 = w.sum(), (w * w).sum()
    r = y - (w @ y) / sw
    tr_p = sw - sw2 / sw
    tr_pp = sw2 - 2 * (w**3).sum() / sw + (sw2 / sw) ** 2
    return float((w * w) @ (r * r) - tr_p), float(tr_pp)


def tau2_reml(
    y: np.ndarray,
    v: np.ndarray,
    tolerance: float = REML_TOLERANCE,
    max_iterations: int = REML_MAX_ITERATIONS,
) -> tuple[float, int, bool]:
    """REML tau^2 by Fisher scoring with step halving: (tau^2, iterations, converged)."""
    tau2 = tau2_dersimonian_laird(y, v)
    ll = _restricted_loglik(y, v, tau2)
    for iteration in range(1, max_iterations + 1):
        score, info = _reml_score(y, v, tau2)
        step = score / info
        new = max(0.0, tau2 + step)
        new_ll = _restricted_loglik(y, v, new)
        halvings = 0
        # Fisher scoring can overshoot where the likelihood is flat; halve until it rises.
        while new_ll < ll and halvings < 60:
            step /= 2
            new = max(0.0, tau2 + step)
            new_ll = _restricted_loglik(y, v, new)
            halvings += 1
        done = abs(new - tau2) <= tolerance * max(1.0, tau2)
        tau2, ll = new, max(new_ll, ll)
        if done:
            score, info = _reml_score(y, v, tau2)
            # a maximum: zero score inside, or a score pointing below zero at the boundary
            ok = abs(score) <= 1e-6 * info * max(1.0, tau2) or (tau2 == 0.0 and score <= 0)
            return float(tau2), iteration, bool(ok)
    return float(tau2), max_iterations, False


def random_effects(
    estimates: Sequence[float],
    std_errors: Sequence[float],
    *,
    method: Tau2Method = "reml",
    interval: IntervalMethod | None = None,
    alpha: float = 0.05,
    max_iterations: int = REML_MAX_ITERATIONS,
) -> MetaAnalysis:
    """Pool the campaigns' estimates (see the module docstring for every formula).

    `interval` defaults to Hartung-Knapp-Sidik-Jonkman for REML and Wald for
    DerSimonian-Laird. Raises MetaAnalysisInputError for unusable input.
    """
    if method not in TAU2_METHODS:
        raise MetaAnalysisInputError(f"unknown tau^2 method {method!r}: use reml or dl")
    interval = interval or DEFAULT_INTERVAL[method]
    if interval not in ("hksj", "wald"):
        raise MetaAnalysisInputError(f"unknown interval {interval!r}: use hksj or wald")
    if not 0 < alpha < 1:
        raise MetaAnalysisInputError(f"alpha must be between 0 and 1, got {alpha}")
    y, s = check_inputs(estimates, std_errors)
    v = s * s
    k = len(y)
    nan = math.nan
    if k == 1:
        z = norm_isf(alpha / 2)
        est, se = float(y[0]), float(s[0])
        return MetaAnalysis(
            k=1,
            estimate=est,
            std_error=se,
            ci_low=est - z * se,
            ci_high=est + z * se,
            df=math.inf,
            p_value=2 * norm_sf(abs(est / se)),
            tau2=nan,
            tau2_method=method,
            interval="wald",
            q=nan,
            q_p_value=nan,
            i2=nan,
            prediction_low=nan,
            prediction_high=nan,
            prediction_sd=nan,
            weights=(1.0,),
            alpha=alpha,
            error="one_campaign",
            message="one campaign only: its own estimate and interval; the variance between "
            "campaigns needs two and a prediction interval three",
        )
    w_fe = 1.0 / v
    mu_fe = (w_fe @ y) / w_fe.sum()
    q = float(w_fe @ (y - mu_fe) ** 2)
    i2 = max(0.0, (q - (k - 1)) / q) if q > 0 else 0.0
    error, message, iterations = None, "", 0
    if method == "dl":
        tau2 = tau2_dersimonian_laird(y, v)
    else:
        tau2, iterations, converged = tau2_reml(y, v, max_iterations=max_iterations)
        if not converged:
            error = "not_converged"
            message = (
                f"REML did not converge in {iterations} iterations; tau^2 = {tau2:.6g} is "
                "the last iterate"
            )
    w = 1.0 / (v + tau2)
    sw = w.sum()
    mu = float((w @ y) / sw)
    wald_var = 1.0 / sw
    if interval == "hksj":
        var = float(w @ (y - mu) ** 2) / (k - 1) / sw
        df = float(k - 1)
        crit = t_isf(alpha / 2, df)
        p = 2 * t_sf(abs(mu) / math.sqrt(var), df) if var > 0 else nan
    else:
        var, df = wald_var, math.inf
        crit = norm_isf(alpha / 2)
        p = 2 * norm_sf(abs(mu) / math.sqrt(var))
    se = math.sqrt(var)
    pred_sd = math.sqrt(tau2 + wald_var)
    if k >= 3:
        half = t_isf(alpha / 2, k - 2) * pred_sd
        pred_low, pred_high = mu - half, mu + half
    else:
        pred_low = pred_high = nan
        if error is None:
            error = "two_campaigns"
            message = "a prediction interval needs at least three campaigns"
    return MetaAnalysis(
        k=k,
        estimate=mu,
        std_error=se,
        ci_low=mu - crit * se,
        ci_high=mu + crit * se,
        df=df,
        p_value=float(p),
        tau2=float(tau2),
        tau2_method=method,
        interval=interval,
        q=q,
        q_p_value=chi2_sf(q, k - 1),
        i2=float(i2),
        prediction_low=pred_low,
        prediction_high=pred_high,
        prediction_sd=pred_sd,
        weights=tuple(float(x) for x in w / sw),
        iterations=iterations,
        alpha=alpha,
        error=error,
        message=message,
    )


def pool_by(
    groups: Sequence,
    estimates: Sequence[float],
    std_errors: Sequence[float],
    *,
    method: Tau2Method = "reml",
    alpha: float = 0.05,
) -> list[tuple[object, MetaAnalysis]]:
    """One random-effects pool per group (e.g. mechanism), groups in order of first
    appearance. Every input is checked first: MetaAnalysisInputError's `index` is the
    position in these sequences."""
    y, s = check_inputs(estimates, std_errors)
    if len(groups) != len(y):
        raise MetaAnalysisInputError(f"{len(groups)} group(s) for {len(y)} estimate(s)")
    members: dict[object, list[int]] = {}
    for i, g in enumerate(groups):
        members.setdefault(g, []).append(i)
    return [
        (g, random_effects(y[idx], s[idx], method=method, alpha=alpha))
        for g, idx in members.items()
    ]
