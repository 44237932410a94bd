"""The effect of seeing the message: the complier average causal effect (CACE), with the
random assignment as the instrument for exposure.

Not everyone assigned an arm sees its message (an e-mail unopened, a page never
visited). With one-sided non-compliance (nobody in the control sees an arm's message:
control rows count as unexposed) and exclusion (assignment changes the outcome only
through seeing the message), the effect among those who see a message when sent one is
ITT / (share exposed in the arm): the Wald estimator. With covariates, strata or several
arms it is two-stage least squares: the outcome on [1, covariates, exposure x arm]
instrumented by [1, covariates, arm dummies] (covariates centred; strata as centred
indicators). Where the assignment probabilities differ between strata the rows are
weighted by 1/p: additive stratum indicators alone would weight each stratum by
p (1 - p) x its compliance, not its share, and miss the CACE when effects differ by
stratum. Standard errors are heteroskedasticity-robust HC1 (CR1 with clusters), as
linearmodels' `IV2SLS(...).fit(cov_type="robust", debiased=True)`; t reference with
N - K df (G - 1 with clusters). It is a different estimand from the intention-to-treat
effect, labelled so beside it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd

from experiments.analysis.adjustment import (
    OutcomeInputError,
    TrialColumns,
    arm_data,
    centred,
    numeric,
)
from experiments.analysis.sandwich import Contrast, DegenerateDesign, two_stage

LABEL = (
    "effect of seeing the message among those who see it when sent (complier average "
    "causal effect, assignment as instrument); assumes assignment acts only through "
    "seeing the message"
)


@dataclass(frozen=True)
class ComplierEffect:
    arm: str
    control: str
    outcome: str
    exposure: str
    effect: Contrast
    compliance: float  # share of the arm that saw its message
    n: int

    def to_dict(self) -> dict:
        def clean(x: float) -> float | None:
            return float(x) if math.isfinite(x) else None

        e = self.effect
        return {
            "arm": self.arm,
            "control": self.control,
            "outcome": self.outcome,
            "exposure": self.exposure,
            "estimate": clean(e.estimate),
            "std_error": clean(e.std_error),
            "ci_low": clean(e.ci_low),
            "ci_high": clean(e.ci_high),
            "p_value": clean(e.p_value),
            "df": clean(e.df),
            "compliance": clean(self.compliance),
            "n": self.n,
            "label": LABEL,
        }


def complier_effects(
    frame: pd.DataFrame,
    columns: TrialColumns,
    outcome: str,
    exposure: str,
    alpha: float = 0.05,
) -> list[ComplierEffect]:
    """Each arm's CACE on `outcome`, `exposure` a 0/1 column (1 = saw the arm's message)."""
    y = numeric(frame, outcome, "outcome")
    seen = numeric(frame, exposure, "exposure column")
    data = arm_data(frame, columns, required=[outcome, exposure])
    y, seen = y[data.rows], seen[data.rows]
    if np.any(~np.isin(seen, (0.0, 1.0))):
        raise OutcomeInputError(f"exposure column {exposure!r} must be 0 or 1")
    D = data.dummies()
    shares = []
    for j in range(1, len(data.arms)):
        in_arm = data.arm == j
        w = None if data.design_weights is None else data.design_weights[in_arm]
        shares.append(float(np.average(seen[in_arm], weights=w)))
        if shares[-1] == 0:
            raise OutcomeInputError(f"nobody in arm {data.arms[j]!r} saw the message ({exposure})")
    exog = np.column_stack([np.ones(data.n), centred(data.covariates)])
    endog = D * seen[:, None]  # control rows are unexposed to any arm's message
    try:
        fit = two_stage(y, exog, endog, D, data.design_weights, data.clusters, data.units)
    except DegenerateDesign as exc:
        raise OutcomeInputError(
            f"the complier effect of {exposure} cannot be estimated: {exc}"
        ) from None
    k0 = exog.shape[1]
    return [
        ComplierEffect(
            data.arms[j],
            data.arms[0],
            outcome,
            exposure,
            fit.coefficient(k0 + j - 1, alpha),
            shares[j - 1],
            data.n,
        )
        for j in range(1, len(data.arms))
    ]
