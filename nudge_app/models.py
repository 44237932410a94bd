"""The whole domain model: councils, staff, campaigns and their arms, participants, the
outbox and the audit trail, as typed SQLAlchemy 2.0 models.

Constraints protect the science: one assignment per participant, unique idempotency keys
for events and messages, unique (campaign, external reference), unique (council, slug).
Personal details live only on `participant` (and in the outbox's rendered fields until
sent); everything else refers to people by id.
"""

from __future__ import annotations

import secrets
from datetime import datetime

from sqlalchemy import (
    Boolean,
    CheckConstraint,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from nudge_app.db import Created, Key, UTCDateTime, utcnow
from nudge_app.extensions import db

ROLES = ("admin", "designer", "evaluator")
CAMPAIGN_STATUSES = ("draft", "running", "paused", "closed")
POLICY_DOMAINS = ("community-safety", "environment", "health", "other")
ENROLMENT_MODES = ("list", "survey-first")
CONSENT_STATUSES = ("pending", "given", "refused")
EVENT_KINDS = (
    "visit",
    "consent",
    "baseline",
    "exposure",
    "click",
    "join",
    "survey",
    "opt_out",
    "erasure",
)
MESSAGE_STATUSES = (
    "pending",
    "leased",
    "sending",
    "sent",
    "delivered",
    "failed",
    "cancelled",
    "expired",
)
MESSAGE_KINDS = ("nudge", "invitation", "reminder", "survey", "mentor", "introduction")
CHANNELS = ("email", "sms")
STEP_KINDS = ("reminder", "survey")
STEP_CONDITIONS = ("always", "not-joined", "not-surveyed")
# How a check-in was recorded: found by name or reference at the door, by the QR code of
# the participant's check-in code, or from an uploaded attendance register.
CHECK_IN_METHODS = ("door", "qr", "register")


def _in(column: str, values: tuple[str, ...]) -> str:
    return f"{column} IN ({', '.join(repr(v) for v in values)})"


class Council(db.Model):
    """A tenant: one local council, its staff and its campaigns."""

    __tablename__ = "council"

    id: Mapped[int] = mapped_column(primary_key=True)
    slug: Mapped[Key] = mapped_column(unique=True)
    name: Mapped[str] = mapped_column(String(200))
    timezone: Mapped[str] = mapped_column(String(64), default="Europe/London")
    locale: Mapped[str] = mapped_column(String(16), default="en")
    # Local wall-clock window in which no message is sent ("HH:MM").
    quiet_start: Mapped[str] = mapped_column(String(5), default="20:00")
    quiet_end: Mapped[str] = mapped_column(String(5), default="08:00")
    # At most this many messages to one person per rolling day.
    daily_message_cap: Mapped[int] = mapped_column(Integer, default=2)
    # Keys the council's suppression list (HMAC of each contact). Kept here, not derived
    # from SECRET_KEY, so rotating that key never re-opens contact with those who left.
    suppression_key: Mapped[str] = mapped_column(String(64), default=lambda: secrets.token_hex(32))
    created_at: Mapped[Created]

    campaigns: Mapped[list[Campaign]] = relationship(back_populates="council")


class StaffUser(db.Model):
    """A council officer who logs into the console.

    An email is unique within a council only: whether another council has a user with the
    same address is none of this council's business (and must not leak from a refusal).
    """

    __tablename__ = "staff_user"
    __table_args__ = (
        UniqueConstraint("council_id", "email"),
        CheckConstraint(_in("role", ROLES), name="role"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    council_id: Mapped[int] = mapped_column(
        ForeignKey("council.id", ondelete="CASCADE"), index=True
    )
    email: Mapped[str] = mapped_column(String(254), index=True)
    password_hash: Mapped[str] = mapped_column(String(255))
    role: Mapped[str] = mapped_column(String(16))
    is_active: Mapped[bool] = mapped_column(Boolean, default=True)
    # Set by an admin's reset: the temporary password only opens the password change page.
    must_change_password: Mapped[bool] = mapped_column(Boolean, default=False)
    password_changed_at: Mapped[datetime | None]
    created_at: Mapped[Created]
    last_login_at: Mapped[datetime | None]

    council: Mapped[Council] = relationship()


class StaffSession(db.Model):
    """A console sign-in, revocable on the server: the cookie carries a random id and only
    its SHA-256 is stored. Ended by sign-out, a password change or reset, a role change or
    deactivation (`ended_at`), or by the idle and absolute timeouts."""

    __tablename__ = "staff_session"

    id: Mapped[int] = mapped_column(primary_key=True)
    staff_id: Mapped[int] = mapped_column(
        ForeignKey("staff_user.id", ondelete="CASCADE"), index=True
    )
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[Created]
    last_seen_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    ended_at: Mapped[datetime | None]
    end_reason: Mapped[str | None] = mapped_column(String(32))


class ApiToken(db.Model):
    """A council's API token; only its SHA-256 hash is stored."""

    __tablename__ = "api_token"

    id: Mapped[int] = mapped_column(primary_key=True)
    council_id: Mapped[int] = mapped_column(
        ForeignKey("council.id", ondelete="CASCADE"), index=True
    )
    name: Mapped[str] = mapped_column(String(100))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    # The first characters of the token, to recognise it in the console.
    prefix: Mapped[str] = mapped_column(String(12))
    created_by_id: Mapped[int | None] = mapped_column(
        ForeignKey("staff_user.id", ondelete="SET NULL")
    )
    created_at: Mapped[Created]
    last_used_at: Mapped[datetime | None]
    revoked_at: Mapped[datetime | None]

    council: Mapped[Council] = relationship()


class LoginThrottle(db.Model):
    """Failed sign-ins for one email or from one client (a keyed hash of either) in the
    window that began with the first of them; one row per key, counted atomically."""

    __tablename__ = "login_throttle"

    key_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    failures: Mapped[int] = mapped_column(Integer, default=0)
    window_start: Mapped[datetime]


class Campaign(db.Model):
    """One randomized experiment run by one council."""

    __tablename__ = "campaign"
    __table_args__ = (
        UniqueConstraint("council_id", "slug"),
        CheckConstraint(_in("status", CAMPAIGN_STATUSES), name="status"),
        CheckConstraint(_in("policy_domain", POLICY_DOMAINS), name="policy_domain"),
        CheckConstraint(_in("enrolment_mode", ENROLMENT_MODES), name="enrolment_mode"),
        CheckConstraint("retention_days >= 0", name="retention_non_negative"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    council_id: Mapped[int] = mapped_column(
        ForeignKey("council.id", ondelete="CASCADE"), index=True
    )
    slug: Mapped[Key]
    name: Mapped[str] = mapped_column(String(200))
    description: Mapped[str] = mapped_column(Text, default="")
    policy_domain: Mapped[str] = mapped_column(String(32))
    activity_name: Mapped[str] = mapped_column(String(200))
    activity_kind: Mapped[str | None] = mapped_column(String(40))  # design.ACTIVITY_KINDS
    activity_description: Mapped[str] = mapped_column(Text, default="")
    activity_where: Mapped[str] = mapped_column(String(500), default="")
    activity_when: Mapped[str] = mapped_column(String(500), default="")
    enrolment_mode: Mapped[str] = mapped_column(String(16))
    language: Mapped[str] = mapped_column(String(8), default="en")
    status: Mapped[str] = mapped_column(String(16), default="draft")
    # experiments.design.Randomization and AnalysisPlan as plain dicts.
    randomization: Mapped[dict]
    analysis_plan: Mapped[dict]
    # experiments.design.Eligibility's rules as written (None: everyone is eligible).
    eligibility: Mapped[list | None]
    # experiments.design.Mentoring as a plain dict (None: no mentor role offered).
    mentoring: Mapped[dict | None]
    planned_sample_size: Mapped[int | None]
    end_date: Mapped[str | None] = mapped_column(String(10))
    # Salt for hashed assignment; public code for the open enrolment link (posters, QR).
    salt: Mapped[str] = mapped_column(String(64))
    open_code: Mapped[str] = mapped_column(String(32), unique=True)
    design_hash: Mapped[str | None] = mapped_column(String(64))
    # Data protection: days names and contacts are kept after the campaign closes, and
    # the UK GDPR Article 6 basis the consent page and the record of processing state.
    retention_days: Mapped[int] = mapped_column(Integer, default=90)
    lawful_basis: Mapped[str] = mapped_column(String(32), default="consent")
    launched_at: Mapped[datetime | None]
    closed_at: Mapped[datetime | None]
    created_at: Mapped[Created]
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)

    council: Mapped[Council] = relationship(back_populates="campaigns")
    arms: Mapped[list[Arm]] = relationship(
        back_populates="campaign", order_by="Arm.position", cascade="all, delete-orphan"
    )
    follow_up_steps: Mapped[list[FollowUpStep]] = relationship(
        back_populates="campaign", order_by="FollowUpStep.position", cascade="all, delete-orphan"
    )

    @property
    def is_frozen(self) -> bool:
        """Launched campaigns keep their design: arms, templates, randomization, plan."""
        return self.launched_at is not None


class Arm(db.Model):
    """One message variant of a campaign; exactly one arm is the control."""

    __tablename__ = "arm"
    __table_args__ = (
        UniqueConstraint("campaign_id", "key"),
        CheckConstraint("weight > 0", name="weight_positive"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    campaign_id: Mapped[int] = mapped_column(
        ForeignKey("campaign.id", ondelete="CASCADE"), index=True
    )
    key: Mapped[str] = mapped_column(String(40))
    name: Mapped[str] = mapped_column(String(200))
    is_control: Mapped[bool] = mapped_column(Boolean, default=False)
    weight: Mapped[float] = mapped_column(Float, default=1.0)
    mechanism: Mapped[str] = mapped_column(Text, default="")
    mechanism_tag: Mapped[str | None] = mapped_column(String(40))  # design.MECHANISM_TAGS
    framing: Mapped[str] = mapped_column(String(500), default="")
    page_template: Mapped[str] = mapped_column(Text, default="")
    email_subject_template: Mapped[str] = mapped_column(String(500), default="")
    email_body_template: Mapped[str] = mapped_column(Text, default="")
    sms_template: Mapped[str] = mapped_column(Text, default="")
    position: Mapped[int] = mapped_column(Integer, default=0)

    campaign: Mapped[Campaign] = relationship(back_populates="arms")


class FollowUpStep(db.Model):
    """A message sent a fixed time after enrolment: a reminder or a survey request."""

    __tablename__ = "follow_up_step"
    __table_args__ = (
        UniqueConstraint("campaign_id", "key"),
        CheckConstraint("offset_hours >= 0", name="offset_non_negative"),
        CheckConstraint(_in("kind", STEP_KINDS), name="kind"),
        CheckConstraint(_in("channel", CHANNELS), name="channel"),
        CheckConstraint(_in("condition", STEP_CONDITIONS), name="condition"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    campaign_id: Mapped[int] = mapped_column(
        ForeignKey("campaign.id", ondelete="CASCADE"), index=True
    )
    key: Mapped[str] = mapped_column(String(40))
    kind: Mapped[str] = mapped_column(String(16))
    offset_hours: Mapped[float] = mapped_column(Float)
    channel: Mapped[str] = mapped_column(String(8), default="email")
    condition: Mapped[str] = mapped_column(String(16), default="always")
    expires_after_hours: Mapped[float] = mapped_column(Float, default=72.0)
    email_subject_template: Mapped[str] = mapped_column(String(500), default="")
    email_body_template: Mapped[str] = mapped_column(Text, default="")
    sms_template: Mapped[str] = mapped_column(Text, default="")
    position: Mapped[int] = mapped_column(Integer, default=0)

    campaign: Mapped[Campaign] = relationship(back_populates="follow_up_steps")


class Participant(db.Model):
    """A resident in one campaign: contact details, baseline covariates, consent, exit.

    The personal link's token is never stored: `access_nonce` and the app's secret key
    derive it, and `access_token_hash` (SHA-256 of the token) finds the participant.
    Erasure blanks the personal fields and keeps the pseudonymous rest.
    """

    __tablename__ = "participant"
    __table_args__ = (
        UniqueConstraint("campaign_id", "external_ref"),
        CheckConstraint(_in("consent_status", CONSENT_STATUSES), name="consent_status"),
        CheckConstraint(
            "self_efficacy IS NULL OR (self_efficacy >= 1 AND self_efficacy <= 5)",
            name="self_efficacy_range",
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    campaign_id: Mapped[int] = mapped_column(
        ForeignKey("campaign.id", ondelete="CASCADE"), index=True
    )
    external_ref: Mapped[str | None] = mapped_column(String(100))
    access_nonce: Mapped[str] = mapped_column(String(64))
    access_token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    # Contact details (personal data; erased on withdrawal).
    first_name: Mapped[str | None] = mapped_column(String(100))
    email: Mapped[str | None] = mapped_column(String(254))
    phone: Mapped[str | None] = mapped_column(String(20))
    locale: Mapped[str | None] = mapped_column(String(16))
    neighbourhood: Mapped[str | None] = mapped_column(String(100))
    # A UK postcode as `SW1A 1AA` (nudge_app.postcodes), when the council's list has one.
    postcode: Mapped[str | None] = mapped_column(String(8))
    # Baseline covariates, measured before randomization.
    age: Mapped[int | None]
    birth_year: Mapped[int | None]
    gender: Mapped[str | None] = mapped_column(String(32))
    se_safety: Mapped[int | None]
    se_environment: Mapped[int | None]
    se_health: Mapped[int | None]
    self_efficacy: Mapped[float | None] = mapped_column(Float)
    individual_coproduction: Mapped[list | None]
    country: Mapped[str | None] = mapped_column(String(32))
    # Answers to registered baseline variables without a column of their own
    # (experiments.baseline; nudge_app.services.answers says which go where).
    baseline: Mapped[dict | None]
    cluster: Mapped[str | None] = mapped_column(String(100), index=True)
    # The mentor whose invitation link brought this resident (mentor.id; no foreign key:
    # mentor rows refer to participants, and the id stays as a pseudonymous record).
    referred_by: Mapped[int | None] = mapped_column(Integer, index=True)
    # Consent and exit.
    consent_status: Mapped[str] = mapped_column(String(16), default="pending")
    consent_basis: Mapped[str | None] = mapped_column(String(64))
    consented_at: Mapped[datetime | None]
    # The consent text the person agreed to (its number and hash).
    consent_version_id: Mapped[int | None] = mapped_column(
        ForeignKey("consent_version.id", ondelete="SET NULL")
    )
    baseline_completed_at: Mapped[datetime | None]
    # Eligibility screening on the baseline answers, before randomization: when it was
    # done, and the first rule the person did not meet (None: eligible). A screened-out
    # resident is never randomized and gets no message.
    screened_at: Mapped[datetime | None]
    screened_out_rule: Mapped[str | None] = mapped_column(String(200))
    opted_out_at: Mapped[datetime | None]
    erased_at: Mapped[datetime | None]
    created_at: Mapped[Created]

    campaign: Mapped[Campaign] = relationship()
    assignment: Mapped[Assignment | None] = relationship(
        back_populates="participant", uselist=False
    )


class Mentor(db.Model):
    """A participant who agreed to invite neighbours (peer mentoring).

    The invitation link's referral code is never stored: `referral_nonce` and the app's
    secret key derive it, and `referral_code_hash` (SHA-256 of the code) finds the mentor,
    as with participants' tokens. `opened` counts browsers that opened the link; accepted
    invitations are the participants whose `referred_by` is this mentor.
    """

    __tablename__ = "mentor"

    id: Mapped[int] = mapped_column(primary_key=True)
    campaign_id: Mapped[int] = mapped_column(
        ForeignKey("campaign.id", ondelete="CASCADE"), index=True
    )
    participant_id: Mapped[int] = mapped_column(
        ForeignKey("participant.id", ondelete="CASCADE"), unique=True
    )
    referral_nonce: Mapped[str] = mapped_column(String(64))
    referral_code_hash: Mapped[str] = mapped_column(String(64), unique=True)
    note: Mapped[str] = mapped_column(Text, default="")
    show_first_name: Mapped[bool] = mapped_column(Boolean, default=False)
    # SHA-256 of the mentor consent text agreed to.
    consent_text_hash: Mapped[str] = mapped_column(String(64))
    invite_limit: Mapped[int] = mapped_column(Integer)
    expires_at: Mapped[datetime]
    opened: Mapped[int] = mapped_column(Integer, default=0)
    agreed_at: Mapped[Created]
    stopped_at: Mapped[datetime | None]

    participant: Mapped[Participant] = relationship()


class ConsentVersion(db.Model):
    """One wording of a campaign's consent page: numbered from 1, with the SHA-256 of its
    text; a changed wording (a live campaign's retention or lawful basis edited, say)
    becomes the next number, and each consent records the one the person read."""

    __tablename__ = "consent_version"
    __table_args__ = (
        UniqueConstraint("campaign_id", "number"),
        UniqueConstraint("campaign_id", "text_hash"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    campaign_id: Mapped[int] = mapped_column(ForeignKey("campaign.id", ondelete="CASCADE"))
    number: Mapped[int] = mapped_column(Integer)
    text_hash: Mapped[str] = mapped_column(String(64))
    text: Mapped[str] = mapped_column(Text)
    created_at: Mapped[Created]


class Suppression(db.Model):
    """A contact who must never be enrolled or messaged again by this council: only an
    HMAC of the normalised email or phone, keyed by the council's suppression key."""

    __tablename__ = "suppression"
    __table_args__ = (UniqueConstraint("council_id", "contact_hash"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    council_id: Mapped[int] = mapped_column(ForeignKey("council.id", ondelete="CASCADE"))
    contact_hash: Mapped[str] = mapped_column(String(64))
    # opt-out, withdrawal or retention: why the contact was suppressed.
    reason: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[Created]


class Assignment(db.Model):
    """A participant's arm; exactly one per participant, never changed once given."""

    __tablename__ = "assignment"
    __table_args__ = (
        CheckConstraint("probability > 0 AND probability <= 1", name="probability_range"),
        Index("ix_assignment_campaign_arm", "campaign_id", "arm_id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    participant_id: Mapped[int] = mapped_column(
        ForeignKey("participant.id", ondelete="CASCADE"), unique=True
    )
    campaign_id: Mapped[int] = mapped_column(ForeignKey("campaign.id", ondelete="CASCADE"))
    arm_id: Mapped[int] = mapped_column(ForeignKey("arm.id", ondelete="RESTRICT"))
    stratum: Mapped[str] = mapped_column(String(200), default="")
    # simple (hashed), blocked (permuted blocks on arrival), complete (batch list), cluster.
    method: Mapped[str] = mapped_column(String(16))
    probability: Mapped[float] = mapped_column(Float)
    slot: Mapped[int | None]
    assigned_at: Mapped[Created]

    participant: Mapped[Participant] = relationship(back_populates="assignment")
    arm: Mapped[Arm] = relationship()


class StratumCounter(db.Model):
    """The next free permuted-block slot of one stratum, taken atomically on enrolment."""

    __tablename__ = "stratum_counter"
    __table_args__ = (UniqueConstraint("campaign_id", "stratum"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    campaign_id: Mapped[int] = mapped_column(ForeignKey("campaign.id", ondelete="CASCADE"))
    stratum: Mapped[str] = mapped_column(String(200))
    next_slot: Mapped[int] = mapped_column(Integer, default=0)


class Event(db.Model):
    """Something a participant did, recorded once: the idempotency key makes repeats no-ops."""

    __tablename__ = "event"
    __table_args__ = (
        CheckConstraint(_in("kind", EVENT_KINDS), name="kind"),
        Index("ix_event_campaign_kind", "campaign_id", "kind"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    campaign_id: Mapped[int] = mapped_column(ForeignKey("campaign.id", ondelete="CASCADE"))
    participant_id: Mapped[int | None] = mapped_column(
        ForeignKey("participant.id", ondelete="CASCADE"), index=True
    )
    kind: Mapped[str] = mapped_column(String(16))
    idempotency_key: Mapped[str] = mapped_column(String(200), unique=True)
    data: Mapped[dict | None]
    occurred_at: Mapped[Created]


class CheckIn(db.Model):
    """Verified attendance: a participant came to one session of the campaign's collective
    activity (the session is its date), recorded by the organiser, once per session."""

    __tablename__ = "check_in"
    __table_args__ = (
        UniqueConstraint("participant_id", "session"),
        CheckConstraint(_in("method", CHECK_IN_METHODS), name="method"),
        Index("ix_check_in_campaign_session", "campaign_id", "session"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    campaign_id: Mapped[int] = mapped_column(ForeignKey("campaign.id", ondelete="CASCADE"))
    participant_id: Mapped[int] = mapped_column(
        ForeignKey("participant.id", ondelete="CASCADE"), index=True
    )
    session: Mapped[str] = mapped_column(String(10))  # ISO date, YYYY-MM-DD
    method: Mapped[str] = mapped_column(String(16))
    recorded_by_id: Mapped[int | None] = mapped_column(
        ForeignKey("staff_user.id", ondelete="SET NULL")
    )
    checked_in_at: Mapped[Created]


class OutboundMessage(db.Model):
    """The outbox: every message to send, the single source of truth for delivery.

    Claimed with a lease (`lease_owner`, `lease_until`) and a fencing token (`fence`,
    incremented at each claim); a completion whose fence changed is refused.
    """

    __tablename__ = "outbound_message"
    __table_args__ = (
        CheckConstraint(_in("status", MESSAGE_STATUSES), name="status"),
        CheckConstraint(_in("channel", CHANNELS), name="channel"),
        CheckConstraint(_in("kind", MESSAGE_KINDS), name="kind"),
        Index("ix_outbound_message_status_due", "status", "due_at"),
        Index("ix_outbound_message_participant", "participant_id", "status"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    # No foreign keys on the outbox: its rows are written set-based from rows already
    # checked (participants, their assignments and arms, the campaign's steps), and the
    # per-row checks cost two thirds of enqueueing a step for a million participants (a
    # PostgreSQL foreign key is a trigger per row that also locks the referenced row).
    # Whoever deletes participants deletes their messages (enrolment.delete_participant),
    # and dispatch cancels a message whose participant is gone.
    campaign_id: Mapped[int] = mapped_column(Integer, index=True)
    participant_id: Mapped[int] = mapped_column(Integer)
    # The arm is fixed on the row, so a retry never re-randomizes.
    arm_id: Mapped[int | None] = mapped_column(Integer)
    step_id: Mapped[int | None] = mapped_column(Integer)
    # Peer mentoring: the mentor a message is about (`mentor`: to them) or sent for
    # (`introduction`: to a neighbour); a stopped mentor's messages are not sent.
    mentor_id: Mapped[int | None] = mapped_column(Integer, index=True)
    kind: Mapped[str] = mapped_column(String(16))
    channel: Mapped[str] = mapped_column(String(8))
    due_at: Mapped[datetime]
    expires_at: Mapped[datetime | None]
    status: Mapped[str] = mapped_column(String(16), default="pending")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    lease_owner: Mapped[str | None] = mapped_column(String(100))
    lease_until: Mapped[datetime | None]
    fence: Mapped[int] = mapped_column(Integer, default=0)
    # Our reference at the provider: "nudge-<id>", never personal data.
    provider_reference: Mapped[str | None] = mapped_column(String(100))
    provider_message_id: Mapped[str | None] = mapped_column(String(200))
    # The channel that was handed the message (file, smtp, notify, ...), asked on lookups.
    provider: Mapped[str | None] = mapped_column(String(16))
    idempotency_key: Mapped[str] = mapped_column(String(200), unique=True)
    last_error: Mapped[str | None] = mapped_column(Text)
    error_kind: Mapped[str | None] = mapped_column(String(16))
    sent_at: Mapped[datetime | None]
    delivered_at: Mapped[datetime | None]
    completed_at: Mapped[datetime | None]
    created_at: Mapped[Created]


class SurveyResponse(db.Model):
    """A participant's answers to the baseline or the follow-up survey (one of each)."""

    __tablename__ = "survey_response"
    __table_args__ = (
        UniqueConstraint("participant_id", "kind"),
        CheckConstraint(_in("kind", ("baseline", "follow_up")), name="kind"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    campaign_id: Mapped[int] = mapped_column(
        ForeignKey("campaign.id", ondelete="CASCADE"), index=True
    )
    participant_id: Mapped[int] = mapped_column(ForeignKey("participant.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(String(16))
    answers: Mapped[dict]
    # Follow-up outcomes: took part in a community activity since; self-efficacy again.
    participated: Mapped[bool | None]
    self_efficacy: Mapped[float | None] = mapped_column(Float)
    submitted_at: Mapped[Created]


class AuditEntry(db.Model):
    """Who changed what, when, with the state before and after."""

    __tablename__ = "audit_entry"
    __table_args__ = (Index("ix_audit_entry_council_at", "council_id", "at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    council_id: Mapped[int | None] = mapped_column(ForeignKey("council.id", ondelete="CASCADE"))
    actor_id: Mapped[int | None] = mapped_column(ForeignKey("staff_user.id", ondelete="SET NULL"))
    # "user:<id>", "token:<id>", "cli", "system", "participant:<id>".
    actor: Mapped[str] = mapped_column(String(100))
    action: Mapped[str] = mapped_column(String(64))
    object_type: Mapped[str] = mapped_column(String(32))
    object_id: Mapped[str | None] = mapped_column(String(64))
    before: Mapped[dict | None]
    after: Mapped[dict | None]
    at: Mapped[Created]


class SchedulerLease(db.Model):
    """A named lease held by a running scheduler process (SQLite allows only one)."""

    __tablename__ = "scheduler_lease"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    owner: Mapped[str] = mapped_column(String(100))
    lease_until: Mapped[datetime]


class SchedulerHeartbeat(db.Model):
    """The last sign of life of each scheduler process (or `--once` round, or dispatch
    worker): the console warns when none is recent, and /healthz and /metrics report
    the lag."""

    __tablename__ = "scheduler_heartbeat"

    worker: Mapped[str] = mapped_column(String(100), primary_key=True)
    # scheduler (the process), once (`nudge scheduler --once`), worker (dispatch only)
    role: Mapped[str] = mapped_column(String(16))
    started_at: Mapped[datetime]
    beat_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    # How far behind their schedule its jobs were running at the last beat (seconds).
    lag_seconds: Mapped[float] = mapped_column(Float, default=0.0)


EVIDENCE_SOURCES = ("own", "imported")


class EvidenceImport(db.Model):
    """A results pack another council shared, as this council imported it (once: the
    pack's digest is unique per council)."""

    __tablename__ = "evidence_import"
    __table_args__ = (UniqueConstraint("council_id", "digest"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    council_id: Mapped[int] = mapped_column(ForeignKey("council.id", ondelete="CASCADE"))
    digest: Mapped[str] = mapped_column(String(64))  # SHA-256 of the pack's canonical JSON
    exported: Mapped[str] = mapped_column(String(7))  # YYYY-MM, as the pack says
    label: Mapped[str] = mapped_column(String(200), default="")  # e.g. the file's name
    actor: Mapped[str] = mapped_column(String(100))
    imported_at: Mapped[Created]


class EvidenceCampaign(db.Model):
    """One campaign's results in a council's evidence library: its own closed campaign
    (`source` own, `campaign_id` set) or one from an imported pack. De-identified as a
    results pack is: no names, texts or days; counts by band."""

    __tablename__ = "evidence_campaign"
    __table_args__ = (
        CheckConstraint(_in("source", EVIDENCE_SOURCES), name="source"),
        UniqueConstraint("campaign_id"),
        Index("ix_evidence_campaign_council", "council_id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    council_id: Mapped[int] = mapped_column(ForeignKey("council.id", ondelete="CASCADE"))
    source: Mapped[str] = mapped_column(String(16))
    campaign_id: Mapped[int | None] = mapped_column(ForeignKey("campaign.id", ondelete="SET NULL"))
    evidence_import_id: Mapped[int | None] = mapped_column(
        ForeignKey("evidence_import.id", ondelete="CASCADE"), index=True
    )
    policy_domain: Mapped[str] = mapped_column(String(32))
    activity_kind: Mapped[str | None] = mapped_column(String(40))
    started: Mapped[str] = mapped_column(String(7))  # YYYY-MM
    closed: Mapped[str] = mapped_column(String(7))
    bands: Mapped[dict]  # moderator -> band labels, lowest first
    recorded_at: Mapped[Created]

    arms: Mapped[list[EvidenceArm]] = relationship(
        back_populates="evidence_campaign",
        cascade="all, delete-orphan",
        order_by="EvidenceArm.position",
    )


class EvidenceArm(db.Model):
    """One arm of a library campaign: its mechanism tag, the primary outcome, its effect
    against control with the standard error (null for the control arm), the number
    analysed and the counts by age and self-efficacy band (null: suppressed)."""

    __tablename__ = "evidence_arm"

    id: Mapped[int] = mapped_column(primary_key=True)
    evidence_campaign_id: Mapped[int] = mapped_column(
        ForeignKey("evidence_campaign.id", ondelete="CASCADE"), index=True
    )
    position: Mapped[int] = mapped_column(Integer)
    mechanism: Mapped[str] = mapped_column(String(40))  # design.MECHANISM_TAGS
    control: Mapped[bool] = mapped_column(Boolean)
    outcome: Mapped[str] = mapped_column(String(60))
    effect: Mapped[float | None] = mapped_column(Float)
    std_error: Mapped[float | None] = mapped_column(Float)
    n: Mapped[int] = mapped_column(Integer)
    population: Mapped[dict]  # moderator -> band -> count

    evidence_campaign: Mapped[EvidenceCampaign] = relationship(back_populates="arms")
