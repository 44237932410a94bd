"""A campaign's effect report from the database: the analysis frame (one row per
randomized participant) and the report object built from it with the campaign's frozen
analysis plan (primary outcome, pre-registered moderators, covariates, alpha, correction).

The frame is read with a handful of grouped queries (no per-participant round trips) and
holds no personal details: arm key, stratum, probability, baseline covariates, cluster
and the outcome ladder. Everyone randomized stays in their assigned arm (intention to
treat), including those who opted out or were erased.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pandas as pd
from sqlalchemy import func, select

from experiments import baseline
from experiments.analysis import AnalysisInputError, analyze
from experiments.analysis.adjustment import OutcomeInputError
from experiments.analysis.further import FurtherAnalyses, OutcomeSpec, further_analyses
from experiments.analysis.outcomes import OutcomePlanError
from experiments.analysis.referrals import referral_effect
from experiments.analysis.request import TrialSettings
from experiments.bands import BandSpec
from experiments.design import (
    ATTENDANCE_OUTCOMES,
    REPORT_OUTCOMES,
    CampaignDesign,
    moderator_bands,
)
from experiments.population import describe as describe_population
from experiments.population import describe_bands
from experiments.report import Report, build_report
from experiments.report.prior_panel import prior_readings
from nudge_app.errors import DomainError
from nudge_app.extensions import db
from nudge_app.models import (
    Arm,
    Assignment,
    Campaign,
    Event,
    Participant,
    SurveyResponse,
)
from nudge_app.services import answers, attendance, evidence_library, screening
from nudge_app.services.campaigns import design_of
from nudge_app.services.consent import counts_by_version
from nudge_app.services.monitoring import first_message_delivered
from nudge_app.services.saturation_assignment import saturation_of_label

CLUSTER_FIELDS = {"household": "cluster", "cluster": "cluster", "neighbourhood": "neighbourhood"}
CELL_MODERATORS = ("age", "self_efficacy")


def frame_columns() -> tuple[str, ...]:
    """The analysis frame's columns: the assignment, every registered baseline variable
    (experiments.baseline), the cluster and the outcome ladder."""
    return (
        "participant_id",
        "arm",
        "stratum",
        "probability",
        *(v.name for v in baseline.variables()),
        "cluster",
        "exposed",
        "joined",
        "participated",
        *baseline.follow_up_outcomes(),
        *ATTENDANCE_OUTCOMES,
        "surveyed",
        "delivered",
        "opted_out",
    )


class ReportNotReady(DomainError):
    """The campaign has too little data to analyse yet (the message says what is missing)."""

    http_status = 409
    code = "not_ready"


def analysis_frame(campaign: Campaign) -> pd.DataFrame:
    """One row per randomized participant of the campaign, in participant id order."""
    design = campaign.randomization or {}
    cluster_field = CLUSTER_FIELDS.get(design.get("cluster") or "", "cluster")
    variables = baseline.variables()
    kept_columns = sorted({f for v in variables for f in v.stored if f in answers.COLUMNS})
    rows = db.session.execute(
        select(
            Participant.id.label("participant_id"),
            Arm.key.label("arm"),
            Assignment.stratum,
            Assignment.probability,
            *(getattr(Participant, name) for name in kept_columns),
            Participant.baseline,
            getattr(Participant, cluster_field).label("cluster_id"),
            Participant.opted_out_at,
        )
        .join(Assignment, Assignment.participant_id == Participant.id)
        .join(Arm, Arm.id == Assignment.arm_id)
        .where(Assignment.campaign_id == campaign.id)
        .order_by(Participant.id)
    ).all()
    frame = pd.DataFrame(
        {
            "participant_id": [r.participant_id for r in rows],
            "arm": [r.arm for r in rows],
            "stratum": [r.stratum for r in rows],
            "probability": [r.probability for r in rows],
            "cluster": [r.cluster_id for r in rows],
            "opted_out": [float(r.opted_out_at is not None) for r in rows],
        }
    )
    for v in variables:
        values = [v.value(answers.kept(r, v)) for r in rows]
        frame[v.name] = (
            pd.to_numeric(pd.Series(values, dtype=object), errors="coerce").astype(float)
            if v.value_type == "number"
            else pd.Series(values, dtype=object)
        )
    ids = frame["participant_id"]

    def flag(query) -> np.ndarray:
        found = {pid for (pid,) in db.session.execute(query)}
        return ids.isin(found).to_numpy(dtype=float)

    def event(kind: str):
        return (
            select(Event.participant_id)
            .where(Event.campaign_id == campaign.id, Event.kind == kind)
            .distinct()
        )

    frame["exposed"] = flag(event("exposure"))
    frame["joined"] = flag(event("join"))
    # The same query as the monitoring page's "first message delivered".
    frame["delivered"] = flag(first_message_delivered(campaign.id))
    follow_up = baseline.follow_up_variables()
    survey: dict[int, list[float]] = {}
    for pid, participated, given in db.session.execute(
        select(
            SurveyResponse.participant_id, SurveyResponse.participated, SurveyResponse.answers
        ).where(SurveyResponse.campaign_id == campaign.id, SurveyResponse.kind == "follow_up")
    ):
        survey[pid] = [
            np.nan if participated is None else float(participated),
            *(_number(v.value(given or {})) for v in follow_up),
        ]
    missing = [np.nan] * (1 + len(follow_up))
    answered = np.array([survey.get(pid, missing) for pid in ids], dtype=float)
    answered = answered.reshape(-1, 1 + len(follow_up))
    frame["participated"] = answered[:, 0]
    for i, v in enumerate(follow_up, start=1):
        frame[v.outcome] = answered[:, i]
    frame["surveyed"] = ids.isin(survey.keys()).to_numpy(dtype=float)
    came = attendance.attendance_outcomes(campaign)
    visits = np.array([came.get(pid, (0, 0, 0)) for pid in ids], dtype=float)
    visits = visits.reshape(-1, 3)
    for i, name in enumerate(ATTENDANCE_OUTCOMES):
        frame[name] = visits[:, i]
    return frame[list(frame_columns())].copy()


def _number(value) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        return np.nan


def moderator_specs(design: CampaignDesign) -> list[BandSpec]:
    """The core moderators' bands (age and self-efficacy: always), then the other
    pre-registered moderators: banded when the design or the variable gives cut points,
    level by level otherwise."""
    core = [v.name for v in baseline.core_variables()]
    names = list(dict.fromkeys([*core, *design.analysis.moderators]))
    return [moderator_bands(design, name) for name in names]


def _covariates(frame: pd.DataFrame, names: list[str]) -> tuple[pd.DataFrame, list[str]]:
    """Numeric covariates as they are; a categorical one as indicator columns (first level
    left out) so the Lin adjustment can centre them."""
    out: list[str] = []
    for name in names:
        if baseline.get(name).value_type == "category":
            levels = sorted(frame[name].dropna().astype(str).unique())
            for level in levels[1:]:
                col = f"{name}={level}"
                frame[col] = (frame[name].astype(str) == level).astype(float)
                frame.loc[frame[name].isna(), col] = np.nan
                out.append(col)
        else:
            out.append(name)
    return frame, out


def campaign_plan_draws(campaign: Campaign) -> int:
    """The re-randomizations the analysis plan asks for (0: none)."""
    return design_of(campaign).analysis.randomization_inference or 0


def campaign_report(
    campaign: Campaign,
    outcome: str | None = None,
    randomization_inference: int = 0,
    seed: int = 0,
    progress=None,
) -> Report:
    """The campaign's effect report on its primary outcome (or `outcome`), with
    randomization-inference p-values from `randomization_inference` re-draws (the web
    report does not run them: `nudge report` does).

    Raises ReportNotReady while an arm has fewer than two participants with an outcome.
    """
    design = design_of(campaign)
    plan = design.analysis
    outcome = outcome or plan.primary_outcome
    frame = analysis_frame(campaign)
    if frame.empty:
        raise ReportNotReady(f"campaign {campaign.slug!r} has no randomized participants yet")
    frame, covariates = _covariates(frame, list(plan.covariates))
    cluster = "cluster" if design.randomization.cluster else None
    if cluster:  # a member without a cluster id was randomized as a cluster of one
        alone = "participant:" + frame["participant_id"].astype(str)
        frame["cluster"] = frame["cluster"].astype(object).where(frame["cluster"].notna(), alone)
    # Every estimate is formed within the strata participants were randomized in, with
    # the probability recorded at assignment (tiny strata pooled by that probability).
    block = "stratum" if frame["stratum"].nunique() > 1 else None
    saturation = probability = None
    if design.randomization.saturations and cluster:
        # A saturation design: each row's cluster saturation, recorded as its stratum;
        # the headline compares offered with all others, the spillover panel per saturation.
        frame["saturation"] = frame["stratum"].map(saturation_of_label)
        saturation, block = "saturation", None
    else:
        probability = "probability"
    referrals = None
    if campaign.mentoring:
        mentor = referred_by(campaign, frame["participant_id"])
        referrals = referral_comparison(frame, mentor, outcome, design, saturation, plan.alpha)
        if saturation:
            # Residents a mentor's link brought in were recruited by the treatment after the
            # clusters were randomized: the saturation estimates are about the randomized
            # members; the referral panel is about the invited.
            frame = frame[mentor.isna().to_numpy()].reset_index(drop=True)
    weights = {a.key: float(a.weight) for a in design.arms}
    # The live report's always-valid monitoring: one look per day of enrolment, the
    # confidence sequences tightest at the planned sample (a fixed tuning, so every view
    # of the report belongs to the same sequence).
    frame[ENROLMENT_DAY] = enrolment_days(campaign, frame["participant_id"])
    planned = design.planned_sample_size or DEFAULT_SEQUENTIAL_N
    if cluster:
        planned = planned * frame["cluster"].nunique() / max(len(frame), 1)
    trial = TrialSettings(
        arm="arm",
        control=design.control.key,
        covariates=tuple(covariates),
        block=block,
        cluster=cluster,
        probability=probability,
        alpha=plan.alpha,
        correction=plan.correction,
    )
    settings = dict(
        sequential=ENROLMENT_DAY,
        sequential_n=float(planned),
        outcome=outcome,
        moderators=moderator_specs(design),
        saturation=saturation,
        randomization_inference=randomization_inference,
        seed=seed,
        progress=progress,
        preregistered=plan.moderators,
        weights=weights,
        minimum_effect=plan.minimum_effect,
        **trial.engine_arguments(),
    )
    # The age x self-efficacy cell table and targeting (not yet with clusters); a campaign
    # too thin for the cells still gets the rest of its report.
    cells = () if cluster else CELL_MODERATORS
    try:
        try:
            result = analyze(frame, cells=cells, **settings)
        except AnalysisInputError:
            if not cells:
                raise
            result = analyze(frame, **settings)
    except AnalysisInputError as exc:
        raise ReportNotReady(f"campaign {campaign.slug!r}: {exc}") from None
    # The further analyses always weigh by the recorded probabilities.
    further = _further_or_none(
        frame,
        result,
        outcome,
        replace(trial, probability="probability"),
        weights=weights,
        seed=seed,
        secondary=plan.secondary_outcomes,
    )
    labels = {a.key: a.name for a in design.arms}
    # The core moderators cut as the design's strata cut them, then co-production.
    bands = [
        moderator_bands(design, b.column) if baseline.get(b.column).core else b
        for b in describe_bands()
    ]
    population = describe_population(
        screening.population_frame(campaign, [b.column for b in bands]),
        rules=design.eligibility.require if design.eligibility else [],
        specs=bands,
    )
    report = build_report(
        result,
        further=further,
        title=f"{campaign.name}",
        source=f"campaign {campaign.slug}",
        arm_labels=labels,
        campaign={
            "slug": campaign.slug,
            "name": campaign.name,
            "status": campaign.status,
            "design_hash": campaign.design_hash,
            "launched_at": campaign.launched_at.isoformat() if campaign.launched_at else None,
            "primary_outcome": plan.primary_outcome,
            "preregistered_moderators": list(plan.moderators),
            # Participants per version of the consent text they agreed to.
            "consent_versions": counts_by_version(campaign),
            "randomization_inference": plan.randomization_inference,
            # The fixed-horizon result is the final analysis once this many are
            # randomized or the campaign is closed; until then the report says so.
            "planned_sample_size": design.planned_sample_size,
            "final_analysis": campaign.status == "closed"
            or bool(design.planned_sample_size and len(frame) >= design.planned_sample_size),
            # Verified attendance as the organiser recorded it (check-ins).
            "attendance": attendance.summary(campaign),
        },
        screening=screening.summary(campaign),
        population=population.to_dict(),
        referrals=referrals,
    )
    report.evidence = evidence_readings(campaign, design, result)
    return report


def referred_by(campaign: Campaign, participant_ids: pd.Series) -> pd.Series:
    """Each row's inviting mentor (`referred_by`; missing when they came in otherwise)."""
    found = dict(
        db.session.execute(
            select(Participant.id, Participant.referred_by).where(
                Participant.campaign_id == campaign.id, Participant.referred_by.is_not(None)
            )
        ).all()
    )
    return pd.Series([found.get(int(pid)) for pid in participant_ids], dtype=object)


def referral_comparison(
    frame: pd.DataFrame,
    mentor: pd.Series,
    outcome: str,
    design: CampaignDesign,
    saturation: str | None,
    alpha: float,
) -> dict | None:
    """The report's `referrals`: residents enrolled through a mentor's link against the
    other members of the control arm (of pure-control clusters in a saturation design,
    the members mentoring did not reach by design)."""
    if outcome not in frame.columns:
        return None
    comparison = (frame["arm"] == design.control.key).to_numpy()
    if saturation:
        comparison = comparison & (frame[saturation] == 0).to_numpy()
    clusters = frame["cluster"] if design.randomization.cluster else None
    return referral_effect(
        pd.to_numeric(frame[outcome], errors="coerce").to_numpy(dtype=float),
        mentor.to_numpy(),
        comparison,
        clusters,
        comparison_arm=design.control.key,
        alpha=alpha,
    ).to_dict()


def evidence_readings(campaign: Campaign, design: CampaignDesign, result) -> list:
    """Each arm's estimate beside the council's earlier campaigns with the same mechanism
    (this campaign left out) and the Bayesian reading under that prior and a flat one."""
    tags = {a.key: a.mechanism_tag for a in design.arms if not a.control}
    pools = {}
    for tag in {t for t in tags.values() if t}:
        pool = evidence_library.pool_for(
            campaign.council_id, result.outcome, tag, exclude_campaign_id=campaign.id
        )
        if pool is not None:
            pools[tag] = (pool.result, pool.campaigns)
    return prior_readings(result.effects, result.outcome, tags, pools)


ENROLMENT_DAY = "enrolled_on"
DEFAULT_SEQUENTIAL_N = 5000  # GrowthBook's default tuning when no sample size is planned


def enrolment_days(campaign: Campaign, participant_ids: pd.Series) -> pd.Series:
    """Each participant's day of randomization (ISO date), aligned with `participant_ids`."""
    day = func.date(Assignment.assigned_at)
    found = dict(
        db.session.execute(
            select(Assignment.participant_id, day).where(Assignment.campaign_id == campaign.id)
        ).all()
    )
    return participant_ids.map(lambda pid: str(found[pid])[:10] if pid in found else None)


# The secondary outcomes a campaign report analyses beside the primary when its plan
# names none (each when the data hold it): report name -> (frame column, its baseline).
SECONDARY_OUTCOMES = {k: v for k, v in REPORT_OUTCOMES.items() if k != "joined"}
MEDIATOR = "self_efficacy_followup"


def _analysable(frame: pd.DataFrame, column: str) -> bool:
    """Two values or more in every arm, not all the same (else no effect to estimate)."""
    values = pd.to_numeric(frame[column], errors="coerce")
    ok = values.notna()
    counts = frame.loc[ok, "arm"].value_counts()
    return bool(
        len(counts) == frame["arm"].nunique() and counts.min() >= 2 and values[ok].nunique() > 1
    )


def _further_or_none(*args, **kwargs) -> FurtherAnalyses | None:
    """The analyses beside the primary outcome; a secondary outcome the data cannot yet
    support leaves them out rather than the whole report (the primary stands alone)."""
    try:
        return _further(*args, **kwargs)
    except (AnalysisInputError, OutcomeInputError, OutcomePlanError):
        return None


def _further(
    frame: pd.DataFrame,
    result,
    primary: str,
    settings: TrialSettings,
    *,
    weights: dict[str, float],
    seed: int,
    secondary: list[str] | None = None,
) -> FurtherAnalyses:
    """Every outcome the data hold (attendance once someone is checked in, the follow-up
    outcomes once the survey is answered), collective and individual co-production side
    by side, self-report against verification, mediation through follow-up self-efficacy,
    Lee bounds and the response-weighted estimates of the survey outcomes, and the
    complier effect of seeing the page where not everyone saw it."""
    covariates = settings.covariates
    specs = [OutcomeSpec(primary, primary)]
    # The plan's secondary outcomes in its order; without them, every one the data hold.
    named = secondary is not None
    wanted = {n: REPORT_OUTCOMES[n] for n in secondary} if named else SECONDARY_OUTCOMES
    waiting: list[str] = []
    for name, (column, base) in wanted.items():
        if column == primary or name == primary:
            continue
        if name in ATTENDANCE_OUTCOMES and not frame["attended"].any():
            waiting.append(f"{name}: not analysed yet (nobody has been checked in)")
            continue  # nobody checked in: the organiser records no attendance
        if _analysable(frame, column):
            # a baseline that is already a covariate of the plan enters once
            specs.append(OutcomeSpec(name, column, None if base in covariates else base))
        else:
            waiting.append(
                f"{name}: not analysed yet (fewer than two answers in an arm, or all alike)"
            )
    surveyed = frame["surveyed"] == 1
    exposure = None
    if (frame["exposed"] == 0).any() and frame["exposed"].any():
        exposure = "exposed"

    def estimate(column: str):
        # The primary's estimator and design: strata too thin in the respondents of a
        # survey outcome are pooled with strata of the same probabilities (strata.py).
        return settings.effects(frame, column, weights=weights)

    response_covariates = [c for c in ("joined", *covariates) if frame[c].notna().all()]
    further = further_analyses(
        frame,
        result.effects,
        specs,
        columns=settings.columns(),
        estimate=estimate,
        correction=settings.correction,
        alpha=settings.alpha,
        mediator=MEDIATOR if surveyed.any() and _analysable(frame, MEDIATOR) else None,
        response="surveyed" if surveyed.any() and not surveyed.all() else None,
        response_covariates=response_covariates,
        exposure=exposure,
        seed=seed,
    )
    # A secondary outcome the plan names but the data cannot yet support is said so.
    if named:
        further.notes.extend(waiting)
    return further


def arm_counts(campaign: Campaign) -> dict[str, int]:
    """Participants assigned per arm (for a quick sample-ratio check)."""
    rows = db.session.execute(
        select(Arm.key, func.count(Assignment.id))
        .join(Assignment, Assignment.arm_id == Arm.id, isouter=True)
        .where(Arm.campaign_id == campaign.id)
        .group_by(Arm.key)
    ).all()
    return {k: int(n) for k, n in rows}


__all__ = [
    "ReportNotReady",
    "analysis_frame",
    "arm_counts",
    "campaign_plan_draws",
    "campaign_report",
    "moderator_specs",
]
