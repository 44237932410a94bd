"""Referral chains in peer mentoring: how the residents a mentor invited (enrolled through
their invitation link, `referred_by`) compare with the members of a comparison arm who
came in otherwise.

One individual-level OLS on the two groups, `y ~ 1 + 1(referred)`: the coefficient is the
difference of the two means. Invitees of one mentor share that mentor, so they are one
cluster; comparison members keep the cluster they were randomized in (each is alone
without one). CR2 cluster-robust standard error (Bell and McCaffrey 2002; with every row
alone it is HC2) and Bell-McCaffrey degrees of freedom, by the cell-means path of
`linear.py` as for the spillover estimates.

Who accepts an invitation is not randomized: the difference describes the chain (how the
residents it reached do against the comparison arm), it is not the causal effect of being
invited; the report says so beside it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd

from experiments.analysis.linear import Block, DegenerateDesign, Fit
from experiments.analysis.results import Inference, clean, inference

METHOD = "referral_ols"
REFERENCE = "t, Bell-McCaffrey df (OLS on a referral indicator, CR2 by mentor and cluster)"
NOTE = (
    "Not randomized: who accepts a mentor's invitation is self-selected, so the difference "
    "describes the residents the invitations reached, not the effect of being invited. "
    "The comparison arm's members are taken as they are, not weighted by their assignment "
    "probabilities: in a design whose strata have unequal probabilities its mean describes "
    "the arm's members, not the whole population."
)


@dataclass(frozen=True)
class ReferralEffect:
    """Referred residents against the comparison arm: mean difference and its interval."""

    comparison: str
    effect: Inference
    n_referred: int
    n_comparison: int
    mentors: int
    mean_referred: float
    mean_comparison: float
    method: str = METHOD
    reference: str = REFERENCE
    message: str = ""

    def to_dict(self) -> dict:
        e = self.effect
        return {
            "comparison": self.comparison,
            "estimate": clean(e.estimate),
            "ci_low": clean(e.ci_low),
            "ci_high": clean(e.ci_high),
            "std_error": clean(e.std_error),
            "df": clean(e.df),
            "p_value": clean(e.p_value),
            "n_referred": self.n_referred,
            "n_comparison": self.n_comparison,
            "mentors": self.mentors,
            "mean_referred": clean(self.mean_referred),
            "mean_comparison": clean(self.mean_comparison),
            "method": self.method,
            "reference": self.reference,
            "note": NOTE,
            "message": self.message or None,
        }


_NAN = Inference(math.nan, math.nan, math.nan, math.nan, math.nan, math.nan, math.nan)


def referral_effect(
    y: np.ndarray,
    mentor: np.ndarray,
    comparison: np.ndarray,
    clusters: np.ndarray | None = None,
    *,
    comparison_arm: str = "control",
    alpha: float = 0.05,
) -> ReferralEffect:
    """Referred rows (`mentor` not missing: the inviting mentor's id) against comparison
    rows (`comparison` True and not referred). `clusters` is each row's randomized cluster
    (missing: the row alone). Rows with a missing outcome are left out; a row in neither
    group is ignored."""
    y = np.asarray(y, dtype=float)
    mentor = pd.Series(np.asarray(mentor, dtype=object))
    referred = mentor.notna().to_numpy().copy()
    compared = np.asarray(comparison, dtype=bool) & ~referred
    answered = np.isfinite(y)
    referred &= answered
    compared &= answered
    n_r, n_c = int(referred.sum()), int(compared.sum())
    mentors = int(mentor[referred].nunique())
    mean_r = float(y[referred].mean()) if n_r else math.nan
    mean_c = float(y[compared].mean()) if n_c else math.nan

    def result(effect: Inference, message: str = "") -> ReferralEffect:
        return ReferralEffect(
            comparison_arm, effect, n_r, n_c, mentors, mean_r, mean_c, message=message
        )

    if n_r == 0 or n_c == 0:
        missing = "no referred residents" if n_r == 0 else f"no {comparison_arm} members"
        return result(_NAN, f"{missing} with an outcome: nothing to compare")
    rows = np.flatnonzero(referred | compared)
    own = (
        pd.Series([None] * len(y), dtype=object)
        if clusters is None
        else pd.Series(np.asarray(clusters, dtype=object))
    )
    alone = pd.Series([f"row:{i}" for i in range(len(y))], dtype=object)
    group = np.where(
        referred,
        ("mentor:" + mentor.astype(str)).to_numpy(dtype=object),
        ("cluster:" + own.astype(str)).where(own.notna(), alone).to_numpy(dtype=object),
    )
    codes = pd.factorize(pd.Series(group[rows], dtype=object))[0]
    cell = referred[rows].astype(np.int64)  # 0 comparison, 1 referred
    yy = y[rows]
    fit = Fit(yy, [Block(np.arange(len(yy)), cell, 2, np.empty((len(yy), 0)))])
    target = np.array([[-1.0, 1.0]])
    estimate = float(fit.estimates(target)[0])
    try:
        cr2 = fit.cr2(target, codes)
        se = float(np.sqrt(max(cr2.covariance[0, 0], 0.0)))
        df = float(cr2.df()[0])
    except DegenerateDesign:
        return result(Inference(estimate, *_NAN[1:]), "too few clusters for an interval")
    message = "" if mentors >= 2 else "one mentor only: the interval rests on one cluster"
    return result(inference(estimate, se, df, alpha), message)
