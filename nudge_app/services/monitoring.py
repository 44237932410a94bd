"""Live monitoring figures of a campaign: enrolment by day, arm and stratum, the sample ratio
check, the outbox's messages by status and joins per arm (counts only; effects belong on
the report page).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from datetime import date

from sqlalchemy import distinct, func, select

from experiments.diagnostics import srm
from nudge_app.extensions import db
from nudge_app.models import Assignment, Campaign, Event, OutboundMessage, Participant

SCHEDULED = ("pending", "leased")
SENT = ("sending", "sent", "delivered")
FAILED = ("failed", "expired")


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

    def to_dict(self) -> dict:
        data = asdict(self)
        if data["srm"]["p_value"] is not None and math.isnan(data["srm"]["p_value"]):
            data["srm"]["p_value"] = None
        return data


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
    srm_status = _srm(by_arm, weights)
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
        by_stratum=dict(sorted(by_stratum.items())),
        srm=srm_status,
        messages=messages,
        messages_by_status=by_status,
        joins_by_arm=joins,
    )


def _srm(counts: dict[str, int], weights: dict[str, float]) -> SRMStatus:
    total = sum(counts.values())
    if total < 2 * max(len(weights), 1) or len(weights) < 2:
        return SRMStatus(
            "not_enough_data",
            None,
            "Too few participants assigned yet to check the arm sizes against the design.",
            dict(counts),
        )
    result = srm(counts, weights)
    if result.error:
        return SRMStatus("not_enough_data", None, result.message or result.error, dict(counts))
    p = float(result.p_value)
    if result.flagged:
        return SRMStatus(
            "mismatch",
            p,
            f"Sample ratio mismatch (p = {p:.2g}): the arm sizes differ from the design "
            "by more than chance. Check the randomization and delivery before trusting "
            "any effect.",
            result.observed,
            result.expected,
        )
    return SRMStatus(
        "ok",
        p,
        f"Arm sizes match the design (p = {p:.2g}).",
        result.observed,
        result.expected,
    )
