"""Dispatch: claim due outbox rows with a lease and a fencing token, re-check, send, complete.

One batch goes through three short transactions and the sends between them:

1. **claim**: due `pending` rows (and `leased` rows whose lease expired) become `leased`
   to this worker, `fence` incremented. PostgreSQL: `FOR UPDATE SKIP LOCKED`, so several
   workers share the work; SQLite: the single writer (`BEGIN IMMEDIATE`, busy timeout).
2. **prepare**: re-check opt-out and erasure, the campaign's status, expiry, the stop
   condition (already joined / already answered), quiet hours in the council's timezone
   and the per-person daily cap; render the text; mark `sending` (attempts + 1) only
   where the fence is still ours. Held messages go back to `pending` with a later due
   time; the others end `cancelled` / `expired` / `failed` with an `error_kind`.
3. **send** each message through its channel, outside any transaction.
4. **complete**: `UPDATE ... WHERE id = :id AND fence = :fence`. A completion that
   matches no row (someone took the row over) changes nothing and is logged as a
   possible duplicate.

Each step costs a handful of statements per batch, not per message: the facts to
re-check are read for the whole batch, the held and ended rows are written with one
executemany, and marking `sending` and completing the accepted sends are one fenced
UPDATE ... FROM over the batch's (id, fence) pairs (arrays on PostgreSQL, a JSON array
on SQLite). Every statement is built once with bound parameters, so SQLAlchemy reuses
its compiled form. Only the rarer outcomes (retry, permanent failure, ambiguous) are
completed row by row.

A row left `sending` after its lease expired (the worker died between the provider's
answer and our commit, or the answer was ambiguous) is resolved by `reclaim_sending`:
the provider is asked by reference first; only a message it does not know is resent.

Every function takes `now` so the scheduler, the tests and the demo can move the clock.
"""

from __future__ import annotations

import json
import logging
import os
import random
import socket
import time
import uuid
from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import (
    Integer,
    String,
    Text,
    and_,
    bindparam,
    func,
    or_,
    select,
    text,
    union_all,
    update,
)

from nudge_app.db import PerDialect, UTCDateTime, utcnow
from nudge_app.delivery.channels import Channel, SendResult, channels_for, provider
from nudge_app.delivery.quiet import next_allowed
from nudge_app.extensions import db
from nudge_app.models import (
    Arm,
    Campaign,
    Council,
    Event,
    FollowUpStep,
    OutboundMessage,
    Participant,
    SurveyResponse,
)
from nudge_app.services.outbox import RenderError, provider_reference, render_message

log = logging.getLogger(__name__)

T = OutboundMessage.__table__
FINAL_STATUSES = ("sent", "delivered", "failed", "cancelled", "expired")


@dataclass(frozen=True)
class DispatchSettings:
    batch_size: int = 200
    lease_seconds: float = 120.0
    max_attempts: int = 8
    backoff_base: float = 30.0
    backoff_cap: float = 3600.0
    jitter: float = 0.1
    # Hold for this long when the cap is reached because of messages still in flight.
    cap_recheck: float = 600.0


def settings_for(app) -> DispatchSettings:
    """Settings from the app config (DISPATCH_*) or the environment (NUDGE_DISPATCH_*)."""

    def get(name: str, default, convert):
        value = app.config.get(f"DISPATCH_{name}")
        if value in (None, ""):
            value = os.environ.get(f"NUDGE_DISPATCH_{name}")
        return default if value in (None, "") else convert(value)

    d = DispatchSettings()
    return DispatchSettings(
        batch_size=get("BATCH_SIZE", d.batch_size, int),
        lease_seconds=get("LEASE_SECONDS", d.lease_seconds, float),
        max_attempts=get("MAX_ATTEMPTS", d.max_attempts, int),
        backoff_base=get("BACKOFF_BASE", d.backoff_base, float),
        backoff_cap=get("BACKOFF_CAP", d.backoff_cap, float),
    )


def new_worker_id() -> str:
    return f"{socket.gethostname()[:40]}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


def backoff(attempts: int, settings: DispatchSettings, rng: random.Random | None = None) -> float:
    """Seconds before retry number `attempts` (1-based): base x 2^(n-1), +-jitter, capped."""
    rng = rng or random
    delay = min(settings.backoff_cap, settings.backoff_base * 2 ** max(attempts - 1, 0))
    return delay * (1 + rng.uniform(-settings.jitter, settings.jitter))


@dataclass(frozen=True)
class Claim:
    id: int
    fence: int


@dataclass
class Stats:
    claimed: int = 0
    sent: int = 0
    retried: int = 0
    failed: int = 0
    held: int = 0
    cancelled: int = 0
    expired: int = 0
    ambiguous: int = 0
    stale: int = 0
    resolved: int = 0
    resent: int = 0
    skipped: int = 0
    by: dict = field(default_factory=lambda: defaultdict(int))

    def add(self, other: Stats) -> Stats:
        for name in (
            "claimed sent retried failed held cancelled expired ambiguous stale resolved resent "
            "skipped"
        ).split():
            setattr(self, name, getattr(self, name) + getattr(other, name))
        return self


def _now(now: datetime | None) -> datetime:
    return now if now is not None else utcnow()


def _is_pg() -> bool:
    return db.session.get_bind().dialect.name == "postgresql"


# ----------------------------------------------------------------------------------- claim


def _claim_statement(dialect: str):
    """UPDATE ... RETURNING that leases the `limit` first due rows (built once per dialect).

    Due: `pending` with due_at <= now, or `leased` with an expired lease, of a running
    campaign; oldest due first. PostgreSQL: FOR UPDATE SKIP LOCKED, so workers share the
    rows. SQLite: the two kinds are taken apart, each in the order of the (status,
    due_at) index and cut at `limit`, then merged; one query over both would collect
    and sort every due row for each batch.
    """
    C = Campaign.__table__
    now = bindparam("now", type_=UTCDateTime())
    limit = bindparam("limit", type_=Integer)
    pending = and_(T.c.status == "pending", T.c.due_at <= now)
    expired = and_(T.c.status == "leased", T.c.lease_until < now)

    def due(*where):
        return (
            select(T.c.id, T.c.due_at)
            .join(C, C.c.id == T.c.campaign_id)
            .where(C.c.status == "running", *where)
            .order_by(T.c.due_at, T.c.id)
            .limit(limit)
        )

    if dialect == "postgresql":
        first = (
            due(or_(pending, expired))
            .with_only_columns(T.c.id)
            .with_for_update(skip_locked=True, of=T)
        )
    else:
        both = union_all(
            select(due(pending).subquery()), select(due(expired).subquery())
        ).subquery()
        first = select(both.c.id).order_by(both.c.due_at, both.c.id).limit(limit)
    return (
        update(T)
        .where(T.c.id.in_(first.scalar_subquery()))
        .values(
            status="leased",
            lease_owner=bindparam("worker", type_=String),
            lease_until=bindparam("lease_until", type_=UTCDateTime()),
            fence=T.c.fence + 1,
        )
        .returning(T.c.id, T.c.fence)
    )


_CLAIM = PerDialect(_claim_statement)


def claim(
    worker: str, now: datetime | None = None, limit: int = 100, lease_seconds: float = 120.0
) -> list[Claim]:
    """Lease up to `limit` due rows to `worker` and commit; returns (id, new fence) pairs."""
    now = _now(now)
    stmt = _CLAIM(db.session)
    params = {
        "now": now,
        "limit": limit,
        "worker": worker,
        "lease_until": now + timedelta(seconds=lease_seconds),
    }
    try:
        claims = [Claim(i, f) for i, f in db.session.execute(stmt, params)]
        db.session.commit()
    except BaseException:
        db.session.rollback()
        raise
    return sorted(claims, key=lambda c: c.id)


# --------------------------------------------------------------------------------- prepare


@dataclass
class Ready:
    claim: Claim
    rendered: object  # RenderedMessage
    channel: Channel
    expires_at: datetime | None
    attempts: int
    lease_until: datetime | None = None


def _fenced(claim: Claim, *, status: str = "leased"):
    return (
        update(OutboundMessage)
        .where(
            OutboundMessage.id == claim.id,
            OutboundMessage.fence == claim.fence,
            OutboundMessage.status == status,
        )
        .execution_options(synchronize_session=False)
    )


# What `prepare` reads, built once on the tables (plain Core, no ORM layer): the IN lists
# are expanding parameters, so SQLAlchemy compiles each statement once for every batch.
def _ids():
    return bindparam("ids", expanding=True)


P = Participant.__table__
_CLAIMED_ROWS = select(
    T.c.id, T.c.fence, T.c.status, T.c.campaign_id, T.c.participant_id, T.c.arm_id,
    T.c.step_id, T.c.kind, T.c.channel, T.c.expires_at, T.c.attempts,
).where(T.c.id.in_(_ids()))  # fmt: skip
# A person as plain columns, not an ORM object: the re-checks and render_message read
# only these (opt-out, erasure, stop condition, address, placeholders, personal links).
_PEOPLE = select(
    P.c.id, P.c.first_name, P.c.email, P.c.phone, P.c.neighbourhood, P.c.access_nonce,
    P.c.opted_out_at, P.c.erased_at, P.c.baseline_completed_at,
).where(P.c.id.in_(_ids()))  # fmt: skip
E, S = Event.__table__, SurveyResponse.__table__
_JOINED = select(E.c.participant_id).where(E.c.participant_id.in_(_ids()), E.c.kind == "join")
_SURVEYED = select(S.c.participant_id).where(
    S.c.participant_id.in_(_ids()), S.c.kind == "follow_up"
)
_RECENT = select(T.c.participant_id, T.c.status, T.c.sent_at).where(
    T.c.participant_id.in_(_ids()),
    or_(
        T.c.status == "sending",
        and_(
            T.c.status.in_(("sent", "delivered")),
            T.c.sent_at > bindparam("since", type_=UTCDateTime()),
        ),
    ),
)


def _leased_row():
    """A fenced UPDATE of one leased row, its id and fence bound per row (executemany)."""
    return update(T).where(
        T.c.id == bindparam("m_id", type_=Integer),
        T.c.fence == bindparam("m_fence", type_=Integer),
        T.c.status == "leased",
    )


_FINISH_LEASED = _leased_row().values(
    status=bindparam("m_status", type_=String),
    error_kind=bindparam("m_error_kind", type_=String),
    last_error=bindparam("m_last_error", type_=Text),
    completed_at=bindparam("m_now", type_=UTCDateTime()),
    lease_owner=None,
    lease_until=None,
)
_HOLD_LEASED = _leased_row().values(
    status="pending",
    due_at=bindparam("m_until", type_=UTCDateTime()),
    lease_owner=None,
    lease_until=None,
)


class _Outcomes:
    """The batch's rows that end (cancelled / expired / failed) or wait (back to pending)
    in `prepare`: each still fenced, written as one executemany per kind."""

    def __init__(self, now: datetime):
        self.now = now
        self.finished: list[dict] = []
        self.held: list[dict] = []

    def finish(self, claim_: Claim, status: str, error_kind: str | None, error=None) -> None:
        self.finished.append(
            {"m_id": claim_.id, "m_fence": claim_.fence, "m_status": status,
             "m_error_kind": error_kind, "m_last_error": error, "m_now": self.now}
        )  # fmt: skip

    def hold(self, claim_: Claim, until: datetime) -> None:
        """Back to pending until a later moment (quiet hours, cap, paused campaign)."""
        self.held.append({"m_id": claim_.id, "m_fence": claim_.fence, "m_until": until})

    def write(self) -> None:
        if self.finished:
            db.session.execute(_FINISH_LEASED, self.finished)
        if self.held:
            db.session.execute(_HOLD_LEASED, self.held)


def prepare(
    claims: list[Claim],
    now: datetime | None = None,
    channels: Mapping[str, Channel] | None = None,
    settings: DispatchSettings | None = None,
    stats: Stats | None = None,
) -> list[Ready]:
    """Re-check every claimed row, render it and mark it `sending`; commit."""
    if not claims:
        return []
    now = _now(now)
    settings = settings or DispatchSettings()
    stats = stats if stats is not None else Stats()
    channels = channels if channels is not None else channels_for(_app())
    by_id = {c.id: c for c in claims}
    outcomes = _Outcomes(now)
    try:
        rows = list(db.session.execute(_CLAIMED_ROWS, {"ids": list(by_id)}))
        person_ids = list({r.participant_id for r in rows})
        people = {p.id: p for p in db.session.execute(_PEOPLE, {"ids": person_ids})}
        campaigns = _load(Campaign, {r.campaign_id for r in rows})
        councils = _load(Council, {c.council_id for c in campaigns.values()})
        arms = _load(Arm, {r.arm_id for r in rows if r.arm_id})
        steps = _load(FollowUpStep, {r.step_id for r in rows if r.step_id})
        joined, surveyed = _stop_facts(person_ids)
        recent = _recent_sends(person_ids, now)
        openings: dict[int, datetime] = {}
        ready: list[Ready] = []
        for row in sorted(rows, key=lambda r: r.id):
            claim_ = by_id[row.id]
            if row.fence != claim_.fence or row.status != "leased":
                stats.stale += 1
                continue
            person = people[row.participant_id]
            campaign = campaigns[row.campaign_id]
            council = councils[campaign.council_id]
            step = steps.get(row.step_id)
            if person.opted_out_at is not None or person.erased_at is not None:
                outcomes.finish(claim_, "cancelled", "opted_out")
                stats.cancelled += 1
                continue
            if campaign.status == "closed":
                outcomes.finish(claim_, "cancelled", "closed")
                stats.cancelled += 1
                continue
            if campaign.status != "running":  # paused: wait; claims skip paused campaigns
                outcomes.hold(claim_, now + timedelta(minutes=5))
                stats.held += 1
                continue
            if row.expires_at is not None and row.expires_at <= now:
                outcomes.finish(claim_, "expired", "expired")
                stats.expired += 1
                continue
            if _stopped(row, step, person, joined, surveyed):
                outcomes.finish(claim_, "cancelled", "stopped")
                stats.cancelled += 1
                continue
            opening = openings.get(council.id)
            if opening is None:  # the same for every row of this council in this batch
                opening = openings[council.id] = next_allowed(
                    now, council.timezone, council.quiet_start, council.quiet_end
                )
            if opening > now:
                _hold_or_expire(outcomes, claim_, row, opening, stats)
                continue
            cap = council.daily_message_cap or 0
            sent_times = recent[row.participant_id]
            if cap > 0 and len(sent_times) >= cap:
                known = sorted(t for t in sent_times if t is not None)
                if len(known) >= cap:
                    until = known[len(known) - cap] + timedelta(days=1)
                else:
                    until = now + timedelta(seconds=settings.cap_recheck)
                _hold_or_expire(
                    outcomes, claim_, row, max(until, now + timedelta(seconds=1)), stats
                )
                continue
            try:
                rendered = render_message(row, person, campaign, arms.get(row.arm_id), step)
            except RenderError as exc:
                outcomes.finish(claim_, "failed", exc.kind, str(exc))
                stats.failed += 1
                continue
            channel = channels[row.channel]
            sent_times.append(now)  # counts toward the cap for the rest of this batch
            ready.append(
                Ready(
                    claim_, rendered, channel, row.expires_at, row.attempts + 1,
                    now + timedelta(seconds=settings.lease_seconds),
                )
            )  # fmt: skip
        outcomes.write()
        marked = _mark_sending(ready, now, settings)
        stats.stale += len(ready) - len(marked)
        ready = [item for item in ready if item.claim.id in marked]
        db.session.commit()
    except BaseException:
        db.session.rollback()
        raise
    return ready


# Set-based fenced updates of a whole batch: one statement for any batch size, the
# (id, fence, ...) rows passed as one parameter, so its text never changes and it is
# compiled once. PostgreSQL: arrays through unnest. SQLite (3.35 or later, as RETURNING
# already needs): a JSON array through json_each. The unary `+` keeps SQLite's planner off
# the (status, due_at) index, which would scan every leased row once per batch row; so
# it walks the batch and finds each row by primary key.
_PG_MARK_SENDING = text(
    "UPDATE outbound_message AS m SET status = 'sending', attempts = m.attempts + 1, "
    "provider_reference = 'nudge-' || m.id, provider = :provider, lease_until = :lease_until "
    "FROM unnest(CAST(:ids AS integer[]), CAST(:fences AS integer[])) AS v(id, fence) "
    "WHERE m.id = v.id AND m.fence = v.fence AND m.status = 'leased' RETURNING m.id"
).bindparams(bindparam("lease_until", type_=UTCDateTime()))
_PG_COMPLETE_ACCEPTED = text(
    "UPDATE outbound_message AS m SET status = 'sent', sent_at = :now, completed_at = :now, "
    "provider_message_id = v.pid, error_kind = NULL, last_error = NULL, lease_owner = NULL, "
    "lease_until = NULL FROM unnest(CAST(:ids AS integer[]), CAST(:fences AS integer[]), "
    "CAST(:pids AS text[])) AS v(id, fence, pid) "
    "WHERE m.id = v.id AND m.fence = v.fence AND m.status = 'sending' RETURNING m.id"
).bindparams(bindparam("now", type_=UTCDateTime()))
# SQLite: no alias on the updated table (RETURNING cannot name it).
_SQLITE_MARK_SENDING = text(
    "UPDATE outbound_message SET status = 'sending', "
    "attempts = outbound_message.attempts + 1, "
    "provider_reference = 'nudge-' || outbound_message.id, provider = :provider, "
    "lease_until = :lease_until "
    "FROM (SELECT json_extract(value, '$[0]') AS id, json_extract(value, '$[1]') AS fence "
    "FROM json_each(:rows)) AS v "
    "WHERE outbound_message.id = v.id AND outbound_message.fence = v.fence "
    "AND +outbound_message.status = 'leased' RETURNING outbound_message.id"
).bindparams(bindparam("lease_until", type_=UTCDateTime()))
_SQLITE_COMPLETE_ACCEPTED = text(
    "UPDATE outbound_message SET status = 'sent', sent_at = :now, completed_at = :now, "
    "provider_message_id = v.pid, error_kind = NULL, last_error = NULL, lease_owner = NULL, "
    "lease_until = NULL "
    "FROM (SELECT json_extract(value, '$[0]') AS id, json_extract(value, '$[1]') AS fence, "
    "json_extract(value, '$[2]') AS pid FROM json_each(:rows)) AS v "
    "WHERE outbound_message.id = v.id AND outbound_message.fence = v.fence "
    "AND +outbound_message.status = 'sending' RETURNING outbound_message.id"
).bindparams(bindparam("now", type_=UTCDateTime()))


def _batch_update(pg, sqlite, names: tuple[str, ...], rows: list[tuple], **params) -> set[int]:
    """Run a set-based fenced update over `rows` (tuples in the order of `names`); returns
    the ids it changed."""
    if _is_pg():
        for k, name in enumerate(names):
            params[name] = [r[k] for r in rows]
        return set(db.session.execute(pg, params).scalars())
    params["rows"] = json.dumps(rows)
    return set(db.session.execute(sqlite, params).scalars())


def _mark_sending(ready: list[Ready], now: datetime, settings: DispatchSettings) -> set[int]:
    """Mark the prepared rows `sending` where the fence is still ours; returns their ids.

    One UPDATE per provider (the provider is recorded on the row for later lookups).
    """
    lease_until = now + timedelta(seconds=settings.lease_seconds)
    by_provider: dict[str, list[tuple[int, int]]] = defaultdict(list)
    for item in ready:
        by_provider[item.channel.name].append((item.claim.id, item.claim.fence))
    done: set[int] = set()
    for name, rows in by_provider.items():
        done |= _batch_update(
            _PG_MARK_SENDING, _SQLITE_MARK_SENDING, ("ids", "fences"), rows,
            provider=name, lease_until=lease_until,
        )  # fmt: skip
    return done


def _complete_accepted(pairs: list[tuple[Ready, SendResult]], now: datetime) -> set[int]:
    """`sent` for the accepted sends of a batch (fenced); returns the ids it updated."""
    rows = [(item.claim.id, item.claim.fence, result.provider_id) for item, result in pairs]
    return _batch_update(
        _PG_COMPLETE_ACCEPTED, _SQLITE_COMPLETE_ACCEPTED, ("ids", "fences", "pids"), rows,
        now=now,
    )  # fmt: skip


def _app():
    from flask import current_app

    return current_app._get_current_object()


def _load(model, ids) -> dict:
    ids = [i for i in ids if i is not None]
    if not ids:
        return {}
    return {o.id: o for o in db.session.scalars(select(model).where(model.id.in_(ids)))}


def _stop_facts(participant_ids) -> tuple[set[int], set[int]]:
    ids = {"ids": list(participant_ids)}
    joined = set(db.session.execute(_JOINED, ids).scalars())
    surveyed = set(db.session.execute(_SURVEYED, ids).scalars())
    return joined, surveyed


def _recent_sends(participant_ids, now: datetime) -> dict[int, list]:
    """Per person, the sent_at of messages in the last day (None for ones in flight)."""
    recent: dict[int, list] = defaultdict(list)
    rows = db.session.execute(
        _RECENT, {"ids": list(participant_ids), "since": now - timedelta(days=1)}
    )
    for pid, status, sent_at in rows:
        recent[pid].append(sent_at if status != "sending" else None)
    return recent


def _stopped(row, step, person, joined: set, surveyed: set) -> bool:
    if row.kind == "invitation":
        return person.baseline_completed_at is not None
    condition = step.condition if step is not None else "always"
    if condition == "not-joined" and row.participant_id in joined:
        return True
    if (condition == "not-surveyed" or row.kind == "survey") and row.participant_id in surveyed:
        return True
    return False


def _hold_or_expire(outcomes: _Outcomes, claim_: Claim, row, until: datetime, stats) -> None:
    if row.expires_at is not None and until >= row.expires_at:
        outcomes.finish(claim_, "expired", "expired")
        stats.expired += 1
    else:
        outcomes.hold(claim_, until)
        stats.held += 1


# -------------------------------------------------------------------------------- complete


def complete(
    ready: Ready,
    result: SendResult,
    now: datetime | None = None,
    settings: DispatchSettings | None = None,
    stats: Stats | None = None,
) -> bool:
    """Record a send's outcome if the row is still ours (same fence); flushes, no commit.

    Returns False (and changes nothing) when the fence moved: another worker took the row
    over, so this send may be a duplicate of theirs.
    """
    now = _now(now)
    settings = settings or DispatchSettings()
    stats = stats if stats is not None else Stats()
    claim_ = ready.claim
    stmt = _fenced(claim_, status="sending")
    if result.outcome == "accepted":
        stmt = stmt.values(
            status="sent",
            sent_at=now,
            completed_at=now,
            provider_message_id=result.provider_id,
            error_kind=None,
            last_error=None,
            lease_owner=None,
            lease_until=None,
        )
        counter = "sent"
    elif result.outcome == "permanent":
        stmt = stmt.values(
            status="failed",
            error_kind="permanent",
            last_error=result.error,
            completed_at=now,
            lease_owner=None,
            lease_until=None,
        )
        counter = "failed"
    elif result.outcome == "retryable":
        stmt, counter = _retry(stmt, ready.attempts, ready.expires_at, result.error, now, settings)
    else:  # ambiguous: leave it `sending` with an expired lease; reclaim asks the provider
        stmt = stmt.values(lease_until=now, last_error=result.error, error_kind="transient")
        counter = "ambiguous"
    done = db.session.execute(stmt).rowcount == 1
    if done:
        setattr(stats, counter, getattr(stats, counter) + 1)
    else:
        stats.stale += 1
        _log_stale(ready, result)
    return done


def _log_stale(ready: Ready, result: SendResult) -> None:
    log.warning(
        "possible duplicate: message %s was taken over (fence %s is stale); "
        "its %s send result is ignored",
        ready.claim.id,
        ready.claim.fence,
        result.outcome,
    )


def _retry(stmt, attempts, expires_at, error, now, settings):
    if attempts >= settings.max_attempts:
        return stmt.values(
            status="failed",
            error_kind="transient",
            last_error=error,
            completed_at=now,
            lease_owner=None,
            lease_until=None,
        ), "failed"
    due = now + timedelta(seconds=backoff(attempts, settings))
    if expires_at is not None and due >= expires_at:
        return stmt.values(
            status="expired",
            error_kind="expired",
            last_error=error,
            completed_at=now,
            lease_owner=None,
            lease_until=None,
        ), "expired"
    return stmt.values(
        status="pending",
        due_at=due,
        error_kind="transient",
        last_error=error,
        lease_owner=None,
        lease_until=None,
    ), "retried"


# ------------------------------------------------------------------------------- the loop


def send_all(
    ready: list[Ready],
    now: datetime | None = None,
    settings: DispatchSettings | None = None,
    stats: Stats | None = None,
) -> Stats:
    """Send each prepared message and record the outcomes (one commit at the end)."""
    stats = stats if stats is not None else Stats()
    settings = settings or DispatchSettings()
    results = []
    for item in ready:
        if now is None and item.lease_until is not None:
            # Running on the real clock: never send on a lease about to run out, since
            # another worker may then take the row over and send it too. The row stays
            # `sending`; once the lease expires, reclaim asks the provider and requeues.
            margin = timedelta(seconds=min(30.0, settings.lease_seconds / 3))
            if utcnow() >= item.lease_until - margin:
                stats.skipped += 1
                continue
        try:
            result = item.channel.send(item.rendered)
        except Exception as exc:  # a channel bug must not lose the row: treat as ambiguous
            log.exception("channel %s raised on message %s", item.channel.name, item.claim.id)
            result = SendResult("ambiguous", error=f"channel error: {type(exc).__name__}")
        results.append((item, result))
    try:
        accepted = [(i, r) for i, r in results if r.outcome == "accepted"]
        if accepted:
            done = _complete_accepted(accepted, _now(now))
            stats.sent += len(done)
            for item, result in accepted:
                if item.claim.id not in done:
                    _log_stale(item, result)
                    stats.stale += 1
        for item, result in results:
            if result.outcome != "accepted":
                complete(item, result, _now(now), settings, stats)
        db.session.commit()
    except BaseException:
        db.session.rollback()
        raise
    return stats


def dispatch_batch(
    worker: str,
    now: datetime | None = None,
    channels: Mapping[str, Channel] | None = None,
    settings: DispatchSettings | None = None,
) -> Stats:
    """Claim, prepare, send and complete one batch."""
    settings = settings or settings_for(_app())
    stats = Stats()
    claims = claim(worker, now, settings.batch_size, settings.lease_seconds)
    stats.claimed = len(claims)
    ready = prepare(claims, now, channels, settings, stats)
    send_all(ready, now, settings, stats)
    return stats


def dispatch_due(
    worker: str | None = None,
    now: datetime | None = None,
    channels: Mapping[str, Channel] | None = None,
    settings: DispatchSettings | None = None,
    max_seconds: float | None = None,
) -> Stats:
    """Batches until nothing is due (or `max_seconds` of wall time passed)."""
    worker = worker or new_worker_id()
    settings = settings or settings_for(_app())
    total = Stats()
    started = time.monotonic()
    while True:
        stats = dispatch_batch(worker, now, channels, settings)
        total.add(stats)
        if stats.claimed == 0:
            break
        if max_seconds is not None and time.monotonic() - started > max_seconds:
            break
    return total


# ---------------------------------------------------------------------- expired `sending`


def reclaim_sending(
    worker: str | None = None,
    now: datetime | None = None,
    settings: DispatchSettings | None = None,
    limit: int = 500,
    channels_by_provider: Mapping[str, Channel] | None = None,
) -> Stats:
    """Resolve rows left `sending` past their lease: ask the provider before any resend.

    Found at the provider: `sent`. Not found: back to `pending` (due now, or later by the
    backoff if the last send failed ambiguously). Provider cannot be asked (SMTP): resent,
    logged as a possible duplicate.
    """
    worker = worker or new_worker_id()
    now = _now(now)
    settings = settings or settings_for(_app())
    stats = Stats()
    stale = (
        select(OutboundMessage.id)
        .where(OutboundMessage.status == "sending", OutboundMessage.lease_until < now)
        .order_by(OutboundMessage.lease_until)
        .limit(limit)
    )
    if _is_pg():
        stale = stale.with_for_update(skip_locked=True)
    try:
        taken = list(
            db.session.execute(
                update(OutboundMessage)
                .where(OutboundMessage.id.in_(stale.scalar_subquery()))
                .values(
                    lease_owner=worker,
                    lease_until=now + timedelta(seconds=settings.lease_seconds),
                    fence=OutboundMessage.fence + 1,
                )
                .returning(
                    OutboundMessage.id,
                    OutboundMessage.fence,
                    OutboundMessage.provider,
                    OutboundMessage.provider_reference,
                    OutboundMessage.attempts,
                    OutboundMessage.expires_at,
                    OutboundMessage.error_kind,
                )
                .execution_options(synchronize_session=False)
            )
        )
        db.session.commit()
    except BaseException:
        db.session.rollback()
        raise
    if not taken:
        return stats
    app = _app()
    answers = []
    for row in taken:
        ref = row.provider_reference or provider_reference(row.id)
        try:
            channel = (channels_by_provider or {}).get(row.provider) or provider(
                app, row.provider or "file"
            )
            answer = channel.lookup(ref)
        except Exception:
            log.exception("lookup of message %s at %s failed", row.id, row.provider)
            answer = None
        answers.append((row, answer))
    try:
        for row, answer in answers:
            c = Claim(row.id, row.fence)
            stmt = _fenced(c, status="sending")
            if answer is not None and answer.found:
                stmt = stmt.values(
                    status="sent",
                    sent_at=now,
                    completed_at=now,
                    provider_message_id=answer.provider_id,
                    error_kind=None,
                    lease_owner=None,
                    lease_until=None,
                )
                counter = "resolved"
            else:
                if answer is None:
                    log.warning(
                        "resending message %s: provider %s cannot be asked (possible duplicate)",
                        row.id,
                        row.provider,
                    )
                if row.error_kind == "transient":  # an ambiguous failure: back off
                    stmt, counter = _retry(stmt, row.attempts, row.expires_at, None, now, settings)
                elif row.expires_at is not None and row.expires_at <= now:
                    stmt = stmt.values(
                        status="expired", error_kind="expired", completed_at=now,
                        lease_owner=None, lease_until=None,
                    )  # fmt: skip
                    counter = "expired"
                else:
                    stmt = stmt.values(
                        status="pending", due_at=now, lease_owner=None, lease_until=None
                    )
                    counter = "resent"
            if db.session.execute(stmt).rowcount == 1:
                setattr(stats, counter, getattr(stats, counter) + 1)
            else:
                stats.stale += 1
        db.session.commit()
    except BaseException:
        db.session.rollback()
        raise
    return stats


def pending_count() -> int:
    return db.session.scalar(
        select(func.count())
        .select_from(OutboundMessage)
        .where(OutboundMessage.status.in_(("pending", "leased", "sending")))
    )
