"""Peer mentoring: the mentor role offered to participants whose baseline answers meet the
campaign's rule, a mentor's agreement and note, their invitation link, the residents it
enrols (`referred_by`), the counts a mentor sees, and stopping.

The referral code in an invitation link is derived from the mentor's nonce and the secret
key and only its SHA-256 is stored, like a participant's token. A link enrols at most the
mentor's `invite_limit` residents, works for the campaign's `link_days` after the mentor
agreed, and stops working when the mentor stops, opts out or withdraws. Mentors see how
many of their invitations were opened and accepted, never who. Where the council chooses
(`introductions`), the platform introduces a mentor to neighbours by message: outbox rows
of kind `introduction`, sent by the scheduler like every message. Functions flush, never
commit: the request is the transaction.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import and_, func, or_, select
from sqlalchemy import update as sql_update

from experiments import eligibility
from experiments.randomization import hash_fraction
from nudge_app import links
from nudge_app.db import utcnow
from nudge_app.errors import DomainError
from nudge_app.extensions import db
from nudge_app.models import Campaign, Event, Mentor, OutboundMessage, Participant
from nudge_app.security import new_nonce, sha256_hex
from nudge_app.services import enrolment, outbox, screening, suppression

NOTE_MAX = 280
DEFAULT_CONSENT_TEXT = (
    "As a mentor you get a personal invitation link to pass on to neighbours. The people "
    "you invite see your note, and your first name if you choose to show it; they never "
    "see your contact details. You see how many invitations were opened and accepted, "
    "never who. The council keeps which mentor invited each resident, for the research "
    "only. You can stop at any time, and your link then stops working."
)
# Why an invitation link does not work (the page says it in words).
UNUSABLE_REASONS = ("unknown", "expired", "full", "stopped", "closed")
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")


class MentoringError(DomainError):
    """A mentoring step that cannot happen; the message says why."""

    http_status = 400
    code = "mentoring_refused"


class NotOffered(MentoringError):
    http_status = 403
    code = "mentor_role_not_offered"


class InvalidNote(MentoringError):
    http_status = 422
    code = "invalid_mentor_note"


class InvitationUnusable(MentoringError):
    """The invitation link cannot enrol anyone: `reason` is one of UNUSABLE_REASONS."""

    http_status = 410
    code = "invitation_unusable"

    def __init__(self, reason: str):
        super().__init__(f"invitation link: {reason}")
        self.reason = reason


@dataclass(frozen=True)
class Settings:
    rules: tuple[eligibility.Rule, ...]
    invite_limit: int
    link_days: int
    consent_text: str
    # Neighbours the platform may introduce each mentor to (0: the council sends none).
    introductions: int = 0


def settings_of(campaign: Campaign) -> Settings | None:
    """The campaign's mentoring settings (None: it offers no mentor role)."""
    m = campaign.mentoring
    if not m:
        return None
    return Settings(
        tuple(eligibility.parse_rule(t) for t in m.get("offer_to", ())),
        int(m.get("invite_limit", 10)),
        int(m.get("link_days", 60)),
        (m.get("consent_text") or "").strip() or DEFAULT_CONSENT_TEXT,
        int(m.get("introductions") or 0),
    )


def _joined(participant: Participant) -> bool:
    key = f"join:{participant.id}"
    return db.session.scalar(select(Event.id).where(Event.idempotency_key == key)) is not None


def is_offered(participant: Participant) -> bool:
    """The mentor role is offered to a joined participant who meets every rule."""
    s = settings_of(participant.campaign)
    if s is None or participant.opted_out_at is not None or participant.erased_at is not None:
        return False
    if participant.consent_status != "given" or participant.assignment is None:
        return False
    # A saturation design offers mentoring only in the offered arm: a mentor in the
    # control arm would reach the pure-control clusters the spillover is measured against.
    if (participant.campaign.randomization or {}).get("saturations") and (
        participant.assignment.arm.is_control
    ):
        return False
    values = screening.values_of(participant, eligibility.needed_variables(s.rules))
    return eligibility.screen(s.rules, values).eligible and _joined(participant)


def mentor_of(participant: Participant) -> Mentor | None:
    return db.session.scalar(select(Mentor).where(Mentor.participant_id == participant.id))


def check_note(note: str | None) -> str:
    text = (note or "").replace("\r\n", "\n").strip()
    if len(text) > NOTE_MAX:
        raise InvalidNote(f"the note is {len(text)} characters; at most {NOTE_MAX}")
    if _CONTROL.search(text):
        raise InvalidNote("the note holds control characters")
    return text


def become_mentor(participant: Participant, note: str | None, show_first_name: bool) -> Mentor:
    """The participant agrees to the mentor consent text: their mentor row and link."""
    enrolment.require_running(participant.campaign)
    text = check_note(note)
    existing = mentor_of(participant)
    if existing is not None:
        if existing.stopped_at is not None:
            raise MentoringError("this mentor has stopped")
        existing.note, existing.show_first_name = text, bool(show_first_name)
        db.session.flush()
        return existing
    if not is_offered(participant):
        raise NotOffered("the mentor role is not offered to this participant")
    s = settings_of(participant.campaign)
    assert s is not None
    nonce = new_nonce()
    now = utcnow()
    mentor = Mentor(
        campaign_id=participant.campaign_id,
        participant_id=participant.id,
        referral_nonce=nonce,
        referral_code_hash=sha256_hex(_code(nonce)),
        note=text,
        show_first_name=bool(show_first_name),
        consent_text_hash=sha256_hex(s.consent_text),
        invite_limit=s.invite_limit,
        expires_at=now + timedelta(days=s.link_days),
        opened=0,
        agreed_at=now,
    )
    db.session.add(mentor)
    db.session.flush()
    return mentor


def _code(nonce: str) -> str:
    return links.referral_code(nonce)


def referral_code(mentor: Mentor) -> str:
    """The code of the mentor's invitation link (derived, never stored)."""
    return _code(mentor.referral_nonce)


def referral_link(mentor: Mentor) -> str:
    return links.referral_link(mentor.referral_nonce)


def mentor_by_code(code: str) -> Mentor | None:
    if not code or len(code) > 100:
        return None
    return db.session.scalar(select(Mentor).where(Mentor.referral_code_hash == sha256_hex(code)))


def accepted(mentor: Mentor) -> int:
    """Residents enrolled through the mentor's link (consented)."""
    return int(
        db.session.scalar(
            select(func.count())
            .select_from(Participant)
            .where(Participant.referred_by == mentor.id, Participant.consent_status == "given")
        )
        or 0
    )


def unusable_reason(mentor: Mentor | None) -> str | None:
    """Why the link cannot enrol anyone now, or None when it can."""
    if mentor is None:
        return "unknown"
    person = mentor.participant
    if mentor.stopped_at is not None or person.opted_out_at or person.erased_at:
        return "stopped"
    if db.session.get(Campaign, mentor.campaign_id).status != "running":
        return "closed"
    if utcnow() >= mentor.expires_at:
        return "expired"
    if accepted(mentor) >= mentor.invite_limit:
        return "full"
    return None


def record_open(mentor: Mentor) -> None:
    """A browser opened the invitation link (counted once per browser by the page)."""
    db.session.execute(
        sql_update(Mentor)
        .where(Mentor.id == mentor.id)
        .values(opened=Mentor.opened + 1)
        .execution_options(synchronize_session=False)
    )


def enrol_referred(
    mentor: Mentor, form_key: str, locale: str | None = None
) -> tuple[Participant, bool]:
    """Enrol the resident who accepted the invitation: the normal open enrolment, with
    `referred_by` recorded; (participant, new). A repeat of the same form is the same
    participant. The mentor hears (through the outbox) that an invitation was accepted."""
    reason = unusable_reason(mentor)
    if reason:
        raise InvitationUnusable(reason)
    campaign = db.session.get(Campaign, mentor.campaign_id)
    participant = enrolment.enrol_open(campaign, form_key, locale=locale)
    if participant.referred_by is not None or participant.id == mentor.participant_id:
        return participant, False
    participant.referred_by = mentor.id
    db.session.flush()
    _tell_mentor(mentor)
    return participant, True


def _tell_mentor(mentor: Mentor) -> None:
    """One 'an invitation was accepted' message to the mentor (counts only, no names)."""
    person = mentor.participant
    if mentor.stopped_at or person.opted_out_at or person.erased_at:
        return
    channel = "email" if person.email else ("sms" if person.phone else None)
    if channel is None:
        return
    now = utcnow()
    db.session.add(
        OutboundMessage(
            campaign_id=mentor.campaign_id,
            participant_id=person.id,
            kind="mentor",
            channel=channel,
            due_at=now,
            expires_at=now + timedelta(days=7),
            status="pending",
            attempts=0,
            fence=0,
            idempotency_key=f"mentor:{mentor.id}:{accepted(mentor)}",
            mentor_id=mentor.id,
        )
    )
    db.session.flush()


def introduced(mentor: Mentor) -> int:
    """Introductions the platform has written for the mentor (sent or still to send)."""
    return int(
        db.session.scalar(
            select(func.count())
            .select_from(OutboundMessage)
            .where(OutboundMessage.mentor_id == mentor.id, OutboundMessage.kind == "introduction")
        )
        or 0
    )


def introductions_left(mentor: Mentor) -> int:
    """How many more neighbours the platform may introduce the mentor to now."""
    s = settings_of(db.session.get(Campaign, mentor.campaign_id))
    if s is None or not s.introductions or unusable_reason(mentor):
        return 0
    return max(0, s.introductions - introduced(mentor))


def introduce(mentor: Mentor) -> int:
    """Introductions the platform sends for the mentor to residents of their neighbourhood
    on the campaign's list: written to the outbox (the scheduler sends them, with the
    council's quiet hours and daily cap), each carrying the mentor's note and invitation
    link. Only residents not yet through the baseline, not opted out, erased or on the
    council's suppression list, with an address; a resident is introduced once by any
    mentor; a mentor at most the campaign's `introductions`. Returns how many were written."""
    left = introductions_left(mentor)
    person = mentor.participant
    area = (person.neighbourhood or "").strip()
    if left <= 0 or not area:
        return 0
    campaign = db.session.get(Campaign, mentor.campaign_id)
    already = select(OutboundMessage.participant_id).where(
        OutboundMessage.campaign_id == campaign.id, OutboundMessage.kind == "introduction"
    )
    candidates = db.session.execute(
        select(Participant.id, Participant.email, Participant.phone).where(
            Participant.campaign_id == campaign.id,
            Participant.neighbourhood == person.neighbourhood,
            Participant.id != person.id,
            Participant.opted_out_at.is_(None),
            Participant.erased_at.is_(None),
            Participant.baseline_completed_at.is_(None),
            Participant.id.not_in(already),
        )
    ).all()
    # Which neighbours: a fixed order drawn from the mentor and the resident, not the list's.
    candidates.sort(key=lambda r: hash_fraction(str(mentor.id), f"introduce:{r.id}"))
    now = utcnow()
    written = 0
    for pid, email, phone in candidates:
        if written >= left:
            break
        channel = "email" if email else ("sms" if phone else None)
        if channel is None or suppression.is_suppressed(campaign.council, email, phone):
            continue
        db.session.add(
            OutboundMessage(
                campaign_id=campaign.id,
                participant_id=pid,
                mentor_id=mentor.id,
                kind="introduction",
                channel=channel,
                due_at=now,
                expires_at=min(mentor.expires_at, now + timedelta(days=14)),
                status="pending",
                attempts=0,
                fence=0,
                idempotency_key=outbox.idempotency_key(campaign.id, "introduction", pid, channel),
            )
        )
        written += 1
    db.session.flush()
    return written


def stop(mentor: Mentor) -> bool:
    """The mentor stops: the link stops working, and no message to them (`mentor`) or for
    them (`introduction`) goes out any more."""
    first = mentor.stopped_at is None
    if first:
        mentor.stopped_at = utcnow()
    now = utcnow()
    db.session.execute(
        sql_update(OutboundMessage)
        .where(
            or_(
                and_(
                    OutboundMessage.participant_id == mentor.participant_id,
                    OutboundMessage.kind == "mentor",
                ),
                OutboundMessage.mentor_id == mentor.id,
            ),
            OutboundMessage.status.in_(outbox.OPEN_STATUSES),
        )
        .values(
            status="cancelled",
            error_kind="mentor_stopped",
            completed_at=now,
            lease_owner=None,
            lease_until=None,
            fence=OutboundMessage.fence + 1,
        )
        .execution_options(synchronize_session=False)
    )
    db.session.flush()
    return first
