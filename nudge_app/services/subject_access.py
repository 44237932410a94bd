"""Subject access (UK GDPR Article 15): everything one council holds about one person.

The person is found by their email address or phone number across all the council's
campaigns, never another council's. The document lists, per campaign they are in, their
contact details and references, consent (status, lawful basis, time and the version of
the text they read), baseline answers, arm and stratum, survey answers, the messages
sent to them and the events recorded; and whether their contact is on the council's
suppression list. After erasure nothing in it names them: their rows no longer carry
the contact, so none are found. Every request is audit-logged (counts only).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import func, or_, select

from nudge_app.db import utcnow
from nudge_app.extensions import db
from nudge_app.models import (
    Arm,
    Assignment,
    Campaign,
    ConsentVersion,
    Council,
    Event,
    OutboundMessage,
    Participant,
    SurveyResponse,
)
from nudge_app.services import audit, suppression

PARTICIPANT_FIELDS = (
    "external_ref",
    "first_name",
    "email",
    "phone",
    "postcode",
    "locale",
    "neighbourhood",
    "age",
    "birth_year",
    "gender",
    "se_safety",
    "se_environment",
    "se_health",
    "self_efficacy",
    "individual_coproduction",
    "country",
    "cluster",
    "baseline_completed_at",
    # The eligibility screening on those answers: when, and the rule not met (if any).
    "screened_at",
    "screened_out_rule",
    "opted_out_at",
    "erased_at",
    "created_at",
)


def _plain(value: Any) -> Any:
    return value.isoformat() if isinstance(value, datetime) else value


def find_people(council: Council, contact: str) -> list[Participant]:
    """The council's participants whose email or phone is `contact`."""
    contact = (contact or "").strip()
    if not contact:
        return []
    email = suppression.normalise("email", contact)
    phone = suppression.normalise("phone", contact)
    return list(
        db.session.scalars(
            select(Participant)
            .join(Campaign, Campaign.id == Participant.campaign_id)
            .where(
                Campaign.council_id == council.id,
                or_(func.lower(Participant.email) == email, Participant.phone == phone),
            )
            .order_by(Participant.id)
        )
    )


def document(council: Council, contact: str, actor: str, actor_id: int | None = None) -> dict:
    """The subject-access document (plain JSON values) for `contact`; audit-logged."""
    people = find_people(council, contact)
    records = [_record(p) for p in people]
    audit.record(
        council_id=council.id,
        actor=actor,
        actor_id=actor_id,
        action="subject_access",
        object_type="council",
        object_id=council.id,
        after={"records": len(records)},
    )
    email, phone = (contact, None) if "@" in contact else (None, contact)
    return {
        "council": {"slug": council.slug, "name": council.name},
        "contact": contact.strip(),
        "generated_at": utcnow().isoformat(),
        "on_suppression_list": suppression.is_suppressed(council, email, phone),
        "records": records,
    }


def _record(p: Participant) -> dict:
    campaign = p.campaign
    version = db.session.get(ConsentVersion, p.consent_version_id) if p.consent_version_id else None
    assignment = db.session.scalar(select(Assignment).where(Assignment.participant_id == p.id))
    arm = db.session.get(Arm, assignment.arm_id) if assignment is not None else None
    return {
        "campaign": {
            "slug": campaign.slug,
            "name": campaign.name,
            "status": campaign.status,
            "closed_at": _plain(campaign.closed_at),
            "retention_days": campaign.retention_days,
            "lawful_basis": campaign.lawful_basis,
        },
        "participant": {name: _plain(getattr(p, name)) for name in PARTICIPANT_FIELDS},
        "consent": {
            "status": p.consent_status,
            "basis": p.consent_basis,
            "at": _plain(p.consented_at),
            "version": None
            if version is None
            else {"number": version.number, "hash": version.text_hash, "text": version.text},
        },
        "assignment": None
        if assignment is None
        else {
            "arm": arm.key,
            "arm_name": arm.name,
            "stratum": assignment.stratum,
            "probability": assignment.probability,
            "assigned_at": _plain(assignment.assigned_at),
        },
        "answers": [
            {
                "kind": r.kind,
                "submitted_at": _plain(r.submitted_at),
                "answers": r.answers,
                "participated": r.participated,
                "self_efficacy": r.self_efficacy,
            }
            for r in db.session.scalars(
                select(SurveyResponse)
                .where(SurveyResponse.participant_id == p.id)
                .order_by(SurveyResponse.id)
            )
        ],
        "messages": [
            {
                "kind": m.kind,
                "channel": m.channel,
                "status": m.status,
                "due_at": _plain(m.due_at),
                "sent_at": _plain(m.sent_at),
                "delivered_at": _plain(m.delivered_at),
            }
            for m in db.session.scalars(
                select(OutboundMessage)
                .where(OutboundMessage.participant_id == p.id)
                .order_by(OutboundMessage.id)
            )
        ],
        "events": [
            {"kind": e.kind, "at": _plain(e.occurred_at), "data": e.data}
            for e in db.session.scalars(
                select(Event).where(Event.participant_id == p.id).order_by(Event.id)
            )
        ],
    }
