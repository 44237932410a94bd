"""The retention run: names and contact details erased once a closed campaign's retention
period has passed, keeping the pseudonymous trial rows so its report stays the same.

A campaign is due `retention_days` after it closed (0: at the first run after closing).
For each of its participants who still has a name, a contact or a reference, the run
puts their email and phone on the council's suppression list (keyed hashes only), then
blanks first name, email, phone and external reference, and clears provider error texts
of their messages (which may quote an address). Arm, stratum, probability, baseline
answers, neighbourhood and cluster, events, survey answers and message statuses stay:
the report reads only those, so it is identical before and after but for its time. The
run is audit-logged with counts, never with anyone's details. `nudge retention run` and
the scheduler's daily tick call `run`; functions flush, never commit.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import or_, select, update

from nudge_app.db import utcnow
from nudge_app.extensions import db
from nudge_app.models import Campaign, OutboundMessage, Participant
from nudge_app.services import audit, suppression

# What a retention run erases (withdrawal also erases the neighbourhood: see enrolment).
ERASED_FIELDS = ("first_name", "email", "phone", "postcode", "external_ref")


@dataclass
class RetentionResult:
    participants: int = 0
    campaigns: list[str] = field(default_factory=list)
    dry_run: bool = False

    def summary(self) -> str:
        verb = "would erase" if self.dry_run else "erased"
        where = f" in {len(self.campaigns)} campaign(s)" if self.campaigns else ""
        return f"retention: {verb} names and contact details of {self.participants} participant(s){where}"


def _holds_personal_data():
    return or_(*(getattr(Participant, name).is_not(None) for name in ERASED_FIELDS))


def due_campaigns(now: datetime) -> list[Campaign]:
    """Closed campaigns past their retention period."""
    closed = db.session.scalars(
        select(Campaign).where(Campaign.status == "closed", Campaign.closed_at.is_not(None))
    )
    return [c for c in closed if c.closed_at + timedelta(days=c.retention_days) <= now]


def run(
    now: datetime | None = None, dry_run: bool = False, actor: str = "system"
) -> RetentionResult:
    """Erase what is due (or, with `dry_run`, count it without changing anything)."""
    now = now or utcnow()
    result = RetentionResult(dry_run=dry_run)
    for campaign in due_campaigns(now):
        people = list(
            db.session.scalars(
                select(Participant).where(
                    Participant.campaign_id == campaign.id, _holds_personal_data()
                )
            )
        )
        if not people:
            continue
        result.participants += len(people)
        result.campaigns.append(campaign.slug)
        if not dry_run:
            _erase(campaign, people, now, actor)
    if not dry_run:
        audit.record(
            council_id=None,
            actor=actor,
            action="retention.run",
            object_type="system",
            after={"erased": result.participants, "campaigns": len(result.campaigns)},
        )
    return result


def _erase(campaign: Campaign, people: list[Participant], now: datetime, actor: str) -> None:
    suppression.suppress_many(campaign.council, [(p.email, p.phone) for p in people], "retention")
    ids = [p.id for p in people]
    for start in range(0, len(ids), 1000):
        chunk = ids[start : start + 1000]
        db.session.execute(
            update(Participant)
            .where(Participant.id.in_(chunk))
            .values(
                **dict.fromkeys(ERASED_FIELDS),
                erased_at=now,
            ),
            execution_options={"synchronize_session": False},
        )
        db.session.execute(
            update(OutboundMessage)
            .where(
                OutboundMessage.participant_id.in_(chunk), OutboundMessage.last_error.is_not(None)
            )
            .values(last_error=None),
            execution_options={"synchronize_session": False},
        )
    for person in people:
        db.session.expire(person)
    audit.record(
        council_id=campaign.council_id,
        actor=actor,
        action="participant.erase",
        object_type="campaign",
        object_id=campaign.id,
        after={
            "erased": len(people),
            "via": "retention",
            "retention_days": campaign.retention_days,
        },
    )
    db.session.flush()
