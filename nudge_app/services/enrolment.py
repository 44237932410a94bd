"""A participant's journey as database writes: open enrolment, consent, baseline, exposure,
join, follow-up survey, opt-out, erasure and full deletion, each recorded exactly once.

Every once-only event carries an idempotency key (`"join:<participant id>"`) and is
inserted with INSERT ... ON CONFLICT DO NOTHING, so a double click, a retry or fifty
simultaneous requests leave one row. Writes that read before they write (the baseline,
the open enrolment) lock the participant row first on PostgreSQL; SQLite already holds
its one write lock from the first statement (BEGIN IMMEDIATE). Functions flush, never
commit: the request is the transaction.
"""

from __future__ import annotations

import secrets
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from types import SimpleNamespace
from typing import Any

from flask import current_app
from sqlalchemy import and_, delete, exists, literal_column, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import joinedload

from experiments import baseline as registry
from nudge_app.db import PerDialect, begin_write, dialect_insert, single_writer, utcnow
from nudge_app.errors import DomainError
from nudge_app.extensions import db
from nudge_app.models import (
    Assignment,
    AuditEntry,
    Campaign,
    Event,
    OutboundMessage,
    Participant,
    SurveyResponse,
)
from nudge_app.security import new_nonce, participant_token, sha256_hex
from nudge_app.services import answers as kept_answers
from nudge_app.services import consent, outbox, screening
from nudge_app.services.assignment import CampaignNotRunning, assign

CONTACT_PREFERENCES = ("email", "phone", "none")


class EnrolmentError(DomainError):
    """A journey step that cannot happen now; the message says why."""

    http_status = 400
    code = "enrolment_refused"


class CampaignNotOpen(EnrolmentError):
    """The campaign is not running (draft, paused or closed): nothing is recorded."""

    http_status = 409
    code = "campaign_not_open"

    def __init__(self, campaign: Campaign):
        super().__init__(f"campaign {campaign.slug!r} is {campaign.status}")
        self.status = campaign.status


class StepOutOfOrder(EnrolmentError):
    """A step was asked for before the one it depends on (e.g. baseline before consent)."""

    http_status = 409
    code = "step_out_of_order"


class InvalidAnswers(EnrolmentError):
    """Answers outside their allowed values; `errors` maps each field to its problem."""

    http_status = 422
    code = "invalid_answers"

    def __init__(self, errors: dict[str, str]):
        super().__init__(
            "; ".join(f"{k}: {v}" for k, v in errors.items()),
            field=next(iter(errors), None),
            details={"fields": errors},
        )
        self.errors = errors


# --- finding people ---------------------------------------------------------------------


def token_of(participant: Participant) -> str:
    """The participant's personal-link token (derived, never stored)."""
    return participant_token(current_app.config["SECRET_KEY"], participant.access_nonce)


ONCE_KINDS = ("visit", "exposure", "join", "survey")


def _by_token_statement():
    from sqlalchemy import bindparam

    return (
        select(Participant)
        .where(Participant.access_token_hash == bindparam("hash"))
        .options(
            joinedload(Participant.campaign).joinedload(Campaign.council),
            joinedload(Participant.assignment).joinedload(Assignment.arm),
        )
    )


# Built once: SQLAlchemy then finds its compiled form without rebuilding the statement
# or its cache key on every page (the token's hash is the only parameter).
_BY_TOKEN = _by_token_statement()


def participant_by_token(token: str) -> Participant | None:
    """The participant whose personal link carries `token`, or None (unknown or withdrawn).

    Campaign, council, assignment and arm come in the same round trip: a page needs them.
    """
    if not token or len(token) > 100:
        return None
    participant = db.session.scalar(_BY_TOKEN, {"hash": sha256_hex(token)})
    if participant is None or participant.erased_at is not None:
        return None
    return participant


def quick_state(token: str):
    """One Core row with what decides a revisit of the nudge page, or None if unknown.

    Columns: id, campaign_id, locale, first_name, neighbourhood, has_email,
    consent_status, baseline_done, opted_out, erased, screened_out, campaign_status,
    campaign_language, campaign_updated_at, council_name, arm_id, and has_<kind> for each
    once-only kind.
    """
    if not token or len(token) > 100:
        return None
    params = {"hash": sha256_hex(token)}
    engine = current_app.extensions.get("nudge_read_engine")
    if engine is None:
        connection = db.session.connection()
        if connection.dialect.name != "sqlite":
            return db.session.execute(_QUICK, params).first()
        # SQLite: the compiled statement straight on the session's connection (its one
        # parameter is the hash), without building an ORM result for one row.
        row = connection.connection.dbapi_connection.execute(
            _quick_sql(connection.engine), (params["hash"],)
        ).fetchone()
        return _quick_row(row)
    # One autocommit statement, compiled once, on a connection that is not pinged first:
    # one round trip. A connection dropped since its last use fails once and is
    # discarded by SQLAlchemy; the retry gets a fresh one.
    sql = _quick_sql(engine)
    for attempt in (1, 2):
        conn = engine.raw_connection()
        try:
            with conn.cursor() as cursor:
                cursor.execute(sql, params)
                row = cursor.fetchone()
        except engine.dialect.loaded_dbapi.OperationalError:
            conn.invalidate()
            if attempt == 2:
                raise
            continue
        finally:
            conn.close()
        return _quick_row(row)
    return None


def _quick_row(row) -> SimpleNamespace | None:
    return None if row is None else SimpleNamespace(**dict(zip(_QUICK_NAMES, row, strict=True)))


_compiled: dict[str, str] = {}


def _quick_sql(engine) -> str:
    sql = _compiled.get(engine.dialect.name)
    if sql is None:
        sql = _compiled[engine.dialect.name] = str(_QUICK.compile(dialect=engine.dialect))
    return sql


def _quick_statement():
    from sqlalchemy import bindparam

    from nudge_app.models import Council

    def recorded(kind: str):
        # Literal kinds: the statement is compiled once, with one parameter (the hash).
        return (
            exists()
            .where(
                Event.participant_id == Participant.id,
                Event.kind == literal_column(f"'{kind}'"),
            )
            .label(f"has_{kind}")
        )

    return (
        select(
            Participant.id,
            Participant.campaign_id,
            Participant.locale,
            Participant.first_name,
            Participant.neighbourhood,
            Participant.email.is_not(None).label("has_email"),
            Participant.consent_status,
            Participant.baseline_completed_at.is_not(None).label("baseline_done"),
            Participant.opted_out_at.is_not(None).label("opted_out"),
            Participant.erased_at.is_not(None).label("erased"),
            and_(
                Participant.screened_at.is_not(None), Participant.screened_out_rule.is_not(None)
            ).label("screened_out"),
            Campaign.status.label("campaign_status"),
            Campaign.language.label("campaign_language"),
            Campaign.updated_at.label("campaign_updated_at"),
            Council.name.label("council_name"),
            Assignment.arm_id,
            *(recorded(kind) for kind in ONCE_KINDS),
        )
        .join(Campaign, Campaign.id == Participant.campaign_id)
        .join(Council, Council.id == Campaign.council_id)
        .outerjoin(Assignment, Assignment.participant_id == Participant.id)
        .where(Participant.access_token_hash == bindparam("hash"))
    )


_QUICK = _quick_statement()
_QUICK_NAMES = [column.name for column in _QUICK.selected_columns]


def campaign_by_open_code(code: str) -> Campaign | None:
    if not code or len(code) > 32:
        return None
    return db.session.scalar(select(Campaign).where(Campaign.open_code == code))


def lock(participant: Participant) -> Participant:
    """Re-read the participant with a row lock, so read-then-write is safe.

    PostgreSQL: `SELECT ... FOR UPDATE`. SQLite: the transaction takes the single write
    lock (`begin_write`) and re-reads the row only if it took the lock just now: a
    transaction that already held it has read the current row.
    """
    if single_writer(db.session):
        if not begin_write(db.session):
            return participant
        return db.session.scalars(
            select(Participant)
            .where(Participant.id == participant.id)
            .execution_options(populate_existing=True)
        ).one()
    return db.session.scalars(
        select(Participant)
        .where(Participant.id == participant.id)
        .with_for_update()
        .execution_options(populate_existing=True)
    ).one()


def new_participant(campaign: Campaign, **fields: Any) -> Participant:
    """A participant with a fresh personal-link nonce; only the token's hash is stored."""
    nonce = new_nonce()
    token = participant_token(current_app.config["SECRET_KEY"], nonce)
    participant = Participant(
        campaign_id=campaign.id,
        access_nonce=nonce,
        access_token_hash=sha256_hex(token),
        **fields,
    )
    db.session.add(participant)
    db.session.flush()
    return participant


# --- events -----------------------------------------------------------------------------


# INSERT ... ON CONFLICT (idempotency_key) DO NOTHING RETURNING id.
_EVENT_INSERT = PerDialect(
    lambda dialect: (
        dialect_insert(Event.__table__, dialect)
        .on_conflict_do_nothing(index_elements=["idempotency_key"])
        .returning(Event.__table__.c.id)
    )
)


def record_event(
    campaign_id: int,
    participant_id: int | None,
    kind: str,
    key: str,
    data: dict | None = None,
) -> bool:
    """Insert an event unless one with `key` exists; True when this call inserted it."""
    row = {
        "campaign_id": campaign_id,
        "participant_id": participant_id,
        "kind": kind,
        "idempotency_key": key,
        "data": data,
        "occurred_at": utcnow(),
    }
    return db.session.execute(_EVENT_INSERT(db.session), row).scalar() is not None


def once(participant: Participant, kind: str, data: dict | None = None) -> bool:
    """Record the participant's once-only event of this kind (`kind:<id>`)."""
    return record_event(
        participant.campaign_id, participant.id, kind, f"{kind}:{participant.id}", data
    )


def record_visit(campaign: Campaign, participant: Participant | None = None) -> bool:
    """The first visit of a person's link; an open-link visit is counted without a person."""
    if participant is not None:
        return once(participant, "visit")
    return record_event(
        campaign.id, None, "visit", f"visit:open:{campaign.id}:{secrets.token_hex(8)}"
    )


def record_visit_of(campaign_id: int, participant_id: int) -> bool:
    """`record_visit` of a person known by ids alone (a page answered from `quick_state`)."""
    return record_event(campaign_id, participant_id, "visit", f"visit:{participant_id}")


# --- consent and open enrolment -----------------------------------------------------------


def require_running(campaign: Campaign) -> None:
    if campaign.status != "running":
        raise CampaignNotOpen(campaign)


def give_consent(participant: Participant, locale: str | None = None) -> bool:
    """Record consent (once); True when it was given now. Refused by a paused campaign.

    `locale` is the language the person read the consent page in (kept for messages).
    """
    require_running(participant.campaign)
    participant = lock(participant)
    if participant.opted_out_at is not None:
        raise StepOutOfOrder("this person has opted out")
    if participant.consent_status == "given":
        if locale:
            participant.locale = locale
        return False
    version = consent.current_version(participant.campaign)
    # Set after the version's reads, which would flush it as an UPDATE of its own.
    if locale:
        participant.locale = locale
    participant.consent_status = "given"
    participant.consent_basis = participant.campaign.lawful_basis
    participant.consented_at = utcnow()
    participant.consent_version_id = version.id
    once(participant, "consent", {"basis": participant.consent_basis, "version": version.number})
    db.session.flush()
    return True


def refuse_consent(participant: Participant) -> None:
    """A listed person says no: record the refusal and stop every message to them."""
    participant = lock(participant)
    if participant.consent_status == "given":
        raise StepOutOfOrder("consent was already given: use opt-out or withdrawal")
    participant.consent_status = "refused"
    opt_out(participant, via="consent-refused")


def enrol_open(campaign: Campaign, form_key: str, locale: str | None = None) -> Participant:
    """Create a participant from the open link once they consent; repeat calls with the same
    `form_key` (a double click, a retry) return the same participant."""
    require_running(campaign)
    if not form_key or len(form_key) > 64:
        raise EnrolmentError("missing enrolment form key")
    key = f"consent:open:{campaign.id}:{form_key}"
    existing = _participant_of_event(key)
    if existing is not None:
        return existing
    try:
        version = consent.current_version(campaign)
        with db.session.begin_nested():
            now = utcnow()
            participant = new_participant(
                campaign,
                locale=locale,
                consent_status="given",
                consent_basis=campaign.lawful_basis,
                consented_at=now,
                consent_version_id=version.id,
            )
            db.session.add(
                Event(
                    campaign_id=campaign.id,
                    participant_id=participant.id,
                    kind="consent",
                    idempotency_key=key,
                    data={
                        "basis": campaign.lawful_basis,
                        "via": "open-link",
                        "version": version.number,
                    },
                )
            )
            db.session.flush()
    except IntegrityError:
        # Another request with the same form key won the race: use its participant.
        existing = _participant_of_event(key)
        if existing is None:
            raise
        return existing
    once(participant, "visit")
    return participant


def _participant_of_event(key: str) -> Participant | None:
    pid = db.session.scalar(select(Event.participant_id).where(Event.idempotency_key == key))
    return db.session.get(Participant, pid) if pid is not None else None


# --- baseline ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Baseline:
    """Checked answers to baseline questions, as the fields to keep (experiments.baseline:
    an age may have come as a year of birth, a score carries its mean)."""

    fields: dict[str, Any]


def check_answers(
    variables: Sequence[registry.BaselineVariable],
    answers: Mapping[str, Any],
    today: datetime | None = None,
    required: Sequence[str] = (),
) -> dict[str, Any]:
    """The fields of these variables' answers; InvalidAnswers names every bad field.

    `required` names optional variables that must be answered all the same (those the
    campaign's eligibility rules read)."""
    year = (today or utcnow()).year
    errors: dict[str, str] = {}
    fields: dict[str, Any] = {}
    for variable in variables:
        reading = variable.read(answers, year)
        errors.update(reading.problems)
        if (variable.required or variable.name in required) and not reading.problems:
            errors.update(variable.missing(reading.fields))
        fields.update(reading.fields)
    if errors:
        raise InvalidAnswers(errors)
    return fields


def check_baseline(
    answers: Mapping[str, Any],
    today: datetime | None = None,
    variables: Sequence[registry.BaselineVariable] | None = None,
    required: Sequence[str] = (),
) -> Baseline:
    """Raw form answers to the baseline page (or to `variables`, the questions asked);
    `required`: optional questions the campaign's eligibility rules need answered."""
    asked = registry.survey_variables() if variables is None else variables
    return Baseline(check_answers(asked, answers, today, required))


def has_imported_baseline(participant: Participant) -> bool:
    """Whether a list import carried every required baseline answer (the page then asks
    the person to confirm them, and asks only what the import left out)."""
    return all(
        kept_answers.value(participant, v.name) is not None
        for v in registry.survey_variables()
        if v.required
    )


def unanswered(participant: Participant) -> tuple[registry.BaselineVariable, ...]:
    """The baseline page's questions the participant has no answer to yet."""
    return tuple(
        v for v in registry.survey_variables() if kept_answers.value(participant, v.name) is None
    )


def submit_baseline(
    participant: Participant, baseline: Baseline, confirmed: bool = False
) -> Assignment | None:
    """Store the baseline (once), then assign the arm and schedule the follow-ups.

    `confirmed=True` confirms the values imported with a list (`baseline` then holds the
    answers to the questions the import left out). Values measured before the assignment
    become the participant's covariates. For a list campaign, already randomized (and
    perhaps already messaged), answers given now are kept only in the survey response
    and fill fields the import left empty, never overwriting imported ones: a moderator
    must be measured before treatment.
    """
    require_running(participant.campaign)
    participant = lock(participant)
    if participant.consent_status != "given":
        raise StepOutOfOrder("consent comes before the baseline survey")
    if participant.baseline_completed_at is not None:
        return ensure_assigned(participant)
    if confirmed and not has_imported_baseline(participant):
        raise StepOutOfOrder("no imported baseline to confirm: answer the survey")
    existing = _assignment_of(participant)
    stored: dict[str, Any] = {"after_assignment": existing is not None}
    if confirmed:
        stored["confirmed_imported"] = True
    stored.update(baseline.fields)
    kept_answers.keep(participant, baseline.fields, only_missing=confirmed or existing is not None)
    participant.baseline_completed_at = utcnow()
    db.session.add(
        SurveyResponse(
            campaign_id=participant.campaign_id,
            participant_id=participant.id,
            kind="baseline",
            answers=stored,
            self_efficacy=participant.self_efficacy,
        )
    )
    once(participant, "baseline")
    return existing if existing is not None else _assign_now(participant)


def _assignment_of(participant: Participant) -> Assignment | None:
    return db.session.scalar(select(Assignment).where(Assignment.participant_id == participant.id))


def ensure_assigned(participant: Participant) -> Assignment | None:
    """The participant's arm, assigning it now (once, sticky) if the baseline is done.

    Randomization belongs to `nudge_app.services.assignment`; the follow-ups are
    scheduled by the outbox in the same transaction.
    """
    existing = _assignment_of(participant)
    if existing is not None:
        return existing
    return _assign_now(participant)


def _assign_now(participant: Participant) -> Assignment | None:
    """`ensure_assigned` once the caller has found no assignment in this transaction."""
    if participant.baseline_completed_at is None or participant.consent_status != "given":
        return None
    if participant.opted_out_at is not None:
        return None
    # Eligibility before randomization: a screened-out resident takes no block slot, gets
    # no arm and no message (the page says what the council does instead).
    if not screening.screen(participant).eligible:
        db.session.flush()
        return None
    try:
        assignment = assign(participant, unassigned=True)
    except CampaignNotRunning:
        raise CampaignNotOpen(participant.campaign) from None
    outbox.on_assigned(participant, assignment)
    return assignment


# --- the nudge page ---------------------------------------------------------------------


def record_exposure(participant: Participant, assignment: Assignment) -> bool:
    """The first view of the arm's page (later views add nothing)."""
    return once(participant, "exposure", {"arm_id": assignment.arm_id})


def join(participant: Participant, contact: str = "none", email: str | None = None) -> bool:
    """'I'll take part' (from a POST only); True when recorded now, False when repeated."""
    require_running(participant.campaign)
    participant = lock(participant)
    assignment = _assignment_of(participant)
    if participant.consent_status != "given" or assignment is None:
        raise StepOutOfOrder("the invitation is shown after consent and the baseline survey")
    if contact not in CONTACT_PREFERENCES:
        raise InvalidAnswers({"contact": "choose how we may contact you"})
    if email:
        from nudge_app.services.participants_import import EMAIL_RE

        email = email.strip()
        if len(email) > 254 or not EMAIL_RE.match(email):
            raise InvalidAnswers({"email": "enter an email address like name@example.org"})
    new_contact = bool(email) and participant.email is None
    if new_contact:
        participant.email = email
    # Joining implies the page was seen, even if the first GET was never recorded.
    record_exposure(participant, assignment)
    joined = once(participant, "join", {"arm_id": assignment.arm_id, "contact": contact})
    if new_contact:
        # An open-link resident who gave an address now gets the campaign's follow-ups
        # (idempotent: rows already written are skipped).
        outbox.on_assigned(participant)
    return joined


# --- follow-up survey -------------------------------------------------------------------


@dataclass(frozen=True)
class FollowUp:
    """The follow-up survey's answers: took part since, and the baseline questions it asks
    again (experiments.baseline `follow_up`), as fields."""

    participated: bool
    fields: dict[str, Any]


# Survey-response columns that keep a re-asked variable's value beside the answers.
_RESPONSE_COLUMNS = frozenset(SurveyResponse.__table__.columns.keys())


def check_follow_up(answers: Mapping[str, Any]) -> FollowUp:
    errors: dict[str, str] = {}
    participated = answers.get("participated")
    if participated not in ("yes", "no"):
        errors["participated"] = "answer yes or no"
    try:
        fields = check_answers(registry.follow_up_variables(), answers)
    except InvalidAnswers as exc:
        errors.update(exc.errors)
    if errors:
        raise InvalidAnswers(errors)
    return FollowUp(participated=participated == "yes", fields=fields)


def submit_follow_up(participant: Participant, answers: FollowUp) -> bool:
    """Store the follow-up survey once (an outcome, never a moderator); True if stored now."""
    participant = lock(participant)
    if participant.consent_status != "given":
        raise StepOutOfOrder("consent comes before the survey")
    exists = db.session.scalar(
        select(SurveyResponse.id).where(
            SurveyResponse.participant_id == participant.id, SurveyResponse.kind == "follow_up"
        )
    )
    if exists is not None:
        return False
    values = {
        v.name: v.value(answers.fields)
        for v in registry.follow_up_variables()
        if v.name in _RESPONSE_COLUMNS
    }
    db.session.add(
        SurveyResponse(
            campaign_id=participant.campaign_id,
            participant_id=participant.id,
            kind="follow_up",
            answers={"participated": answers.participated, **answers.fields},
            participated=answers.participated,
            **values,
        )
    )
    once(participant, "survey", {"kind": "follow_up"})
    db.session.flush()
    return True


def has_follow_up(participant: Participant) -> bool:
    return (
        db.session.scalar(
            select(SurveyResponse.id).where(
                SurveyResponse.participant_id == participant.id,
                SurveyResponse.kind == "follow_up",
            )
        )
        is not None
    )


# --- leaving ----------------------------------------------------------------------------


def opt_out(participant: Participant, via: str = "page", everywhere: bool = True) -> bool:
    """Stop every message at once; True when the person was opted out now.

    The contact goes on the council's suppression list, and (`everywhere`) the same
    contact in the council's other campaigns is opted out too: one request covers them all.
    """
    from nudge_app.services import suppression

    participant = lock(participant)
    first = participant.opted_out_at is None
    if first:
        participant.opted_out_at = utcnow()
    outbox.cancel_pending(participant.id)
    once(participant, "opt_out", {"via": via})
    suppression.suppress(participant, "opt-out")
    if everywhere:
        for other in suppression.same_contact_elsewhere(participant):
            opt_out(other, via=f"{via}:other-campaign", everywhere=False)
    db.session.flush()
    return first


# Personal fields blanked on erasure; the pseudonymous rest (baseline, assignment,
# events, survey answers, cluster) stays for the intention-to-treat analysis.
PERSONAL_FIELDS = ("external_ref", "first_name", "email", "phone", "postcode", "neighbourhood")


def erase(participant: Participant, via: str = "page") -> None:
    """Withdraw with erasure: opt out, blank names and contact details, kill the link."""
    from nudge_app.services import audit, suppression

    opt_out(participant, via=via)
    participant = lock(participant)
    if participant.erased_at is not None:
        return
    suppression.suppress(participant, "withdrawal")
    audit.record(
        council_id=participant.campaign.council_id,
        actor=f"participant:{participant.id}" if via == "page" else via,
        action="participant.erase",
        object_type="campaign",
        object_id=participant.campaign_id,
        after={"erased": 1, "via": via},
    )
    for name in PERSONAL_FIELDS:
        setattr(participant, name, None)
    # A new nonce makes the old personal link unknown (and no longer derivable).
    participant.access_nonce = new_nonce()
    participant.access_token_hash = sha256_hex(
        participant_token(current_app.config["SECRET_KEY"], participant.access_nonce)
    )
    participant.erased_at = utcnow()
    once(participant, "erasure", {"via": via})
    db.session.flush()


def delete_participant(participant: Participant, actor: str = "participant") -> dict[str, int]:
    """Full deletion on request: remove the person's rows everywhere; the campaign's audit
    trail keeps only the count (action `participant.delete`, object `campaign`)."""
    from nudge_app.services import suppression

    campaign = participant.campaign
    pid = participant.id
    suppression.suppress(participant, "withdrawal")
    for other in suppression.same_contact_elsewhere(participant):
        opt_out(other, via="withdrawal:other-campaign", everywhere=False)
    counts: dict[str, int] = {}
    for name, model in (
        ("events", Event),
        ("survey_responses", SurveyResponse),
        ("messages", OutboundMessage),
        ("assignments", Assignment),
    ):
        counts[name] = db.session.execute(delete(model).where(model.participant_id == pid)).rowcount
    db.session.expunge(participant)
    counts["participants"] = db.session.execute(
        delete(Participant).where(Participant.id == pid)
    ).rowcount
    db.session.add(
        AuditEntry(
            council_id=campaign.council_id,
            actor=actor,
            action="participant.delete",
            object_type="campaign",
            object_id=str(campaign.id),
            after={"deleted": counts["participants"], "rows": counts},
        )
    )
    db.session.flush()
    return counts


def deleted_count(campaign: Campaign) -> int:
    """How many participants of the campaign were fully deleted on request."""
    entries = db.session.scalars(
        select(AuditEntry.after).where(
            AuditEntry.action == "participant.delete",
            AuditEntry.object_type == "campaign",
            AuditEntry.object_id == str(campaign.id),
        )
    )
    return sum(int((after or {}).get("deleted", 0)) for after in entries)
