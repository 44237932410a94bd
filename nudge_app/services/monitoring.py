"""Live monitoring figures of a campaign: enrolment by day, arm and stratum, the sample ratio
check (clusters counted in a cluster design, within strata against the recorded
probabilities), the outbox's messages by status and joins per arm (counts only; effects belong on
the report page).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from datetime import date

import numpy as np
from sqlalchemy import String, cast, distinct, func, literal, select

from experiments.analysis.srm import complete_probabilities, saturation_srm, stratified_srm
from experiments.bands import stratum_order
from experiments.diagnostics import SRMResult, srm
from experiments.p_values import p_text
from nudge_app.extensions import db
from nudge_app.models import Assignment, Campaign, Event, OutboundMessage, Participant

# "Delivered" wherever it is counted (this page and the report's participant flow): the
# person's first message (the nudge, or a survey-first campaign's invitation) was taken by
# the provider and has not failed: `sent`, or `delivered` once a receipt confirmed it.
FIRST_MESSAGE_KINDS = ("nudge", "invitation")
DELIVERED_STATUSES = ("sent", "delivered")
SCHEDULED = ("pending", "leased")
SENT = ("sending", "sent", "delivered")
FAILED = ("failed", "expired")
# The participant column holding each cluster design's cluster id (as services/reporting).
CLUSTER_FIELDS = {"household": "cluster", "cluster": "cluster", "neighbourhood": "neighbourhood"}


@dataclass
class SRMStatus:
    status: str  # "ok", "mismatch" or "not_enough_data"
    p_value: float | None
    message: str
    observed: dict[str, int] = field(default_factory=dict)
    expected: dict[str, float] = field(default_factory=dict)


@dataclass
class Monitoring:
    campaign: str
    status: str
    participants: int
    assigned: int
    arms: list[str]
    by_arm: dict[str, int]
    by_day: list[dict]  # {"date": "2026-11-30", "<arm>": n, ...}
    by_stratum: dict[str, dict[str, int]]
    srm: SRMStatus
    messages: dict[str, int]  # scheduled, sent, delivered, failed, cancelled
    messages_by_status: dict[str, int]
    joins_by_arm: dict[str, int]
    # Participants per arm whose first message was delivered (the report's flow table).
    delivered_by_arm: dict[str, int] = field(default_factory=dict)
    # Eligibility screening so far: assessed, eligible, screened_out, by_rule and the
    # screening rate (the share screened out; None before anyone was assessed).
    screening: dict = field(default_factory=dict)
    # The planned sample: the report's fixed-horizon effects are the final analysis once
    # it is randomized (or the campaign is closed); before, only its always-valid
    # intervals are safe to look at repeatedly.
    planned_sample_size: int | None = None

    def to_dict(self) -> dict:
        data = asdict(self)
        if data["srm"]["p_value"] is not None and math.isnan(data["srm"]["p_value"]):
            data["srm"]["p_value"] = None
        return data


def first_message_delivered(campaign_id: int):
    """The participants whose first message was delivered (one query for both pages)."""
    return (
        select(OutboundMessage.participant_id)
        .where(
            OutboundMessage.campaign_id == campaign_id,
            OutboundMessage.kind.in_(FIRST_MESSAGE_KINDS),
            OutboundMessage.status.in_(DELIVERED_STATUSES),
        )
        .distinct()
    )


def _day(value) -> str:
    if isinstance(value, date):
        return value.isoformat()
    return str(value)[:10]


def campaign_monitoring(campaign: Campaign) -> Monitoring:
    arms = {arm.id: arm.key for arm in campaign.arms}
    keys = list(arms.values())
    participants = db.session.scalar(
        select(func.count(Participant.id)).where(Participant.campaign_id == campaign.id)
    )
    by_arm = dict.fromkeys(keys, 0)
    by_stratum: dict[str, dict[str, int]] = {}
    for stratum, arm_id, n in db.session.execute(
        select(Assignment.stratum, Assignment.arm_id, func.count())
        .where(Assignment.campaign_id == campaign.id)
        .group_by(Assignment.stratum, Assignment.arm_id)
    ):
        key = arms.get(arm_id, str(arm_id))
        by_arm[key] = by_arm.get(key, 0) + int(n)
        row = by_stratum.setdefault(stratum or "(none)", dict.fromkeys(keys, 0))
        row[key] = int(n)
    day = func.date(Assignment.assigned_at)
    days: dict[str, dict] = {}
    for d, arm_id, n in db.session.execute(
        select(day, Assignment.arm_id, func.count())
        .where(Assignment.campaign_id == campaign.id)
        .group_by(day, Assignment.arm_id)
        .order_by(day)
    ):
        row = days.setdefault(_day(d), {"date": _day(d), **dict.fromkeys(keys, 0)})
        row[arms.get(arm_id, str(arm_id))] = int(n)
    assigned = sum(by_arm.values())
    weights = {arm.key: float(arm.weight) for arm in campaign.arms}
    srm_status = _srm(by_arm, weights, _design_srm(campaign, arms, keys, weights))
    by_status: dict[str, int] = {}
    for status, n in db.session.execute(
        select(OutboundMessage.status, func.count())
        .where(OutboundMessage.campaign_id == campaign.id)
        .group_by(OutboundMessage.status)
    ):
        by_status[status] = int(n)
    messages = {
        "scheduled": sum(by_status.get(s, 0) for s in SCHEDULED),
        "sent": sum(by_status.get(s, 0) for s in SENT),
        "delivered": by_status.get("delivered", 0),
        "failed": sum(by_status.get(s, 0) for s in FAILED),
        "cancelled": by_status.get("cancelled", 0),
    }
    delivered = dict.fromkeys(keys, 0)
    reached = first_message_delivered(campaign.id).subquery()
    for arm_id, n in db.session.execute(
        select(Assignment.arm_id, func.count())
        .join(reached, reached.c.participant_id == Assignment.participant_id)
        .where(Assignment.campaign_id == campaign.id)
        .group_by(Assignment.arm_id)
    ):
        delivered[arms.get(arm_id, str(arm_id))] = int(n)
    joins = dict.fromkeys(keys, 0)
    for arm_id, n in db.session.execute(
        select(Assignment.arm_id, func.count(distinct(Event.participant_id)))
        .join(Event, Event.participant_id == Assignment.participant_id)
        .where(Assignment.campaign_id == campaign.id, Event.kind == "join")
        .group_by(Assignment.arm_id)
    ):
        joins[arms.get(arm_id, str(arm_id))] = int(n)
    return Monitoring(
        campaign=campaign.slug,
        status=campaign.status,
        participants=int(participants or 0),
        assigned=assigned,
        arms=keys,
        by_arm=by_arm,
        by_day=list(days.values()),
        by_stratum={s: by_stratum[s] for s in stratum_order(list(by_stratum), _specs(campaign))},
        srm=srm_status,
        messages=messages,
        messages_by_status=by_status,
        joins_by_arm=joins,
        delivered_by_arm=delivered,
        screening=_screening(campaign),
        planned_sample_size=campaign.planned_sample_size,
    )


def _specs(campaign: Campaign):
    """The campaign's stratum moderators and their bands (the randomization's own)."""
    from nudge_app.services.assignment import plan_of

    return plan_of(campaign).specs


def _screening(campaign: Campaign) -> dict:
    from nudge_app.services import screening

    found = screening.summary(campaign)
    assessed = int(found["assessed"])
    rate = int(found["screened_out"]) / assessed if assessed else None
    return {**found, "rate": rate, "rules": list(campaign.eligibility or [])}


def _design_srm(
    campaign: Campaign, arms: dict[int, str], keys: list[str], weights: dict[str, float]
) -> SRMResult:
    """The sample ratio test the design calls for (experiments/analysis/srm.py): randomized
    clusters counted as units (a member without a cluster id is a cluster of one), arm
    counts compared within strata with the probabilities recorded at assignment."""
    cluster = CLUSTER_FIELDS.get((campaign.randomization or {}).get("cluster") or "")
    levels = (campaign.randomization or {}).get("saturations") or ()
    if cluster and levels:
        return _saturation_srm(campaign, arms, keys, cluster, levels)
    if cluster:
        alone = literal("participant:").concat(cast(Participant.id, String))
        unit = func.count(
            distinct(func.coalesce(cast(getattr(Participant, cluster), String), alone))
        )
    else:
        unit = func.count(Assignment.id)
    rows = db.session.execute(
        select(
            Assignment.stratum,
            Assignment.arm_id,
            unit,
            func.avg(Assignment.probability),
        )
        .join(Participant, Participant.id == Assignment.participant_id)
        .where(Assignment.campaign_id == campaign.id)
        .group_by(Assignment.stratum, Assignment.arm_id)
    ).all()
    strata = sorted({r[0] or "" for r in rows})
    index = {key: i for i, key in enumerate(keys)}
    counts = np.zeros((max(len(strata), 1), len(keys)))
    recorded = np.full(counts.shape, np.nan)
    for stratum, arm_id, n, p in rows:
        j, a = strata.index(stratum or ""), index.get(arms.get(arm_id, ""))
        if a is not None:
            counts[j, a] += int(n)
            recorded[j, a] = float(p)
    w = np.array([weights.get(k, 0.0) for k in keys])
    if w.sum() <= 0:
        return stratified_srm(
            counts, np.tile(np.ones(len(keys)) / len(keys), (len(counts), 1)), keys
        )
    P, _ = complete_probabilities(recorded, w, strata)
    return stratified_srm(counts, P, keys, unit="clusters" if cluster else "participants")


def _saturation_srm(
    campaign: Campaign, arms: dict[int, str], keys: list[str], cluster: str, levels
) -> SRMResult:
    """A saturation design's test (srm.saturation_srm): clusters per saturation, and
    members offered at their cluster's share (read back from the assignment's stratum)."""
    from nudge_app.services.saturation_assignment import saturation_of_label

    control = next((arm.key for arm in campaign.arms if arm.is_control), keys[0])
    order = [control, *[k for k in keys if k != control]]
    index = {k: i for i, k in enumerate(order)}
    rows = db.session.execute(
        select(Participant.id, getattr(Participant, cluster), Assignment.arm_id, Assignment.stratum)
        .join(Participant, Participant.id == Assignment.participant_id)
        .where(Assignment.campaign_id == campaign.id)
    ).all()
    ids = [str(c).strip() if c is not None and str(c).strip() else f"participant:{pid}"
           for pid, c, _, _ in rows]  # fmt: skip
    import pandas as pd  # only here: the web app starts without pandas

    codes, labels = pd.factorize(pd.Series(ids, dtype=object), sort=True)
    arm = np.array([index.get(arms.get(a, ""), -1) for _, _, a, _ in rows], dtype=np.intp)
    sat = np.array(
        [saturation_of_label(s) if saturation_of_label(s) is not None else np.nan
         for _, _, _, s in rows],
        dtype=float,
    )  # fmt: skip
    return saturation_srm(
        arm, order, codes, sat, levels=[float(x) for x in levels], cluster_labels=list(labels)
    )


def _srm(
    counts: dict[str, int], weights: dict[str, float], result: SRMResult | None = None
) -> SRMStatus:
    """The verdict in words; `result` is the design's test (the pooled Pearson test of
    `counts` against `weights` when none is given)."""
    result = result if result is not None else srm(counts, weights)
    total = sum(counts.values())
    if total < 2 * max(len(weights), 1) or len(weights) < 2:
        return SRMStatus(
            "not_enough_data",
            None,
            "Too few participants assigned yet to check the arm sizes against the design.",
            dict(counts),
        )
    if result.error:
        return SRMStatus("not_enough_data", None, result.message or result.error, dict(counts))
    p = float(result.p_value)
    what = f"the numbers of {result.unit}"
    where = f" within its {result.strata} strata" if result.strata > 1 else ""
    if result.flagged:
        return SRMStatus(
            "mismatch",
            p,
            f"Sample ratio mismatch ({p_text(p)}): {what} in the arms differ from the "
            f"design's probabilities{where} by more than chance. Check the randomization "
            "and delivery before trusting any effect.",
            result.observed,
            result.expected,
        )
    return SRMStatus(
        "ok",
        p,
        f"Arm sizes match the design ({p_text(p)}; {what} compared{where}).",
        result.observed,
        result.expected,
    )
