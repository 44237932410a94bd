"""The outbox: writing messages to send (idempotently, in the caller's transaction) and
rendering their text at send time.

Every message a participant will receive is a row of `outbound_message`, written in the
same transaction as the change that causes it (launch, assignment, import). The unique
idempotency key `"{campaign}:{step key or kind}:{participant}:{channel}"` makes every
enqueue safe to repeat; the arm is fixed on the row, so a retry never re-randomizes and
follow-ups keep the framing of the participant's arm. Texts are rendered only when the
message is sent, from the row's arm or step and the participant's *current* details, so a
withdrawn (erased) participant gets nothing.

Statuses (models.MESSAGE_STATUSES): `pending` waits for its due time; `leased` is claimed
by a dispatcher; `sending` was handed (or is being handed) to a provider; `sent` was
accepted by it; `delivered` was confirmed by a receipt; `failed`, `cancelled` and
`expired` are final without delivery. `error_kind` says why:

| error_kind  | meaning                                                                    |
|-------------|----------------------------------------------------------------------------|
| transient   | a retryable error (timeout, 5xx, rate limit); set while waiting to retry, |
|             | kept on `failed` when the attempts ran out                                |
| permanent   | invalid address, provider refusal, permanent-failure receipt: not retried  |
| temporary   | the provider gave up after its own retries (Notify temporary-failure)      |
| technical   | the provider's technical failure receipt                                   |
| no_contact  | the participant has no address for the channel (or it was erased)         |
| no_template | the arm or step has no text for the channel                                |
| expired     | the message's expiry passed before it could be sent                       |
| stopped     | the stop condition was met (already joined / already answered)            |
| opted_out   | the participant opted out or withdrew                                      |
| closed      | the campaign was closed                                                    |
| quiet_hours | (pending) held until the council's quiet hours end                        |
| daily_cap   | (pending) held until the person's daily message cap frees up              |
| paused      | (pending) held while the campaign is paused                               |
| duplicate   | a row claimed by a stale worker (only logged; never stored on a row)      |
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import NamedTuple

from sqlalchemy import Integer, String, and_, cast, exists, func, literal, literal_column, select
from sqlalchemy import update as sql_update
from sqlalchemy.exc import IntegrityError

from nudge_app.db import PerDialect, UTCDateTime, dialect_insert, utcnow
from nudge_app.extensions import db
from nudge_app.links import participant_links
from nudge_app.models import (
    Arm,
    Assignment,
    Campaign,
    FollowUpStep,
    OutboundMessage,
    Participant,
)
from nudge_app.security import KeyedSha256, token_text
from nudge_app.services.attendance import code_text
from nudge_app.services.frozen import KeptWhileFrozen
from nudge_app.templating import compiled, render

log = logging.getLogger(__name__)

# A neutral survey-first invitation: it reveals no arm (everyone gets the same text).
NEUTRAL_INVITATION = {
    "email_subject": "{council} invites you to a two-minute survey",
    "email_body": (
        "Dear {first_name},\n\n"
        "{council} invites you to a two-minute survey about {activity}: {link}\n\n"
        "If you would rather not hear from us again: {opt_out_link}"
    ),
    "sms": "{council} invites you to a two-minute survey about {activity}: {link} "
    "Stop: {opt_out_link}",
}

# To a mentor when someone they invited has joined (counts only, never who): the
# mentoring service enqueues it, and cancels it when the mentor stops.
MENTOR_UPDATE = {
    "email_subject": "Someone you invited has joined {campaign}",
    "email_body": (
        "Dear {first_name},\n\n"
        "Someone you invited has accepted your invitation to {activity}. Thank you.\n\n"
        "See how your invitations are doing, or stop being a mentor: {link}/mentor\n\n"
        "If you would rather not hear from us again: {opt_out_link}"
    ),
    "sms": "Someone you invited has joined {activity}. Thank you. Your mentor page: "
    "{link}/mentor Stop: {opt_out_link}",
}

# To a resident of a mentor's neighbourhood, for the mentor (where the council chooses):
# the mentor's note and invitation link follow the opening, as literal text, never as a
# template (the note is the mentor's own words).
INTRODUCTION = {
    "email_subject": "A neighbour invites you to {activity}",
    "email_body": "Dear {first_name},",
    "sms": "{council}:",
    "email_close": "If you would rather not hear from us again: {opt_out_link}",
    "sms_close": "Stop: {opt_out_link}",
}

# Messages still waiting to go out (the ones an opt-out or a closure cancels).
OPEN_STATUSES = ("pending", "leased")


def idempotency_key(campaign_id: int, what: str, participant_id: int, channel: str) -> str:
    """The outbox row's unique key: campaign, step key (or message kind), participant, channel."""
    return f"{campaign_id}:{what}:{participant_id}:{channel}"


def provider_reference(message_id: int) -> str:
    """Our reference at the provider: the outbox id only, never personal data."""
    return f"nudge-{message_id}"


def message_id_from_reference(reference: str | None) -> int | None:
    if not reference or not reference.startswith("nudge-"):
        return None
    tail = reference[len("nudge-") :]
    return int(tail) if tail.isdigit() else None


# ----------------------------------------------------------------------------- enqueueing


def _has(column):
    return and_(column.is_not(None), column != "")


def _seconds(hours: float) -> int:
    return int(round(hours * 3600))


def _shifted(column, hours: float):
    """SQL for `column + hours` on both databases (SQLite stores naive UTC text)."""
    seconds = _seconds(hours)
    if db.session.get_bind().dialect.name == "postgresql":
        return column + literal_column(f"interval '{seconds} seconds'")
    return func.strftime("%Y-%m-%d %H:%M:%f000", column, f"{seconds:+d} seconds")


def _bulk(
    campaign: Campaign,
    what: str,
    kind: str,
    channel_order: Sequence[tuple[str, bool]],
    *,
    step: FollowUpStep | None,
    due,
    expires,
    assigned_only: bool,
    participant_ids: Sequence[int] | None,
    now: datetime,
    extra_where=(),
) -> int:
    """INSERT ... SELECT one row per eligible participant; existing keys are skipped.

    `channel_order` lists (channel, has_template) by preference: a participant gets the
    first channel for which they have an address and the message has a text.
    """
    total = 0
    tried: list = []
    for channel, has_template in channel_order:
        contact = Participant.email if channel == "email" else Participant.phone
        condition = _has(contact)
        if not has_template:
            continue
        # A participant gets only the first channel (in preference order) they can receive.
        earlier = [~_has(Participant.email if c == "email" else Participant.phone) for c in tried]
        tried.append(channel)
        arm_col = Assignment.arm_id if assigned_only else literal(None, Integer)
        key = (
            literal(f"{campaign.id}:{what}:", String)
            + cast(Participant.id, String)
            + literal(f":{channel}", String)
        )
        query = select(
            literal(campaign.id).label("campaign_id"),
            Participant.id.label("participant_id"),
            arm_col.label("arm_id"),
            literal(step.id if step else None, Integer).label("step_id"),
            literal(kind).label("kind"),
            literal(channel).label("channel"),
            due.label("due_at"),
            expires.label("expires_at"),
            literal("pending").label("status"),
            literal(0).label("attempts"),
            literal(0).label("fence"),
            key.label("idempotency_key"),
            literal(now, UTCDateTime()).label("created_at"),
        ).where(
            Participant.campaign_id == campaign.id,
            Participant.opted_out_at.is_(None),
            Participant.erased_at.is_(None),
            # Screened out by the campaign's eligibility rules: never messaged.
            Participant.screened_out_rule.is_(None),
            condition,
            *earlier,
            *extra_where,
        )
        if assigned_only:
            query = query.join(Assignment, Assignment.participant_id == Participant.id)
        columns = [
            "campaign_id",
            "participant_id",
            "arm_id",
            "step_id",
            "kind",
            "channel",
            "due_at",
            "expires_at",
            "status",
            "attempts",
            "fence",
            "idempotency_key",
            "created_at",
        ]
        chunks: Iterable = [None] if participant_ids is None else _chunks(participant_ids, 500)
        for chunk in chunks:
            q = query if chunk is None else query.where(Participant.id.in_(chunk))
            total += _insert_new(columns, q, whole=chunk is None)
    return total


def _insert_new(columns: list[str], rows, whole: bool) -> int:
    """INSERT ... SELECT `rows`, skipping keys already present; returns the rows written.

    On PostgreSQL a whole campaign's step is first tried as a plain INSERT in a savepoint:
    ON CONFLICT's speculative insertion costs a quarter of the time of a million rows, and
    a step is usually enqueued once. A key already there (a repeat, or a participant
    randomized meanwhile) makes the plain INSERT fail at once and the ON CONFLICT
    statement runs instead, so the result is the same either way.
    """
    dialect = db.session.get_bind().dialect.name
    insert = dialect_insert(OutboundMessage, dialect).from_select(columns, rows)
    if dialect == "postgresql" and whole:
        try:
            with db.session.begin_nested():
                return (
                    db.session.execute(insert.execution_options(preserve_rowcount=True)).rowcount
                    or 0
                )
        except IntegrityError:
            pass
    stmt = insert.on_conflict_do_nothing().execution_options(preserve_rowcount=True)
    return db.session.execute(stmt).rowcount or 0


def _chunks(ids: Sequence[int], size: int):
    ids = list(ids)
    for i in range(0, len(ids), size):
        yield ids[i : i + size]


def _arm_has(campaign: Campaign, field: str) -> bool:
    return any((getattr(arm, field) or "").strip() for arm in campaign.arms)


def enqueue_first_messages(
    campaign: Campaign, participant_ids: Sequence[int] | None = None, now: datetime | None = None
) -> int:
    """A list campaign's first message (the arm's nudge, due now) for assigned participants."""
    now = now or utcnow()
    order = [
        ("email", _arm_has(campaign, "email_body_template")),
        ("sms", _arm_has(campaign, "sms_template")),
    ]
    return _bulk(
        campaign, "nudge", "nudge", order, step=None,
        due=literal(now, UTCDateTime()), expires=literal(None, UTCDateTime()),
        assigned_only=True, participant_ids=participant_ids, now=now,
    )  # fmt: skip


def enqueue_invitations(
    campaign: Campaign, participant_ids: Sequence[int] | None = None, now: datetime | None = None
) -> int:
    """A survey-first campaign's neutral invitation to every imported participant."""
    now = now or utcnow()
    return _bulk(
        campaign, "invitation", "invitation", [("email", True), ("sms", True)], step=None,
        due=literal(now, UTCDateTime()), expires=literal(None, UTCDateTime()),
        assigned_only=False, participant_ids=participant_ids, now=now,
        extra_where=(Participant.baseline_completed_at.is_(None),),
    )  # fmt: skip


def enqueue_step(
    campaign: Campaign,
    step: FollowUpStep,
    participant_ids: Sequence[int] | None = None,
    now: datetime | None = None,
    assigned_since: datetime | None = None,
) -> int:
    """One follow-up step for assigned participants: due = assignment time + offset.

    Set-based (INSERT ... SELECT ... ON CONFLICT DO NOTHING), so it scales to a whole
    campaign and is a no-op for participants who already have the row.
    """
    now = now or utcnow()
    other = "sms" if step.channel == "email" else "email"
    template = _texts_of(step)
    due = _shifted(Assignment.assigned_at, step.offset_hours)
    expires = _shifted(Assignment.assigned_at, step.offset_hours + step.expires_after_hours)
    extra = []
    if assigned_since is not None:
        extra.append(Assignment.assigned_at >= assigned_since)
        # Cheap anti-join first: only participants without any row for this step.
        extra.append(
            ~exists().where(
                OutboundMessage.step_id == step.id,
                OutboundMessage.participant_id == Participant.id,
            )
        )
    return _bulk(
        campaign, step.key, step.kind, [(step.channel, template[step.channel]),
                                        (other, template[other])],
        step=step, due=due, expires=expires, assigned_only=True,
        participant_ids=participant_ids, now=now, extra_where=extra,
    )  # fmt: skip


def enqueue_steps(
    campaign: Campaign, participant_ids: Sequence[int] | None = None, now: datetime | None = None
) -> int:
    return sum(
        enqueue_step(campaign, step, participant_ids, now) for step in campaign.follow_up_steps
    )


def on_launch(campaign: Campaign) -> int:
    """Launch hook (same transaction): first messages, or neutral invitations, and follow-ups.

    Runs after batch randomization, so in a `list` campaign every participant with an
    assignment gets the arm's nudge now and the follow-up steps relative to launch.
    """
    db.session.flush()
    now = utcnow()
    if campaign.enrolment_mode == "list":
        n = enqueue_first_messages(campaign, now=now)
        n += enqueue_steps(campaign, now=now)
    else:
        n = enqueue_invitations(campaign, now=now)
        # Participants already randomized (e.g. imported with an assignment) get follow-ups.
        n += enqueue_steps(campaign, now=now)
    log.info("campaign %s launched: %d messages enqueued", campaign.id, n)
    return n


def on_assigned(participant: Participant, assignment: Assignment | None = None) -> int:
    """A survey-first participant was randomized after the baseline: schedule follow-ups.

    The same rows `enqueue_steps` would write for this one person (same keys, channel
    choice and times), computed from the objects in hand and written in one statement:
    a baseline submission is the busiest write of the participant pages.
    """
    db.session.flush()
    if assignment is None:
        assignment = db.session.scalar(
            select(Assignment).where(Assignment.participant_id == participant.id)
        )
    if assignment is None or participant.opted_out_at or participant.erased_at:
        return 0
    campaign = db.session.get(Campaign, participant.campaign_id)
    now = utcnow()
    rows = []
    for step in _steps_of(campaign):
        channel = _first_channel(step, participant)
        if channel is None:
            continue
        # The times `_shifted` computes in SQL for the set-based path.
        due = assignment.assigned_at + timedelta(seconds=_seconds(step.offset_hours))
        expires = assignment.assigned_at + timedelta(
            seconds=_seconds(step.offset_hours + step.expires_after_hours)
        )
        rows.append(
            {
                "campaign_id": campaign.id,
                "participant_id": participant.id,
                "arm_id": assignment.arm_id,
                "step_id": step.id,
                "kind": step.kind,
                "channel": channel,
                "due_at": due,
                "expires_at": expires,
                "status": "pending",
                "attempts": 0,
                "fence": 0,
                "idempotency_key": idempotency_key(campaign.id, step.key, participant.id, channel),
                "created_at": now,
            }
        )
    if not rows:
        return 0
    # RETURNING gives the rows written now (psycopg counts -1 for a multi-row insert).
    return len(db.session.execute(_ROW_INSERT(db.session), rows).all())


@dataclass(frozen=True)
class _Step:
    """What enqueueing needs of a follow-up step (the texts only say whether they exist)."""

    id: int
    key: str
    kind: str
    channel: str
    offset_hours: float
    expires_after_hours: float
    has_text: dict


def _load_steps(campaign: Campaign) -> tuple[_Step, ...]:
    return tuple(
        _Step(
            id=step.id,
            key=step.key,
            kind=step.kind,
            channel=step.channel,
            offset_hours=step.offset_hours,
            expires_after_hours=step.expires_after_hours,
            has_text=_texts_of(step),
        )
        for step in campaign.follow_up_steps
    )


# The campaign's follow-up steps (kept once launched, not loaded for every person).
_steps_of = KeptWhileFrozen(_load_steps)


def _texts_of(step: FollowUpStep) -> dict[str, bool]:
    """Whether the step has a text for each channel."""
    return {
        "email": bool((step.email_body_template or "").strip()),
        "sms": bool((step.sms_template or "").strip()),
    }


def _first_channel(step: _Step, participant: Participant) -> str | None:
    """The step's channel, else the other one: the first with a text and an address
    (the rule `_bulk` applies in SQL)."""
    other = "sms" if step.channel == "email" else "email"
    addresses = {"email": participant.email, "sms": participant.phone}
    for channel in (step.channel, other):
        if step.has_text[channel] and addresses[channel]:
            return channel
    return None


_ROW_INSERT = PerDialect(
    lambda dialect: (
        dialect_insert(OutboundMessage.__table__, dialect)
        .on_conflict_do_nothing()
        .returning(OutboundMessage.__table__.c.id)
    )
)


def on_imported(participants: Iterable[Participant]) -> int:
    """New participants of a running campaign (already randomized for `list` campaigns)."""
    db.session.flush()
    by_campaign: dict[int, list[int]] = {}
    for p in participants:
        by_campaign.setdefault(p.campaign_id, []).append(p.id)
    n = 0
    for campaign_id, ids in by_campaign.items():
        campaign = db.session.get(Campaign, campaign_id)
        if campaign.status not in ("running", "paused"):
            continue
        if campaign.enrolment_mode == "list":
            n += enqueue_first_messages(campaign, ids)
        else:
            n += enqueue_invitations(campaign, ids)
        n += enqueue_steps(campaign, ids)
    return n


def cancel_pending(participant_id: int, reason: str = "opted_out") -> int:
    """Cancel every message of a person not yet handed to a provider; returns how many.

    A dispatcher holding one of them finds its fence changed and sends nothing.
    """
    now = utcnow()
    result = db.session.execute(
        sql_update(OutboundMessage)
        .where(
            OutboundMessage.participant_id == participant_id,
            OutboundMessage.status.in_(OPEN_STATUSES),
        )
        .values(
            status="cancelled",
            error_kind=reason,
            completed_at=now,
            lease_owner=None,
            lease_until=None,
            fence=OutboundMessage.fence + 1,
        )
        .execution_options(synchronize_session=False)
    )
    return result.rowcount or 0


def cancel_campaign(campaign_id: int, reason: str = "closed") -> int:
    """Cancel every open message of a campaign (on closure)."""
    result = db.session.execute(
        sql_update(OutboundMessage)
        .where(
            OutboundMessage.campaign_id == campaign_id,
            OutboundMessage.status.in_(OPEN_STATUSES),
        )
        .values(
            status="cancelled",
            error_kind=reason,
            completed_at=utcnow(),
            lease_owner=None,
            lease_until=None,
            fence=OutboundMessage.fence + 1,
        )
        .execution_options(synchronize_session=False)
    )
    return result.rowcount or 0


def enqueue_missing_follow_ups(now: datetime, lookback: timedelta = timedelta(days=2)) -> int:
    """Scheduler tick: follow-up rows for recently assigned participants that lack them.

    A safety net (assignment writes them already); idempotent, and limited to assignments
    of the last `lookback` so it stays cheap on large campaigns.
    """
    n = 0
    campaigns = db.session.scalars(select(Campaign).where(Campaign.status == "running"))
    for campaign in campaigns:
        for step in campaign.follow_up_steps:
            n += enqueue_step(campaign, step, now=now, assigned_since=now - lookback)
    return n


# ------------------------------------------------------------------------------ rendering


class RenderedMessage(NamedTuple):
    """What a channel needs to send one message; built at send time, never stored (a named
    tuple: dispatch builds one per message)."""

    message_id: int
    reference: str
    channel: str
    to: str
    subject: str
    text: str
    unsubscribe_url: str | None
    kind: str
    campaign_id: int
    # The participant's check-in code for the activity's door (e-mails about the activity):
    # the e-mail channel adds it as text and as a QR code.
    check_in_code: str | None = None
    # The participant's page, which shows the code as a QR code (for channels that send
    # text only and so cannot carry the image).
    check_in_page: str | None = None


# Messages about the activity itself carry the check-in code (the survey does not).
CHECK_IN_KINDS = ("nudge", "invitation", "reminder")


class RenderError(ValueError):
    """The message cannot be rendered: no address or no text for its channel."""

    def __init__(self, kind: str, message: str):
        super().__init__(message)
        self.kind = kind


def _campaign_values(campaign: Campaign, arm: Arm | None) -> dict:
    """The placeholder values every participant of a campaign's arm shares."""
    return {
        "council": campaign.council.name if campaign.council else "",
        "campaign": campaign.name,
        "activity": campaign.activity_name,
        "activity_where": campaign.activity_where,
        "activity_when": campaign.activity_when,
        "framing": arm.framing if arm is not None else "",
    }


def _own_values(participant, base_url: str | None = None, secret_key: str | None = None) -> dict:
    """The placeholder values of one participant: name, neighbourhood, personal links."""
    return {
        "first_name": participant.first_name or "resident",
        "neighbourhood": participant.neighbourhood or "",
        **participant_links(participant, base_url, secret_key),
    }


def message_context(participant: Participant, campaign: Campaign, arm: Arm | None) -> dict:
    """The placeholder values for one participant (templating.PLACEHOLDERS)."""
    return {**_campaign_values(campaign, arm), **_own_values(participant)}


def templates_for(kind: str, arm: Arm | None, step: FollowUpStep | None) -> tuple[str, str, str]:
    """(email subject, email body, sms) templates for a message."""
    if kind == "invitation":
        return (
            NEUTRAL_INVITATION["email_subject"],
            NEUTRAL_INVITATION["email_body"],
            NEUTRAL_INVITATION["sms"],
        )
    if kind == "mentor":
        return (
            MENTOR_UPDATE["email_subject"],
            MENTOR_UPDATE["email_body"],
            MENTOR_UPDATE["sms"],
        )
    if kind == "introduction":
        return (INTRODUCTION["email_subject"], INTRODUCTION["email_body"], INTRODUCTION["sms"])
    source = step if step is not None else arm
    if source is None:
        return ("", "", "")
    return (source.email_subject_template, source.email_body_template, source.sms_template)


def address_for(participant, channel: str) -> str:
    """The participant's address on `channel`; RenderError `no_contact` when there is none
    or the person was erased (the first thing rendering refuses)."""
    to = participant.email if channel == "email" else participant.phone
    if not to or participant.erased_at is not None:
        raise RenderError("no_contact", f"participant has no {channel} address")
    return to


class MessageRenderer:
    """Renders many messages from cached texts (a dispatch worker keeps one for as long as
    its settings hold): the templates of each (kind, channel, text) are compiled once and
    each campaign's and arm's placeholder values worked out once per batch (`new_batch`),
    so per message only the person's own values (name, neighbourhood, personal links,
    check-in code) are made, with the secret key's HMAC states worked out once."""

    def __init__(self, secret_key: str | None = None, base_url: str | None = None):
        from flask import current_app

        config = current_app.config if secret_key is None or base_url is None else {}
        self.secret_key = secret_key or config["SECRET_KEY"]
        self.base_url = base_url or config["BASE_URL"]
        self._links = self.base_url.rstrip("/") + "/p/"
        self._hmac = KeyedSha256(self.secret_key.encode())
        self._patterns: dict[tuple, tuple[str, str] | None] = {}
        self._shared: dict[tuple, dict[str, str]] = {}

    def new_batch(self) -> None:
        """Forget the campaigns' placeholder values (a council may be renamed between
        batches); compiled texts are kept, since they are keyed by the texts themselves."""
        self._shared.clear()

    def _texts(self, kind: str, channel: str, arm, step) -> tuple[str, str]:
        """(subject pattern, body pattern) of a message, compiled once per text."""
        subject_t, body_t, sms_t = templates_for(kind, arm, step)
        key = (channel, subject_t, body_t if channel == "email" else sms_t)
        texts = self._patterns.get(key, False)
        if texts is False:
            body_t = key[2]
            texts = self._patterns[key] = (
                (compiled(subject_t if channel == "email" else "")[0], compiled(body_t)[0])
                if (body_t or "").strip()
                else None
            )
        if texts is None:
            raise RenderError("no_template", f"no {channel} text for this {kind}")
        return texts

    def _campaign(self, campaign, arm) -> dict[str, str]:
        key = (campaign.id, None if arm is None else arm.id)
        shared = self._shared.get(key)
        if shared is None:
            values = _campaign_values(campaign, arm)
            shared = self._shared[key] = {k: "" if v is None else str(v) for k, v in values.items()}
        return shared

    def token(self, access_nonce: str) -> str:
        """`security.participant_token(secret_key, access_nonce)`, from the kept states."""
        return token_text(self._hmac(b"participant:" + access_nonce.encode()))

    def check_in_code(self, participant_id: int) -> str:
        """`attendance.check_in_code(participant_id, secret_key)`, from the kept states."""
        return code_text(self._hmac(b"check-in:%d" % participant_id))

    def render(self, message, participant, campaign, arm, step, mentor=None) -> RenderedMessage:
        """The message's text from its arm or step and the participant's current details (an
        introduction: with its `mentor`'s note, first name if they chose, and link)."""
        channel = message.channel
        to = address_for(participant, channel)
        subject, body = self._texts(message.kind, channel, arm, step)
        link = self._links + self.token(participant.access_nonce)
        values = self._campaign(campaign, arm).copy()
        values["first_name"] = participant.first_name or "resident"
        values["neighbourhood"] = participant.neighbourhood or ""
        values["link"] = link
        values["survey_link"] = link + "/follow-up"
        opt_out = values["opt_out_link"] = link + "/opt-out"
        text = body.format_map(values)
        kind = message.kind
        if kind == "introduction":
            if mentor is None:
                raise RenderError("no_template", "an introduction without its mentor")
            text = _introduction(text, channel, values, mentor)
        carries_code = channel == "email" and kind in CHECK_IN_KINDS
        return RenderedMessage(
            message.id, provider_reference(message.id), channel, to, subject.format_map(values), text,
            opt_out, kind, campaign.id,
            self.check_in_code(participant.id) if carries_code else None,
            link if carries_code else None,
        )  # fmt: skip


def render_message(
    message: OutboundMessage | object,
    participant: Participant,
    campaign: Campaign,
    arm: Arm | None,
    step: FollowUpStep | None,
    mentor: object | None = None,
) -> RenderedMessage:
    """The message's text from its arm or step and the participant's current details (an
    introduction: with its `mentor`'s note, first name if they chose, and link)."""
    return MessageRenderer().render(message, participant, campaign, arm, step, mentor)


def _introduction(opening: str, channel: str, context: dict, mentor) -> str:
    """An introduction's text: the greeting, who asked for it (their first name if they
    chose to show it, else "a neighbour"), their note as they wrote it, the invitation
    link and the way to stop. Plain text built here, never a template: the note and the
    name are the mentor's own words."""
    from nudge_app.links import referral_link

    name = mentor.first_name if mentor.show_first_name and mentor.first_name else ""
    who = f"{name}, a neighbour" if name else "A neighbour"
    where = f" in {context['neighbourhood']}" if context.get("neighbourhood") else ""
    close = render(INTRODUCTION[f"{channel}_close"], context)
    link = referral_link(mentor.referral_nonce)
    if channel == "sms":
        return f"{opening} {who}{where} invites you to {context['activity']}: {link} {close}"
    note = f"Their note to you:\n\n{mentor.note}\n\n" if mentor.note else ""
    return (
        f"{opening}\n\n{who}{where} who is taking part in {context['activity']} asked "
        f"{context['council']} to pass on this invitation. We have not shared your details "
        f"with them.\n\n{note}Read more and join them: {link}\n\n{close}"
    )


def counts_by_status(campaign_id: int | None = None) -> dict[tuple[str, str | None], int]:
    """(status, error_kind) -> number of messages, for monitoring."""
    query = select(OutboundMessage.status, OutboundMessage.error_kind, func.count()).group_by(
        OutboundMessage.status, OutboundMessage.error_kind
    )
    if campaign_id is not None:
        query = query.where(OutboundMessage.campaign_id == campaign_id)
    return {(s, k): n for s, k, n in db.session.execute(query)}
