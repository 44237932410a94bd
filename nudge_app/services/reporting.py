"""A campaign's effect report from the database: the analysis frame (one row per
randomized participant) and the report object built from it with the campaign's frozen
analysis plan (primary outcome, pre-registered moderators, covariates, alpha, correction).

The frame is read with a handful of grouped queries (no per-participant round trips) and
holds no personal details: arm key, stratum, probability, baseline covariates, cluster
and the outcome ladder. Everyone randomized stays in their assigned arm (intention to
treat), including those who opted out or were erased.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from sqlalchemy import func, select

from experiments.analysis import AnalysisInputError, analyze
from experiments.bands import DEFAULT_AGE_BANDS, DEFAULT_SELF_EFFICACY_BANDS, BandSpec
from experiments.design import CampaignDesign
from experiments.report import Report, build_report
from nudge_app.errors import DomainError
from nudge_app.extensions import db
from nudge_app.models import (
    Arm,
    Assignment,
    Campaign,
    Event,
    OutboundMessage,
    Participant,
    SurveyResponse,
)
from nudge_app.services.campaigns import design_of

FRAME_COLUMNS = (
    "participant_id",
    "arm",
    "stratum",
    "probability",
    "age",
    "self_efficacy",
    "gender",
    "country",
    "individual_coproduction",
    "cluster",
    "exposed",
    "joined",
    "participated",
    "self_efficacy_followup",
    "delivered",
    "opted_out",
)
CLUSTER_FIELDS = {"household": "cluster", "cluster": "cluster", "neighbourhood": "neighbourhood"}
NUDGE_KINDS = ("nudge", "invitation")
CATEGORICAL = ("gender", "country")


class ReportNotReady(DomainError):
    """The campaign has too little data to analyse yet (the message says what is missing)."""

    http_status = 409
    code = "not_ready"


def analysis_frame(campaign: Campaign) -> pd.DataFrame:
    """One row per randomized participant of the campaign, in participant id order."""
    design = campaign.randomization or {}
    cluster_field = CLUSTER_FIELDS.get(design.get("cluster") or "", "cluster")
    rows = db.session.execute(
        select(
            Participant.id,
            Arm.key,
            Assignment.stratum,
            Assignment.probability,
            Participant.age,
            Participant.self_efficacy,
            Participant.gender,
            Participant.country,
            Participant.individual_coproduction,
            getattr(Participant, cluster_field),
            Participant.opted_out_at,
        )
        .join(Assignment, Assignment.participant_id == Participant.id)
        .join(Arm, Arm.id == Assignment.arm_id)
        .where(Assignment.campaign_id == campaign.id)
        .order_by(Participant.id)
    ).all()
    frame = pd.DataFrame(
        rows,
        columns=[
            "participant_id",
            "arm",
            "stratum",
            "probability",
            "age",
            "self_efficacy",
            "gender",
            "country",
            "individual_coproduction",
            "cluster",
            "opted_out_at",
        ],
    )
    ids = frame["participant_id"]
    frame["age"] = pd.to_numeric(frame["age"], errors="coerce").astype(float)
    frame["self_efficacy"] = pd.to_numeric(frame["self_efficacy"], errors="coerce").astype(float)
    frame["individual_coproduction"] = frame["individual_coproduction"].map(
        lambda v: float(len(v)) if isinstance(v, list) else np.nan
    )
    frame["opted_out"] = frame.pop("opted_out_at").notna().astype(float)

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
    frame["delivered"] = flag(
        select(OutboundMessage.participant_id)
        .where(
            OutboundMessage.campaign_id == campaign.id,
            OutboundMessage.kind.in_(NUDGE_KINDS),
            OutboundMessage.status.in_(("sent", "delivered")),
        )
        .distinct()
    )
    survey = dict.fromkeys(ids, (np.nan, np.nan))
    for pid, participated, se in db.session.execute(
        select(
            SurveyResponse.participant_id, SurveyResponse.participated, SurveyResponse.self_efficacy
        ).where(SurveyResponse.campaign_id == campaign.id, SurveyResponse.kind == "follow_up")
    ):
        survey[pid] = (
            np.nan if participated is None else float(participated),
            np.nan if se is None else float(se),
        )
    answers = np.array([survey[pid] for pid in ids], dtype=float).reshape(-1, 2)
    frame["participated"] = answers[:, 0]
    frame["self_efficacy_followup"] = answers[:, 1]
    return frame[list(FRAME_COLUMNS)].copy()


def moderator_specs(design: CampaignDesign) -> list[BandSpec]:
    """The campaign's age and self-efficacy bands (always), then the other pre-registered
    moderators: banded when the design gives cut points, level by level otherwise."""
    strata = {s.moderator: s for s in design.randomization.strata}

    def spec(name: str) -> BandSpec:
        s = strata.get(name)
        if s is not None and s.cuts:
            return BandSpec(name, tuple(s.cuts), tuple(s.labels) if s.labels else None)
        if name == "age":
            return DEFAULT_AGE_BANDS
        if name == "self_efficacy":
            return DEFAULT_SELF_EFFICACY_BANDS
        return BandSpec(name)

    names = list(dict.fromkeys(["age", "self_efficacy", *design.analysis.moderators]))
    return [spec(n) for n in names]


def _covariates(frame: pd.DataFrame, names: list[str]) -> tuple[pd.DataFrame, list[str]]:
    """Numeric covariates as they are; a categorical one as indicator columns (first level
    left out) so the Lin adjustment can centre them."""
    out: list[str] = []
    for name in names:
        if name in CATEGORICAL:
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
    weights = {a.key: float(a.weight) for a in design.arms}
    try:
        result = analyze(
            frame,
            arm="arm",
            control=design.control.key,
            outcome=outcome,
            moderators=moderator_specs(design),
            covariates=covariates,
            block=block,
            cluster=cluster,
            probability="probability",
            randomization_inference=randomization_inference,
            seed=seed,
            progress=progress,
            alpha=plan.alpha,
            correction=plan.correction,
            preregistered=plan.moderators,
            weights=weights,
            minimum_effect=plan.minimum_effect,
        )
    except AnalysisInputError as exc:
        raise ReportNotReady(f"campaign {campaign.slug!r}: {exc}") from None
    labels = {a.key: a.name for a in design.arms}
    return build_report(
        result,
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
            "randomization_inference": plan.randomization_inference,
        },
    )


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
