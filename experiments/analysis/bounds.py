"""Lee (2009) bounds on an arm's effect on a survey-measured outcome when the share who
answer the survey differs between the arms.

Assuming monotone response (being assigned the arm makes nobody who would have answered
stop answering, or the reverse, the direction taken from the data), the extra respondents
of the arm with the higher response rate are the unknown ones. With response rates s_hi
and s_lo, a share q = (s_hi - s_lo) / s_hi of that arm's respondents is trimmed: from the
top for the lower bound, from the bottom for the upper bound; bound = trimmed mean minus
the other arm's respondent mean (signs kept as arm minus control). Trimming is
fractional: the respondent at the cut counts for the part of its weight that is kept, so
tied values (a 0/1 outcome) are handled exactly. Design weights (1/p whenever the assignment
probabilities vary within an arm, strata or not: the bounds compare whole arms, so strata
of different probabilities must be re-weighted) weigh both the response rates and the
means.

Optionally a stratified bootstrap (seeded; resampling within each arm) gives the bounds'
standard errors and the Imbens and Manski (2004) interval, which covers the effect with
probability 1 - alpha wherever in the bounds it lies.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import optimize

from experiments.analysis.adjustment import OutcomeInputError, TrialColumns, arm_data, numeric
from experiments.analysis.dist import norm_isf, norm_sf


def trimmed_mean(y: np.ndarray, w: np.ndarray, q: float, top: bool) -> float:
    """Weighted mean of `y` after removing a share `q` of the total weight from the top
    (`top`) or the bottom, the unit at the cut kept fractionally."""
    if not 0 <= q < 1:
        raise ValueError("the trimmed share must lie in [0, 1)")
    values = -y if not top else y
    order = np.argsort(values, kind="stable")
    v, wt = values[order], w[order]
    keep = (1.0 - q) * wt.sum()
    before = np.cumsum(wt) - wt
    kept = np.clip(keep - before, 0.0, wt)
    mean = float(kept @ v / keep)
    return mean if top else -mean


@dataclass(frozen=True)
class LeeBounds:
    arm: str
    control: str
    outcome: str
    lower: float
    upper: float
    trimmed_arm: str  # the arm whose extra respondents were trimmed
    trimmed_share: float
    response_arm: float
    response_control: float
    respondents_only: float  # the untrimmed difference among respondents
    lower_se: float = math.nan
    upper_se: float = math.nan
    ci_low: float = math.nan
    ci_high: float = math.nan

    def to_dict(self) -> dict:
        return {
            k: (v if not isinstance(v, float) or math.isfinite(v) else None)
            for k, v in self.__dict__.items()
        }


def _bounds(
    y_t: np.ndarray,
    w_t: np.ndarray,
    r_t: np.ndarray,
    y_c: np.ndarray,
    w_c: np.ndarray,
    r_c: np.ndarray,
) -> tuple[float, float, float, float, float, bool]:
    """lower, upper, q, s_t, s_c, whether the arm (not the control) was trimmed."""
    s_t = w_t[r_t].sum() / w_t.sum()
    s_c = w_c[r_c].sum() / w_c.sum()
    yt, wt, yc, wc = y_t[r_t], w_t[r_t], y_c[r_c], w_c[r_c]
    if s_t >= s_c:
        q = (s_t - s_c) / s_t
        mean_c = float(wc @ yc / wc.sum())
        lower = trimmed_mean(yt, wt, q, top=True) - mean_c
        upper = trimmed_mean(yt, wt, q, top=False) - mean_c
        return lower, upper, q, s_t, s_c, True
    q = (s_c - s_t) / s_c
    mean_t = float(wt @ yt / wt.sum())
    lower = mean_t - trimmed_mean(yc, wc, q, top=False)
    upper = mean_t - trimmed_mean(yc, wc, q, top=True)
    return lower, upper, q, s_t, s_c, False


def imbens_manski(
    lower: float, upper: float, se_lower: float, se_upper: float, alpha: float
) -> tuple[float, float]:
    """The interval [lower - c se_l, upper + c se_u] with c solving
    Phi(c + (upper - lower) / max(se)) - Phi(-c) = 1 - alpha (Imbens and Manski 2004)."""
    if not all(math.isfinite(x) for x in (lower, upper, se_lower, se_upper)):
        return math.nan, math.nan
    se = max(se_lower, se_upper)
    if se <= 0:
        return lower, upper
    width = max(upper - lower, 0.0) / se

    def gap(c: float) -> float:
        return (1 - norm_sf(c + width)) - norm_sf(c) - (1 - alpha)

    c = optimize.brentq(gap, norm_isf(alpha) - 1e-9, norm_isf(alpha / 2) + 1e-9)
    return lower - c * se_lower, upper + c * se_upper


def lee_bounds(
    frame: pd.DataFrame,
    columns: TrialColumns,
    outcome: str,
    response: str | None = None,
    alpha: float = 0.05,
    bootstrap: int = 0,
    seed: int = 0,
) -> list[LeeBounds]:
    """Lee bounds on each arm's effect on `outcome` against control.

    `response` names a 0/1 column (1 = answered the survey); without it, a participant
    answered when `outcome` is present. A respondent must have the outcome. `bootstrap`
    replications (0: none) give standard errors and the Imbens-Manski interval.
    """
    y_all = numeric(frame, outcome, "outcome")
    if response:
        r_all = numeric(frame, response, "response column")
        if np.any(~np.isin(r_all[~np.isnan(r_all)], (0.0, 1.0))):
            raise OutcomeInputError(f"response column {response!r} must be 0 or 1")
        if np.any((r_all == 1) & np.isnan(y_all)):
            row = int(np.flatnonzero((r_all == 1) & np.isnan(y_all))[0])
            raise OutcomeInputError(
                f"row {row + 2} answered the survey ({response} = 1) but has no {outcome}"
            )
        data = arm_data(frame, columns, required=[response])
        r = r_all[data.rows] == 1
    else:
        data = arm_data(frame, columns)
        r = ~np.isnan(y_all[data.rows])
    y = np.nan_to_num(y_all[data.rows])
    w = np.ones(data.n) if data.design_weights is None else data.design_weights
    rng = np.random.default_rng(seed)
    out = []
    c = data.arm == 0
    for j in range(1, len(data.arms)):
        t = data.arm == j
        if not (r[t].any() and r[c].any()):
            raise OutcomeInputError(
                f"no respondents with {outcome} in arm {data.arms[j]!r} or in the control"
            )
        low, up, q, s_t, s_c, arm_trimmed = _bounds(y[t], w[t], r[t], y[c], w[c], r[c])
        naive = float(
            np.average(y[t & r], weights=w[t & r]) - np.average(y[c & r], weights=w[c & r])
        )
        se_l = se_u = ci_l = ci_h = math.nan
        if bootstrap:
            draws = np.array([_resampled(rng, y, w, r, t, c) for _ in range(bootstrap)])
            draws = draws[np.all(np.isfinite(draws), axis=1)]
            se_l, se_u = (float(v) for v in draws.std(axis=0, ddof=1))
            ci_l, ci_h = imbens_manski(low, up, se_l, se_u, alpha)
        out.append(
            LeeBounds(
                arm=data.arms[j],
                control=data.arms[0],
                outcome=outcome,
                lower=low,
                upper=up,
                trimmed_arm=data.arms[j] if arm_trimmed else data.arms[0],
                trimmed_share=q,
                response_arm=s_t,
                response_control=s_c,
                respondents_only=naive,
                lower_se=se_l,
                upper_se=se_u,
                ci_low=ci_l,
                ci_high=ci_h,
            )
        )
    return out


def _resampled(rng, y, w, r, t, c) -> tuple[float, float]:
    it = rng.choice(np.flatnonzero(t), t.sum())
    ic = rng.choice(np.flatnonzero(c), c.sum())
    if not (r[it].any() and r[ic].any()):
        return math.nan, math.nan
    low, up, *_ = _bounds(y[it], w[it], r[it], y[ic], w[ic], r[ic])
    return low, up
