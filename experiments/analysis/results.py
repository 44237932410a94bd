"""The typed results every estimator returns: an arm's effect, a subgroup effect, a test that
effects differ across levels, a slope, each with the reference distribution it was read
against. Degenerate data gives a result carrying an error code and a message, not an
exception (NaN numbers, written as null in JSON)."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Literal

import numpy as np

from experiments.analysis.dist import norm_isf, norm_sf, t_isf, t_sf

Family = Literal["confirmatory", "exploratory"]
Method = Literal[
    "difference_in_means",
    "blocked",
    "ipw",
    "cluster_robust",
    "lin",
    "lin_blocked",
    "lin_ipw",
    "lin_cluster_robust",
]

# What each method's `reference` says when the estimator did not state its own.
REFERENCES: dict[str, str] = {
    "difference_in_means": "t, Welch-Satterthwaite df (HC2 = Neyman standard error)",
    "blocked": "t, N - K df (blocked difference in means, HC2 within strata)",
    "ipw": "t, N - K df (inverse-probability weighted means, WLS with HC2)",
    "cluster_robust": "t, Bell-McCaffrey df (CR2 cluster-robust)",
    "lin": "t, N - K df (OLS with centred covariates x arm, HC2)",
    "lin_blocked": "t, N - K df (Lin adjustment interacted with strata, HC2)",
    "lin_ipw": "t, N - K df (Lin adjustment, WLS with inverse-probability weights, HC2)",
    "lin_cluster_robust": "t, Bell-McCaffrey df (Lin adjustment, CR2 cluster-robust)",
}


@dataclass(frozen=True)
class Inference:
    estimate: float
    std_error: float
    df: float
    statistic: float
    p_value: float
    ci_low: float
    ci_high: float


def inference(estimate: float, std_error: float, df: float, alpha: float) -> Inference:
    """Two-sided test of zero and a 1 - alpha interval; df = inf means normal."""
    if not (math.isfinite(estimate) and math.isfinite(std_error)) or std_error <= 0:
        nan = math.nan
        return Inference(estimate, std_error, df, nan, nan, nan, nan)
    if not df > 0:
        nan = math.nan
        return Inference(estimate, std_error, df, estimate / std_error, nan, nan, nan)
    z = estimate / std_error
    if math.isinf(df):
        p = 2 * norm_sf(abs(z))
        q = norm_isf(alpha / 2)
    else:
        p = 2 * t_sf(abs(z), df)
        q = t_isf(alpha / 2, df)
    return Inference(
        estimate, std_error, df, z, float(p), estimate - q * std_error, estimate + q * std_error
    )


def clean(v):
    """A value as JSON writes it: non-finite floats become None, numpy scalars plain."""
    if isinstance(v, float | np.floating):
        return float(v) if math.isfinite(v) else None
    if isinstance(v, np.integer):
        return int(v)
    return v


@dataclass(frozen=True)
class Effect:
    """One arm's effect against control. `error` is a code when it could not be estimated
    (`message` says why); the numbers are then NaN. `mean_treatment` and `mean_control`
    are the arm means the estimator compares (standardized to the trial's strata and
    covariate means for blocked, weighted and Lin estimates), so their difference is the
    estimate and `relative_lift` is the estimate over `mean_control`."""

    arm: str
    control: str
    method: Method
    estimate: float
    std_error: float
    ci_low: float
    ci_high: float
    p_value: float
    statistic: float
    df: float
    n_treatment: int
    n_control: int
    mean_treatment: float
    mean_control: float
    relative_lift: float = math.nan
    relative_lift_se: float = math.nan
    p_adjusted: float = math.nan
    error: str | None = None
    message: str = ""
    variance: str = ""
    ri_p_value: float | None = None

    @property
    def reference(self) -> str:
        return self.variance or REFERENCES[self.method]

    def to_dict(self) -> dict:
        d = _without_unset_ri(self)
        del d["variance"]
        d["reference"] = self.reference
        return d


def failed_effect(
    arm: str,
    control: str,
    method: Method,
    code: str,
    message: str,
    n_treatment: int = 0,
    n_control: int = 0,
    mean_treatment: float = math.nan,
    mean_control: float = math.nan,
) -> Effect:
    nan = math.nan
    return Effect(
        arm,
        control,
        method,
        nan,
        nan,
        nan,
        nan,
        nan,
        nan,
        nan,
        n_treatment,
        n_control,
        mean_treatment,
        mean_control,
        error=code,
        message=message,
    )


@dataclass(frozen=True)
class SubgroupEffect:
    moderator: str
    level: str
    arm: str
    n: int
    n_treatment: int
    n_control: int
    mean_treatment: float
    mean_control: float
    estimate: float
    std_error: float
    ci_low: float
    ci_high: float
    p_value: float
    df: float
    family: Family
    p_adjusted: float = math.nan
    error: str | None = None
    message: str = ""
    method: str = "difference_in_means"
    reference: str = ""
    ri_p_value: float | None = None

    def to_dict(self) -> dict:
        return _without_unset_ri(self)


@dataclass(frozen=True)
class Interaction:
    """Test, for one arm, that its effect is equal at every level of a moderator: a Wald
    chi-square with independent levels, or the HTZ F test (Pustejovsky and Tipton 2018)
    when clusters were randomized (`statistic` is then F, `df` its numerator df and
    `df_denominator` the estimated denominator df)."""

    moderator: str
    arm: str
    statistic: float
    df: int
    p_value: float
    family: Family
    levels: int
    p_adjusted: float = math.nan
    error: str | None = None
    message: str = ""
    test: str = "wald_chi2"
    df_denominator: float | None = None
    reference: str = ""
    ri_p_value: float | None = None

    def to_dict(self) -> dict:
        return _without_unset_ri(self)


@dataclass(frozen=True)
class Slope:
    """Linear interaction: change in the arm's effect per unit of a numeric moderator."""

    moderator: str
    arm: str
    estimate: float
    std_error: float
    ci_low: float
    ci_high: float
    p_value: float
    df: float
    family: Family
    error: str | None = None
    message: str = ""
    p_adjusted: float = math.nan
    reference: str = ""
    ri_p_value: float | None = None

    def to_dict(self) -> dict:
        return _without_unset_ri(self)


def _without_unset_ri(row) -> dict:
    """The row as JSON: `ri_p_value` only when randomization inference was run."""
    d = {k: clean(v) for k, v in asdict(row).items()}
    if d.get("ri_p_value", 0) is None and row.ri_p_value is None:
        del d["ri_p_value"]
    return d


@dataclass(frozen=True)
class Heterogeneity:
    """One moderator's subgroup effects (level by level, arms in order within a level)
    and, per arm, the test that its effect is the same at every level."""

    subgroups: list[SubgroupEffect]
    interactions: list[Interaction]
