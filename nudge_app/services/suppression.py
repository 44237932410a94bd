"""The council's suppression list: contacts never to be enrolled or messaged again.

A person who opts out, refuses consent or withdraws, and everyone whose details a
retention run erases, leaves only keyed hashes of their email and phone here (HMAC-SHA256
with the council's own suppression key), never the contact itself. The list covers every
campaign of the council: a CSV import skips (and counts) suppressed people, API enrolment
refuses them, and an opt-out or withdrawal also stops the messages of the same contact in
the council's other campaigns. Functions flush, never commit.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterable

from sqlalchemy import func, or_, select

from nudge_app.db import PerDialect, dialect_insert, utcnow
from nudge_app.errors import DomainError
from nudge_app.extensions import db
from nudge_app.models import Campaign, Council, Participant, Suppression
from nudge_app.phones import lookup_form

REASONS = ("opt-out", "withdrawal", "retention")


class UnknownReason(DomainError):
    """A suppression reason outside REASONS (the column holds only these)."""

    code = "invalid_suppression_reason"


def normalise(kind: str, value: str | None) -> str | None:
    """The form of a contact that is hashed: a lower-case email, a phone in E.164 form."""
    value = (value or "").strip()
    if not value:
        return None
    if kind == "email":
        return value.lower()
    return lookup_form(value)


def contact_hash(key: str, kind: str, value: str | None) -> str | None:
    normal = normalise(kind, value)
    if normal is None:
        return None
    return hmac.new(key.encode(), f"{kind}:{normal}".encode(), hashlib.sha256).hexdigest()


def hashes_of(council: Council, email: str | None, phone: str | None) -> list[str]:
    """The keyed hashes of a person's email and phone (those they have)."""
    found = (
        contact_hash(council.suppression_key, "email", email),
        contact_hash(council.suppression_key, "phone", phone),
    )
    return [h for h in found if h is not None]


_INSERT = PerDialect(
    lambda dialect: dialect_insert(Suppression.__table__, dialect).on_conflict_do_nothing(
        index_elements=["council_id", "contact_hash"]
    )
)


def suppress_many(
    council: Council, contacts: Iterable[tuple[str | None, str | None]], reason: str
) -> int:
    """Add (email, phone) pairs to the council's list; returns how many hashes were given.

    `reason` must be one of REASONS: checked here, before anything is written, because
    SQLite would store any text and PostgreSQL refuses what is longer than the column."""
    if reason not in REASONS:
        raise UnknownReason(
            f"reason {reason!r}: must be one of {', '.join(REASONS)}", field="reason"
        )
    rows = [
        {"council_id": council.id, "contact_hash": h, "reason": reason, "created_at": utcnow()}
        for email, phone in contacts
        for h in hashes_of(council, email, phone)
    ]
    for start in range(0, len(rows), 1000):
        db.session.execute(_INSERT(db.session), rows[start : start + 1000])
    return len(rows)


def suppress(participant: Participant, reason: str) -> None:
    council = participant.campaign.council
    suppress_many(council, [(participant.email, participant.phone)], reason)


def suppressed_hashes(council: Council) -> set[str]:
    return set(
        db.session.scalars(
            select(Suppression.contact_hash).where(Suppression.council_id == council.id)
        )
    )


def is_suppressed(council: Council, email: str | None, phone: str | None) -> bool:
    hashes = hashes_of(council, email, phone)
    return bool(hashes) and (
        db.session.scalar(
            select(func.count(Suppression.id)).where(
                Suppression.council_id == council.id, Suppression.contact_hash.in_(hashes)
            )
        )
        > 0
    )


def same_contact_elsewhere(participant: Participant) -> list[Participant]:
    """The council's other participants (any campaign) with the same email or phone."""
    conditions = []
    if participant.email:
        conditions.append(func.lower(Participant.email) == normalise("email", participant.email))
    if participant.phone:
        conditions.append(Participant.phone == participant.phone)
    if not conditions:
        return []
    return list(
        db.session.scalars(
            select(Participant)
            .join(Campaign, Campaign.id == Participant.campaign_id)
            .where(
                Campaign.council_id == participant.campaign.council_id,
                Participant.id != participant.id,
                Participant.opted_out_at.is_(None),
                or_(*conditions),
            )
        )
    )
