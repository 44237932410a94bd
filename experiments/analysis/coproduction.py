"""Two outcomes of one trial side by side: the collective and individual forms of
co-production (did a collective gain come at the cost of individual co-production?), and
self-reported against verified participation (did a message change the reporting rather
than the behaviour?).

Both are the same estimator: each outcome's Lin-adjusted effect per arm (its own baseline
value as an extra covariate), from two regressions on the same participants stacked into
one covariance (`sandwich.cross_covariance`: the sum over participants, or clusters, of
the product of their scores). The covariance gives the joint region of the two effects
(a Wald test that both are zero, chi-square with 2 df) and the interval of their
difference. For self-report against verification the difference is the arm x measure
interaction of the stacked regression: a difference flags possible reporting bias.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd

from experiments.analysis.adjustment import (
    ArmData,
    OutcomeInputError,
    TrialColumns,
    arm_data,
    lin_regressors,
    numeric,
)
from experiments.analysis.dist import chi2_sf
from experiments.analysis.sandwich import (
    Contrast,
    DegenerateDesign,
    LinearFit,
    cross_covariance,
    least_squares,
)
from experiments.p_values import p_text


@dataclass(frozen=True)
class Scale:
    """How an outcome's effects are put in words: `multiplier` x effect, then `unit`."""

    multiplier: float = 1.0
    unit: str = ""

    def words(self, value: float) -> str:
        text = f"{abs(value) * self.multiplier:.3g}".rstrip()
        return f"{text} {self.unit}".rstrip()

    @classmethod
    def of(cls, values: np.ndarray, unit: str | None = None) -> Scale:
        """Percentage points for a 0/1 outcome, the outcome's own units otherwise."""
        finite = values[np.isfinite(values)]
        if unit is None and len(finite) and np.all((finite == 0) | (finite == 1)):
            return cls(100.0, "points")
        return cls(1.0, unit or "")


def _contrast_dict(c: Contrast) -> dict:
    def clean(x: float) -> float | None:
        return float(x) if math.isfinite(x) else None

    return {
        "estimate": clean(c.estimate),
        "std_error": clean(c.std_error),
        "ci_low": clean(c.ci_low),
        "ci_high": clean(c.ci_high),
        "p_value": clean(c.p_value),
        "df": clean(c.df),
    }


@dataclass(frozen=True)
class PairedEffect:
    """One arm's effects on two outcomes of the same participants, and their joint law."""

    arm: str
    control: str
    first: str
    second: str
    first_effect: Contrast
    second_effect: Contrast
    covariance: float
    difference: Contrast  # first - second
    joint_statistic: float
    joint_p_value: float
    n: int

    @property
    def correlation(self) -> float:
        den = self.first_effect.std_error * self.second_effect.std_error
        return self.covariance / den if den > 0 else math.nan

    def to_dict(self) -> dict:
        def clean(x: float) -> float | None:
            return float(x) if math.isfinite(x) else None

        return {
            "arm": self.arm,
            "control": self.control,
            "outcomes": [self.first, self.second],
            self.first: _contrast_dict(self.first_effect),
            self.second: _contrast_dict(self.second_effect),
            "covariance": clean(self.covariance),
            "correlation": clean(self.correlation),
            "difference": _contrast_dict(self.difference),
            "joint_statistic": clean(self.joint_statistic),
            "joint_p_value": clean(self.joint_p_value),
            "n": self.n,
        }


def _fit(data: ArmData, y: np.ndarray, baseline: np.ndarray | None) -> LinearFit:
    arm_columns = range(1, len(data.arms))
    return least_squares(
        lin_regressors(data, baseline),
        y,
        data.weights,
        data.clusters,
        data.units,
        df_for=arm_columns,
    )


def paired_effects(
    frame: pd.DataFrame,
    columns: TrialColumns,
    first: str,
    second: str,
    first_baseline: str | None = None,
    second_baseline: str | None = None,
    alpha: float = 0.05,
) -> list[PairedEffect]:
    """Each arm's Lin-adjusted effects on `first` and `second` with their covariance.

    Uses the participants who have both outcomes (and every baseline). The difference's
    reference is t with the smaller of the two effects' df (N - K, or Bell-McCaffrey with
    clusters). Raises OutcomeInputError for missing columns or a design that cannot be
    fitted (the message says why).
    """
    baselines = [b for b in (first_baseline, second_baseline) if b]
    y1, y2 = (numeric(frame, c, "outcome") for c in (first, second))
    data = arm_data(frame, columns, required=[first, second, *baselines])
    y1, y2 = y1[data.rows], y2[data.rows]
    b1, b2 = (
        numeric(frame, b)[data.rows] if b else None for b in (first_baseline, second_baseline)
    )
    try:
        fit1, fit2 = _fit(data, y1, b1), _fit(data, y2, b2)
    except DegenerateDesign as exc:
        raise OutcomeInputError(f"{first} and {second} cannot be compared by arm: {exc}") from None
    cross = cross_covariance(fit1, fit2)
    out = []
    for j in range(1, len(data.arms)):
        e1, e2 = fit1.coefficient(j, alpha), fit2.coefficient(j, alpha)
        cov = float(cross[j, j])
        var_diff = e1.std_error**2 + e2.std_error**2 - 2 * cov
        df = min(e1.df, e2.df)
        diff = Contrast.of(
            e1.estimate - e2.estimate, math.sqrt(max(var_diff, 0.0)) or math.nan, df, alpha
        )
        V = np.array([[e1.std_error**2, cov], [cov, e2.std_error**2]])
        b = np.array([e1.estimate, e2.estimate])
        try:
            stat = float(b @ np.linalg.solve(V, b))
        except np.linalg.LinAlgError:
            stat = math.nan
        p = chi2_sf(stat, 2) if math.isfinite(stat) else math.nan
        out.append(
            PairedEffect(
                data.arms[j], data.arms[0], first, second, e1, e2, cov, diff, stat, p, data.n
            )
        )
    return out


# -- collective and individual co-production -------------------------------------------


@dataclass(frozen=True)
class CoproductionEffect:
    """An arm's effects on collective and individual co-production, with the reading."""

    effects: PairedEffect
    reading: str

    def to_dict(self) -> dict:
        return {**self.effects.to_dict(), "reading": self.reading}


def _movement(c: Contrast, scale: Scale) -> str:
    if c.ci_low > 0:
        return f"up {scale.words(c.estimate)}"
    if c.ci_high < 0:
        return f"down {scale.words(c.estimate)}"
    low = c.ci_low * scale.multiplier
    high = c.ci_high * scale.multiplier
    unit = f" {scale.unit}" if scale.unit else ""
    return f"unchanged (interval {low:.3g} to {high:.3g}{unit})"


def substitution_reading(
    collective: Contrast, individual: Contrast, collective_scale: Scale, individual_scale: Scale
) -> str:
    """One sentence: how each form moved (intervals that exclude zero count as a move) and
    whether the pattern suggests substitution."""
    up, down = collective.ci_low > 0, individual.ci_high < 0
    if up and down:
        verdict = (
            "a sign of substitution: the collective gain came partly at the cost of "
            "individual co-production"
        )
    elif up and individual.ci_low > 0:
        verdict = "no substitution: both forms rose"
    elif up:
        verdict = "no sign of substitution"
    elif down:
        verdict = "individual co-production fell without a collective gain"
    else:
        verdict = "no collective gain to weigh against individual co-production"
    return (
        f"collective {_movement(collective, collective_scale)}, individual "
        f"{_movement(individual, individual_scale)}: {verdict}"
    )


def coproduction_effects(
    frame: pd.DataFrame,
    columns: TrialColumns,
    collective: str = "collective_coproduction",
    individual: str = "individual_coproduction",
    collective_baseline: str | None = None,
    individual_baseline: str | None = None,
    alpha: float = 0.05,
    units: tuple[str | None, str | None] = (None, None),
) -> list[CoproductionEffect]:
    """Per arm, collective and individual co-production side by side with a reading.

    Each outcome is adjusted for its own baseline value (the natural Lin covariate) and
    the common covariates. `units` names each outcome's unit for the reading (default:
    percentage points for a 0/1 outcome, the bare number otherwise).
    """
    pairs = paired_effects(
        frame, columns, collective, individual, collective_baseline, individual_baseline, alpha
    )
    scales = [
        Scale.of(numeric(frame, col, "outcome"), unit)
        for col, unit in zip((collective, individual), units, strict=True)
    ]
    return [
        CoproductionEffect(
            p, substitution_reading(p.first_effect, p.second_effect, scales[0], scales[1])
        )
        for p in pairs
    ]


# -- self-reported against verified participation --------------------------------------


@dataclass(frozen=True)
class ReportingCheck:
    """An arm's effects on self-reported and on verified participation among those who
    answered; `flagged` when their difference (the arm x measure interaction) is below
    alpha. `overreport_*` are the shares reporting taking part without a verified visit."""

    effects: PairedEffect
    overreport_arm: float
    overreport_control: float
    flagged: bool
    reading: str

    def to_dict(self) -> dict:
        return {
            **self.effects.to_dict(),
            "overreport_arm": self.overreport_arm,
            "overreport_control": self.overreport_control,
            "flagged": self.flagged,
            "reading": self.reading,
        }


def reporting_bias(
    frame: pd.DataFrame,
    columns: TrialColumns,
    self_report: str,
    verified: str,
    alpha: float = 0.05,
) -> list[ReportingCheck]:
    """Self-reported against verified participation per arm (participants with both).

    Among the same people the two effects differ only through reporting, so a non-zero
    difference (t test of self-report effect minus verified effect, stacked covariance)
    is flagged as possible reporting bias.
    """
    pairs = paired_effects(frame, columns, self_report, verified, alpha=alpha)
    s = numeric(frame, self_report, "outcome")
    v = numeric(frame, verified, "outcome")
    both = ~np.isnan(s) & ~np.isnan(v)
    arm = frame[columns.arm].astype(str).to_numpy()
    scale = Scale.of(s)

    def overreport(a: str) -> float:
        m = both & (arm == a)
        return float(((s[m] > 0) & (v[m] == 0)).mean()) if m.any() else math.nan

    out = []
    control_rate = overreport(str(columns.control))
    for p in pairs:
        d = p.difference
        flagged = bool(math.isfinite(d.p_value) and d.p_value < alpha)
        words = (
            f"self-reported participation {_movement(p.first_effect, scale)}, verified "
            f"attendance {_movement(p.second_effect, scale)}"
        )
        if flagged:
            reading = (
                f"{p.arm}: {words}; they differ by {scale.words(d.estimate)} ("
                f"{p_text(d.p_value)}): the message may have changed the reporting as well as "
                "the behaviour (possible reporting bias); trust the verified measure"
            )
        else:
            reading = (
                f"{p.arm}: {words}; no sign of reporting bias (difference {p_text(d.p_value)})"
            )
        out.append(ReportingCheck(p, overreport(p.arm), control_rate, flagged, reading))
    return out
