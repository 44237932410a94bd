"""The analyses a report carries beside its primary outcome's effects, run from one call.

`further_analyses` takes the participant frame, the primary analysis and the analysis
plan's outcomes (the first primary, the others secondary) and gives:
- every outcome's effects with its role (`outcomes.several_outcomes`: Holm across the
  primary family, Benjamini-Hochberg across the secondary one);
- collective and individual co-production side by side with the substitution reading and
  the joint (simultaneous) interval of the two effects, when both are analysed;
- self-reported against verified participation per arm, flagged as possible reporting
  bias when they differ, when both are analysed;
- with a mediator: the causal mediation of the effect on collective co-production (or, if
  it is not analysed, on the primary outcome) through it, weighted by the inverse
  probability of answering when a response column is given (respondents then stand for
  everyone randomized);
- with a response column: for each survey-measured outcome (empty exactly where the
  survey was not answered) Lee bounds, the response-weighted estimate and one sentence on
  which reading the data support;
- with an exposure column: the complier average causal effect on the primary outcome.
An analysis the data cannot support (a missing column, too few respondents) does not stop
the report: its reason is kept in `notes`. The estimators live in their own modules; this
one only decides which to run on what.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import pandas as pd

from experiments.analysis.adjustment import OutcomeInputError, TrialColumns, numeric
from experiments.analysis.bounds import LeeBounds, lee_bounds
from experiments.analysis.compliance import LABEL as CACE_LABEL
from experiments.analysis.compliance import ComplierEffect, complier_effects
from experiments.analysis.coproduction import (
    CoproductionEffect,
    ReportingCheck,
    coproduction_effects,
    reporting_bias,
)
from experiments.analysis.mediation import ASSUMPTION as MEDIATION_ASSUMPTION
from experiments.analysis.mediation import MediationEffect, mediation
from experiments.analysis.multiplicity import Correction
from experiments.analysis.nonresponse import (
    WeightedEffect,
    response_weighted_effects,
    response_weights,
)
from experiments.analysis.outcomes import (
    OutcomeEffects,
    OutcomePlanError,
    roles,
    several_outcomes,
)
from experiments.analysis.trial import AnalysisInputError
from experiments.diagnostics import attrition_from_counts
from experiments.p_values import p_text

COLLECTIVE = "collective_coproduction"
INDIVIDUAL = "individual_coproduction"
SELF_REPORT = "participated"
VERIFIED = "attended"
RESPONSE_DIFFERS = 0.05  # chi-square p below which response rates are said to differ


@dataclass(frozen=True)
class OutcomeSpec:
    """One outcome of the plan: the name the report uses, the frame column holding it,
    and optionally its baseline value (the natural Lin covariate of the side-by-side panel
    and of the response-weighted estimate)."""

    name: str
    column: str = ""
    baseline: str | None = None

    @property
    def source(self) -> str:
        return self.column or self.name


@dataclass(frozen=True)
class SurveyReading:
    """Which reading of a survey-measured effect the data support."""

    outcome: str
    arm: str
    response_arm: float
    response_control: float
    response_p_value: float
    reading: str

    def to_dict(self) -> dict:
        return {k: _clean(v) for k, v in self.__dict__.items()}


@dataclass
class FurtherAnalyses:
    outcomes: list[OutcomeEffects]
    coproduction: list[CoproductionEffect] = field(default_factory=list)
    reporting: list[ReportingCheck] = field(default_factory=list)
    mediation: list[MediationEffect] = field(default_factory=list)
    bounds: list[LeeBounds] = field(default_factory=list)
    weighted: list[WeightedEffect] = field(default_factory=list)
    readings: list[SurveyReading] = field(default_factory=list)
    cace: list[ComplierEffect] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    alpha: float = 0.05
    mediation_weighted: bool = False

    def role(self, outcome: str) -> str | None:
        return next((o.role for o in self.outcomes if o.outcome == outcome), None)

    # -- the report's exact interface -------------------------------------------------

    def mediation_rows(self) -> list[dict]:
        keys = (
            "arm",
            "mediator",
            "acme",
            "acme_ci_low",
            "acme_ci_high",
            "ade",
            "proportion_mediated",
            "rho_at_zero",
        )
        return [{k: _clean(getattr(m, k)) for k in keys} for m in self.mediation]

    def bounds_rows(self) -> list[dict]:
        return [
            {"arm": b.arm, "outcome": b.outcome, "lower": _clean(b.lower), "upper": _clean(b.upper)}
            for b in self.bounds
        ]

    def cace_rows(self) -> list[dict]:
        return [
            {
                "arm": c.arm,
                "estimate": _clean(c.effect.estimate),
                "ci_low": _clean(c.effect.ci_low),
                "ci_high": _clean(c.effect.ci_high),
            }
            for c in self.cace
        ]

    def details(self) -> dict:
        """Everything behind those rows, for readers who want the full figures."""
        return {
            "coproduction": [_with_joint(c, self.alpha) for c in self.coproduction],
            "reporting_bias": [r.to_dict() for r in self.reporting],
            "mediation": [m.to_dict() for m in self.mediation],
            "mediation_assumption": MEDIATION_ASSUMPTION if self.mediation else None,
            "mediation_response_weighted": self.mediation_weighted,
            "bounds": [b.to_dict() for b in self.bounds],
            "response_weighted": [w.to_dict() for w in self.weighted],
            "survey_readings": [r.to_dict() for r in self.readings],
            "cace": [c.to_dict() for c in self.cace],
            "cace_label": CACE_LABEL if self.cace else None,
            "notes": list(self.notes),
        }


def _clean(x: Any) -> Any:
    if isinstance(x, float | np.floating):
        return float(x) if math.isfinite(x) else None
    return x


def joint_interval(c: CoproductionEffect, alpha: float) -> dict:
    """The simultaneous interval of the two effects: the projection of their joint
    (1 - alpha) confidence ellipse on each axis, estimate +- sqrt(chi2_2(1 - alpha)) SE
    (chi-square with 2 df: its quantile is -2 log alpha). Both intervals hold together
    with probability at least 1 - alpha."""
    k = math.sqrt(-2 * math.log(alpha))
    p = c.effects
    out: dict[str, Any] = {"level": 1 - alpha, "multiplier": k}
    for name, e in ((p.first, p.first_effect), (p.second, p.second_effect)):
        out[name] = [_clean(e.estimate - k * e.std_error), _clean(e.estimate + k * e.std_error)]
    return out


def _with_joint(c: CoproductionEffect, alpha: float) -> dict:
    return {**c.to_dict(), "joint_interval": joint_interval(c, alpha)}


ERRORS = (OutcomeInputError, AnalysisInputError, np.linalg.LinAlgError)


def _run(
    notes: list[str], what: str, fn: Callable[..., list], columns: TrialColumns | None = None
) -> list:
    """`fn()` (or `fn(columns)`); a failure becomes a note. With strata, a regression that
    cannot be fitted (a stratum without respondents in an arm, as in a small survey) is
    fitted again without the stratum indicators: the assignment probabilities (weights
    1/p where they differ) keep it unbiased, only less precise, and the note says so."""
    try:
        return fn() if columns is None else fn(columns)
    except ERRORS as exc:
        if columns is None or not columns.stratum:
            notes.append(f"{what}: not computed ({exc})")
            return []
        first = exc
    try:
        got = fn(replace(columns, stratum=None))
    except ERRORS as exc:
        notes.append(f"{what}: not computed ({exc})")
        return []
    notes.append(f"{what}: computed without stratum indicators ({first})")
    return got


def _zero_one(frame: pd.DataFrame, column: str, what: str, one: str) -> np.ndarray:
    values = numeric(frame, column, what)
    odd = ~np.isnan(values) & ~np.isin(values, (0.0, 1.0))
    if odd.any():
        row = int(np.flatnonzero(odd)[0])
        raise OutcomeInputError(
            f"{what} {column!r} must be 1 ({one}) or 0, not {frame[column].iloc[row]!r} "
            f"(row {row + 2} counting the header as row 1)"
        )
    return values


def _survey_measured(frame: pd.DataFrame, column: str, answered: np.ndarray) -> bool:
    """Empty wherever the survey was not answered (and present for some respondents)."""
    y = numeric(frame, column, "outcome")
    missing = np.isnan(y)
    not_answered = answered == 0
    return bool(not_answered.any() and missing[not_answered].all() and (~missing).any())


def further_analyses(
    frame: pd.DataFrame,
    primary_effects: Sequence[Any],
    specs: Sequence[OutcomeSpec],
    *,
    columns: TrialColumns,
    estimate: Callable[[str], Sequence[Any]],
    correction: Correction = "holm",
    alpha: float = 0.05,
    mediator: str | None = None,
    response: str | None = None,
    response_covariates: Sequence[str] = (),
    exposure: str | None = None,
    simulations: int = 1000,
    seed: int = 0,
) -> FurtherAnalyses:
    """Run the analyses of the plan's outcomes (see the module docstring).

    `primary_effects` are the primary outcome's effects as the report's top-level
    `effects` holds them; `estimate(column)` gives another outcome's effects with the same
    headline estimator, `column` being the spec's column of `frame`. Raises
    OutcomePlanError for an empty plan, an outcome named twice or a missing column,
    OutcomeInputError for a response or exposure column not 0/1, and lets `estimate`'s
    errors through (an outcome the caller asked for must be analysable); a secondary
    analysis the data cannot support becomes a note.
    """
    if not specs:
        raise OutcomePlanError("name at least one outcome (the first is the primary)")
    names = [s.name for s in specs]
    roles(names)  # refuses an outcome named twice before anything runs
    # `estimate` reads the caller's frame, so it is given the caller's column: under the
    # plan's name that frame may hold something else (`collective_coproduction` is the
    # baseline answer there, the follow-up answer being `collective_coproduction_followup`).
    columns_in = {s.name: s.source for s in specs}
    frame, specs = _by_name(frame, specs)
    by_name = {s.name: s for s in specs}
    notes: list[str] = []
    effects: dict[str, Sequence[Any]] = {specs[0].name: list(primary_effects)}
    for spec in specs[1:]:
        if spec.name in effects:
            continue
        effects[spec.name] = list(estimate(columns_in[spec.name]))
    out = FurtherAnalyses(several_outcomes(effects, names, correction), alpha=alpha, notes=notes)

    if COLLECTIVE in by_name and INDIVIDUAL in by_name:
        col, ind = by_name[COLLECTIVE], by_name[INDIVIDUAL]
        out.coproduction = _run(
            notes,
            "collective and individual co-production side by side",
            lambda c: coproduction_effects(
                frame, c, col.source, ind.source, col.baseline, ind.baseline, alpha
            ),
            columns,
        )
    if SELF_REPORT in by_name and VERIFIED in by_name:
        out.reporting = _run(
            notes,
            "self-reported against verified participation",
            lambda c: reporting_bias(
                frame, c, by_name[SELF_REPORT].source, by_name[VERIFIED].source, alpha
            ),
            columns,
        )

    answered = _zero_one(frame, response, "response column", "answered") if response else None
    if exposure:
        _zero_one(frame, exposure, "exposure column", "saw the message")
    if answered is not None:
        for spec in specs:
            if spec.source == response or not _survey_measured(frame, spec.source, answered):
                continue
            out.bounds += _run(
                notes,
                f"Lee bounds on {spec.name}",
                lambda s=spec: lee_bounds(frame, columns, s.source, response, alpha),
            )
            out.weighted += _run(
                notes,
                f"response-weighted effects on {spec.name}",
                lambda c, s=spec: response_weighted_effects(
                    frame, c, s.source, response_covariates, response, s.baseline, alpha
                ),
                columns,
            )
        out.readings = _readings(frame, columns, out, answered, alpha)
    if mediator:
        target = by_name.get(COLLECTIVE, specs[0])
        out.mediation = _mediation(
            frame, columns, target, mediator, answered, response, response_covariates, out,
            simulations, seed, alpha,
        )  # fmt: skip
    if exposure:
        out.cace = _run(
            notes,
            f"complier effect of {exposure}",
            lambda c: complier_effects(frame, c, specs[0].source, exposure, alpha),
            columns,
        )
    return out


def _mediation(
    frame, columns, target, mediator, answered, response, response_covariates, out,
    simulations, seed, alpha,
) -> list[MediationEffect]:  # fmt: skip
    cols = TrialColumns(
        arm=columns.arm,
        control=columns.control,
        covariates=tuple(dict.fromkeys([*columns.covariates, *filter(None, [target.baseline])])),
        stratum=columns.stratum,
        probability=columns.probability,
        cluster=columns.cluster,
    )
    weights = None
    if answered is not None and _survey_measured(frame, target.source, answered):
        w = _run(
            out.notes,
            "response weights for the mediation analysis",
            lambda c: [response_weights(frame, c, response, response_covariates)],
            columns,
        )
        if w:
            frame = frame.assign(_response_weight=w[0])
            weights = "_response_weight"
            out.mediation_weighted = True
    return _run(
        out.notes,
        f"mediation of {target.name} through {mediator}",
        lambda c: mediation(
            frame,
            c,
            target.source,
            mediator,
            simulations=simulations,
            seed=seed,
            alpha=alpha,
            weights=weights,
        ),
        cols,
    )


def _readings(
    frame: pd.DataFrame,
    columns: TrialColumns,
    out: FurtherAnalyses,
    answered: np.ndarray,
    alpha: float,
) -> list[SurveyReading]:
    arm_text = frame[columns.arm].astype("string")
    has_arm = arm_text.notna().to_numpy()
    arms = sorted({str(a) for a in arm_text[has_arm]} - {str(columns.control)})
    arms = [str(columns.control), *arms]
    codes = arm_text.to_numpy(dtype=object)
    n = [int(((codes == a) & has_arm).sum()) for a in arms]
    r = [int(((codes == a) & has_arm & (answered == 1)).sum()) for a in arms]
    attrition = attrition_from_counts("survey", arms, n, r, arms[0])
    rate = {row.arm: row.rate for row in attrition.rows}
    differs = math.isfinite(attrition.p_value) and attrition.p_value < RESPONSE_DIFFERS
    weighted = {(w.outcome, w.arm): w for w in out.weighted}
    readings = []
    for b in out.bounds:
        w = weighted.get((b.outcome, b.arm))
        response = (
            f"response differs by arm ({100 * rate[b.arm]:.0f}% against "
            f"{100 * rate[arms[0]]:.0f}% in the control, {p_text(attrition.p_value)})"
            if differs
            else f"response does not differ clearly by arm ({p_text(attrition.p_value)})"
        )
        bounds = f"Lee bounds {b.lower:.3g} to {b.upper:.3g}"
        if w is not None:
            e = w.estimate
            weighted_text = (
                f"the response-weighted estimate {e.estimate:.3g} ({100 * (1 - alpha):.0f}% "
                f"interval {e.ci_low:.3g} to {e.ci_high:.3g})"
            )
            weighted_effect = e.ci_low > 0 or e.ci_high < 0
        else:
            weighted_text, weighted_effect = "no response-weighted estimate", False
        if b.lower > 0 or b.upper < 0:
            verdict = (
                "the bounds exclude zero, so the data support an effect whatever the "
                "extra respondents were like"
            )
        elif weighted_effect:
            verdict = (
                "the bounds include zero: the effect rests on the weighted reading, which "
                "assumes that within each arm answering depends only on the response "
                "model's covariates"
            )
        elif differs:
            verdict = "neither reading shows an effect"
        else:
            verdict = "the respondents' estimate is a fair reading; neither reading shows more"
        readings.append(
            SurveyReading(
                b.outcome,
                b.arm,
                rate[b.arm],
                rate[arms[0]],
                attrition.p_value,
                f"{b.arm}, {b.outcome}: {response}; {bounds}, {weighted_text}: {verdict}.",
            )
        )
    return readings


def _by_name(frame: pd.DataFrame, specs: Sequence[OutcomeSpec]):
    """The frame with every outcome under its plan name (and its baseline under a name of
    its own, in case the outcome's name is its baseline column's), so that every result
    carries the names the report uses."""
    renamed, out = {}, []
    for spec in specs:
        baseline = spec.baseline
        if baseline and baseline in frame.columns and frame[baseline].nunique() <= 1:
            baseline = None  # the same for everyone (e.g. an eligibility rule): no covariate
        if baseline:
            if baseline not in frame.columns:
                raise OutcomePlanError(f"no baseline column {baseline!r} for {spec.name}")
            renamed[f"{spec.name}__baseline"] = frame[baseline]
            baseline = f"{spec.name}__baseline"
        if spec.source not in frame.columns:
            raise OutcomePlanError(f"no outcome column {spec.source!r} in the data")
        renamed[spec.name] = frame[spec.source]
        out.append(OutcomeSpec(spec.name, spec.name, baseline))
    return frame.assign(**renamed), out
