"""Every SQL statement of dispatch, in one place (as procrastinate's queries).

Statements are built once (per database kind where they differ) with bound parameters,
so SQLAlchemy reuses their compiled form for every batch. Set-based updates of a batch
take its (id, fence, ...) rows as one parameter, so their text never changes: arrays
through `unnest` on PostgreSQL, a JSON array through `json_each` on SQLite (3.35 or
later, as RETURNING needs). On SQLite the unary `+` keeps the planner off the (status,
due_at) index, which would scan every leased row once per batch row; so it walks the
batch and finds each row by primary key.

The set-based updates bind their lists on PostgreSQL as array literals (`'{1,2,3}'`, cast
in the statement) rather than as Python lists, which psycopg inspects element by element;
the reads keep typed arrays (`= ANY(array)`), whose plans PostgreSQL estimates well. Rows
are fetched all at once (`.all()`), not one by one.

Every update of a claimed row is fenced: it matches only while the row's `fence` is the
one its worker was given, so a stale worker changes nothing.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime, timedelta

from sqlalchemy import (
    Integer,
    String,
    Text,
    and_,
    any_,
    bindparam,
    case,
    cast,
    exists,
    func,
    literal,
    or_,
    select,
    text,
    union_all,
    update,
)
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.types import TypeDecorator

from nudge_app.db import PerDialect, UTCDateTime
from nudge_app.extensions import db
from nudge_app.models import (
    Arm,
    Campaign,
    Council,
    Event,
    FollowUpStep,
    Mentor,
    OutboundMessage,
    Participant,
    SurveyResponse,
)

T = OutboundMessage.__table__
P = Participant.__table__
C = Campaign.__table__
K = Council.__table__
M = Mentor.__table__
E, S = Event.__table__, SurveyResponse.__table__
OPEN_STATUSES = ("pending", "leased", "sending")


class _Ints(TypeDecorator):
    """A list of integers bound as one PostgreSQL array literal, `'{1,2,3}'`."""

    impl = String
    cache_ok = True

    def process_bind_param(self, value, dialect):
        return "{" + ",".join(map(str, map(int, value))) + "}"


def _quoted(value: str | None) -> str:
    if value is None:
        return "NULL"
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


class _Texts(TypeDecorator):
    """A list of strings (or None) bound as one PostgreSQL array literal, each element
    quoted: `'{"a","b \\" c",NULL}'`."""

    impl = String
    cache_ok = True

    def process_bind_param(self, value, dialect):
        return "{" + ",".join(map(_quoted, value)) + "}"


def _is_pg() -> bool:
    return db.session.get_bind().dialect.name == "postgresql"


class _OnDriver:
    """A Core statement compiled once for PostgreSQL and run straight on the session's
    psycopg connection, in the session's transaction: the hot statements of every batch
    (take, the people and their recent sends, the campaigns' rules, mark_sent) skip
    SQLAlchemy's per-execution work (cache key, parameter and result processing) and
    come back as named tuples built by psycopg (prepared on the server at first use).

    Parameters go through the statement's own bind processors, as SQLAlchemy applies
    them. No result processing is needed on PostgreSQL: timestamps come back aware (the
    only thing `UTCDateTime` adds on SQLite), and the other columns are plain values.
    """

    def __init__(self, stmt, named: bool = True):
        from psycopg.rows import namedtuple_row, tuple_row
        from sqlalchemy.dialects.postgresql.psycopg import dialect

        compiled = stmt.compile(dialect=dialect())
        if "POSTCOMPILE" in compiled.string:
            raise ValueError("an expanding IN list cannot be compiled once")
        self.sql = compiled.string
        self.processors = dict(compiled._bind_processors)
        self.fixed = {}  # the statement's own literal values, processed once
        for name, value in compiled.construct_params(_check=False).items():
            if value is not None:
                process = self.processors.get(name)
                self.fixed[name] = process(value) if process else value
        self.row_factory = namedtuple_row if named else tuple_row

    def values(self, params: dict) -> dict:
        values = dict(self.fixed)
        processors = self.processors
        for name, value in params.items():
            process = processors.get(name)
            values[name] = process(value) if process is not None else value
        return values

    def rows(self, params: dict) -> list:
        conn = db.session.connection().connection.driver_connection
        with conn.cursor(row_factory=self.row_factory) as cur:
            cur.execute(self.sql, self.values(params), prepare=True)
            return cur.fetchall()

    @staticmethod
    def pipelined(jobs: list[tuple[_OnDriver, dict]]) -> list[list]:
        """The rows of several statements sent in one round trip (psycopg's pipeline
        mode), in the session's transaction."""
        conn = db.session.connection().connection.driver_connection
        cursors = []
        try:
            with conn.pipeline():
                for stmt, params in jobs:
                    cur = conn.cursor(row_factory=stmt.row_factory)
                    cursors.append(cur)
                    cur.execute(stmt.sql, stmt.values(params), prepare=True)
            return [cur.fetchall() for cur in cursors]
        finally:
            for cur in cursors:
                cur.close()


class _Statement:
    """A statement built once per database kind (`build(dialect name)`): on PostgreSQL run
    on the driver (`_OnDriver`), elsewhere through the session."""

    def __init__(self, build):
        self.build = build
        self.built: dict[str, object] = {}

    def built_for(self, dialect: str):
        stmt = self.built.get(dialect)
        if stmt is None:
            stmt = self.built[dialect] = self.build(dialect)
            if dialect == "postgresql":
                stmt = self.built[dialect] = _OnDriver(stmt)
        return stmt

    def rows(self, params: dict) -> list:
        dialect = db.session.get_bind().dialect.name
        stmt = self.built_for(dialect)
        if dialect == "postgresql":
            return stmt.rows(params)
        return db.session.execute(stmt, params).all()


def _all_rows(jobs: list[tuple[_Statement, dict]]) -> list[list]:
    """The rows of several reads: on PostgreSQL in one round trip, else one by one."""
    dialect = db.session.get_bind().dialect.name
    if dialect == "postgresql":
        return _OnDriver.pipelined([(stmt.built_for(dialect), p) for stmt, p in jobs])
    return [stmt.rows(params) for stmt, params in jobs]


# ----------------------------------------------------------------------------------- claim


# What a claim returns to the loop: the row as prepare needs it.
CLAIMED = (
    T.c.id, T.c.fence, T.c.status, T.c.campaign_id, T.c.participant_id, T.c.arm_id,
    T.c.step_id, T.c.kind, T.c.channel, T.c.expires_at, T.c.attempts, T.c.mentor_id,
)  # fmt: skip


def _claim_statement(dialect: str, into: str):
    """UPDATE ... RETURNING that claims the `limit` first due rows for a worker.

    Due: `pending` with due_at <= now, or `leased` with an expired lease, of a running
    campaign; oldest due first. PostgreSQL: FOR UPDATE SKIP LOCKED, so workers share the
    rows. SQLite: the two kinds are taken apart, each in the order of the (status,
    due_at) index and cut at `limit`, then merged; one query over both would collect
    and sort every due row for each batch.

    `into` is `leased` (claim only) or `sending`: the dispatch loop claims, re-checks
    and sends in one transaction, so its rows go straight to `sending` with the provider
    of their medium, an attempt counted and our reference, and the rare rows that must
    not be sent are put back in the same transaction (`undo_sending`). That is one row
    version per message fewer than leasing first.
    """
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
        # A CTE joined by id, as METHODS.md writes it: `id IN (subquery)` makes PostgreSQL
        # scan the whole table for the rows to update (a hash semi-join), every batch.
        first = (
            due(or_(pending, expired))
            .with_only_columns(T.c.id)
            .with_for_update(skip_locked=True, of=T)
            .cte("claimed")
        )
        where = T.c.id == first.c.id
    else:
        both = union_all(
            select(due(pending).subquery()), select(due(expired).subquery())
        ).subquery()
        first = select(both.c.id).order_by(both.c.due_at, both.c.id).limit(limit)
        where = T.c.id.in_(first.scalar_subquery())
    values = {
        "status": into,
        "lease_owner": bindparam("worker", type_=String),
        "lease_until": bindparam("lease_until", type_=UTCDateTime()),
        "fence": T.c.fence + 1,
    }
    if into == "sending":
        values.update(
            attempts=T.c.attempts + 1,
            provider=case(
                (T.c.channel == "email", bindparam("email_provider", type_=String)),
                else_=bindparam("sms_provider", type_=String),
            ),
            provider_reference=literal("nudge-", String) + cast(T.c.id, String),
        )
    stmt = update(T).where(where).values(**values)
    return stmt.returning(T.c.id, T.c.fence) if into == "leased" else stmt.returning(*CLAIMED)


_CLAIM = PerDialect(lambda dialect: _claim_statement(dialect, "leased"))
_TAKE = _Statement(lambda dialect: _claim_statement(dialect, "sending"))


def claim(worker: str, now: datetime, limit: int, lease_until: datetime) -> list[tuple[int, int]]:
    """Lease up to `limit` due rows to `worker`: (id, new fence) pairs."""
    params = {"now": now, "limit": limit, "worker": worker, "lease_until": lease_until}
    return [(i, f) for i, f in db.session.execute(_CLAIM(db.session), params)]


def take(
    worker: str, now: datetime, limit: int, lease_until: datetime, providers: dict[str, str]
) -> list:
    """Claim up to `limit` due rows straight into `sending` through `providers` (medium ->
    channel name); returns the rows (CLAIMED columns, status and fence as now)."""
    params = {
        "now": now, "limit": limit, "worker": worker, "lease_until": lease_until,
        "email_provider": providers["email"], "sms_provider": providers["sms"],
    }  # fmt: skip
    return _TAKE.rows(params)


# ------------------------------------------------------------------- what prepare reads


def _in_ids(column, dialect: str):
    """`column` in the bound list `ids`: `= ANY(array)` on PostgreSQL (one parameter, so
    the statement text is the same for every batch and psycopg parses it once), an
    expanding IN list on SQLite."""
    if dialect == "postgresql":
        return column == any_(bindparam("ids", type_=ARRAY(Integer)))
    return column.in_(bindparam("ids", expanding=True))


def _reads(dialect: str) -> dict:
    """The statements `prepare` reads with, plain Core (no ORM objects for hot rows)."""
    joined = exists().where(E.c.participant_id == P.c.id, E.c.kind == "join")
    surveyed = exists().where(S.c.participant_id == P.c.id, S.c.kind == "follow_up")
    return {
        "claimed": select(*CLAIMED).where(_in_ids(T.c.id, dialect)),
        # A person as plain columns (the re-checks and rendering read only these), with
        # the facts of the stop conditions.
        "people": select(
            P.c.id, P.c.first_name, P.c.email, P.c.phone, P.c.neighbourhood, P.c.access_nonce,
            P.c.opted_out_at, P.c.erased_at, P.c.baseline_completed_at,
            joined.label("joined"), surveyed.label("surveyed"),
        ).where(_in_ids(P.c.id, dialect)),
        "recent": select(T.c.id, T.c.participant_id, T.c.status, T.c.sent_at).where(
            _in_ids(T.c.participant_id, dialect),
            or_(
                T.c.status == "sending",
                and_(
                    or_(T.c.status == "sent", T.c.status == "delivered"),
                    T.c.sent_at > bindparam("since", type_=UTCDateTime()),
                ),
            ),
        ),
    }  # fmt: skip


_READS = PerDialect(_reads)
_PEOPLE = _Statement(lambda dialect: _reads(dialect)["people"])
_RECENT = _Statement(lambda dialect: _reads(dialect)["recent"])


def claimed_rows(ids: Sequence[int]) -> list:
    return db.session.execute(_READS(db.session)["claimed"], {"ids": list(ids)}).all()


def people(ids: Sequence[int]) -> dict[int, object]:
    """Persons by id, each with `joined` and `surveyed` (the stop conditions' facts)."""
    return {p.id: p for p in _PEOPLE.rows({"ids": list(ids)})}


def sent_in_last_day(ids: Sequence[int], now: datetime, batch: set[int]) -> dict[int, list]:
    """Per person, the sent_at of messages in the last day (None for ones in flight), not
    counting the messages of this batch."""
    params = {"ids": list(ids), "since": now - timedelta(days=1)}
    return _recent(_RECENT.rows(params), batch)


def _recent(rows, batch: set[int]) -> dict[int, list]:
    recent: dict[int, list] = {}
    for message_id, pid, status, sent_at in rows:
        if message_id not in batch:
            recent.setdefault(pid, []).append(sent_at if status != "sending" else None)
    return recent


def batch_facts(
    person_ids: Sequence[int], campaign_ids, now: datetime, batch: set[int]
) -> tuple[dict, dict, dict]:
    """What a batch's re-checks read, in one round trip on PostgreSQL: (`people`,
    `sent_in_last_day`, the campaigns of `facts("campaigns")`)."""
    people_rows, recent_rows, campaign_rows = _all_rows(
        [
            (_PEOPLE, {"ids": list(person_ids)}),
            (_RECENT, {"ids": list(person_ids), "since": now - timedelta(days=1)}),
            (_CAMPAIGNS, {"ids": [i for i in campaign_ids if i is not None]}),
        ]
    )
    return (
        {p.id: p for p in people_rows},
        _recent(recent_rows, batch),
        {c.id: c for c in campaign_rows},
    )


_CAMPAIGN_FACTS = (
    C.c.id, C.c.status, C.c.salt, C.c.launched_at, C.c.name, C.c.activity_name, C.c.activity_where, C.c.activity_when,
    K.c.name.label("council_name"), K.c.timezone, K.c.quiet_start, K.c.quiet_end,
    K.c.daily_message_cap,
)  # fmt: skip
_TEXTS = ("email_subject_template", "email_body_template", "sms_template")


def _facts(dialect: str) -> dict:
    """What rendering and the rules need of a batch's campaigns, councils, arms and steps."""
    A, F = Arm.__table__, FollowUpStep.__table__
    return {
        "campaigns": select(*_CAMPAIGN_FACTS)
        .join_from(C, K, K.c.id == C.c.council_id)
        .where(_in_ids(C.c.id, dialect)),
        "arms": select(A.c.id, A.c.framing, *(A.c[t] for t in _TEXTS)).where(
            _in_ids(A.c.id, dialect)
        ),
        "steps": select(F.c.id, F.c.condition, *(F.c[t] for t in _TEXTS)).where(
            _in_ids(F.c.id, dialect)
        ),
        # A mentor a message is about or sent for: still active, and what an introduction
        # shows (note, first name if they chose, the link's nonce).
        "mentors": select(
            M.c.id, M.c.note, M.c.show_first_name, M.c.referral_nonce, M.c.stopped_at,
            M.c.expires_at, P.c.first_name, P.c.opted_out_at, P.c.erased_at,
        ).join_from(M, P, P.c.id == M.c.participant_id).where(_in_ids(M.c.id, dialect)),
        # Every arm and step of launched campaigns, whose texts a worker keeps (`facts`).
        "campaign_arms": select(
            A.c.id, A.c.campaign_id, A.c.framing, *(A.c[t] for t in _TEXTS)
        ).where(_in_ids(A.c.campaign_id, dialect)),
        "campaign_steps": select(
            F.c.id, F.c.campaign_id, F.c.condition, *(F.c[t] for t in _TEXTS)
        ).where(_in_ids(F.c.campaign_id, dialect)),
    }  # fmt: skip


_FACTS = PerDialect(_facts)
_CAMPAIGNS = _Statement(lambda dialect: _facts(dialect)["campaigns"])
_CAMPAIGN_TEXTS = {
    kind: _Statement(lambda dialect, kind=kind: _facts(dialect)[f"campaign_{kind}"])
    for kind in ("arms", "steps")
}


def facts(kind: str, ids) -> dict:
    """Rows by id of `campaigns` (with their council's name and rules), `arms`, `steps` or
    `mentors`."""
    ids = [i for i in ids if i is not None]
    if not ids:
        return {}
    if kind == "campaigns":  # every batch: on the driver on PostgreSQL
        return {r.id: r for r in _CAMPAIGNS.rows({"ids": ids})}
    return {r.id: r for r in db.session.execute(_FACTS(db.session)[kind], {"ids": ids}).all()}


def campaign_texts(kind: str, campaign_ids: list[int]) -> list:
    """Every row of `arms` or `steps` of the campaigns `campaign_ids` (with campaign_id)."""
    return _CAMPAIGN_TEXTS[kind].rows({"ids": campaign_ids})


# ----------------------------------------------- claimed rows that end or wait instead


def _claimed_row(status: str):
    """A fenced UPDATE of one claimed row, its id and fence bound per row (executemany)."""
    return update(T).where(
        T.c.id == bindparam("m_id", type_=Integer),
        T.c.fence == bindparam("m_fence", type_=Integer),
        T.c.status == status,
    )


def _ends(status: str):
    """(finish, hold) statements for rows claimed into `status`. A row taken straight into
    `sending` was never handed over: its attempt and provider are taken back."""
    undo = (
        {"attempts": T.c.attempts - 1, "provider": None, "provider_reference": None}
        if status == "sending"
        else {}
    )
    finish = _claimed_row(status).values(
        status=bindparam("m_status", type_=String),
        error_kind=bindparam("m_error_kind", type_=String),
        last_error=bindparam("m_last_error", type_=Text),
        completed_at=bindparam("m_now", type_=UTCDateTime()),
        lease_owner=None,
        lease_until=None,
        **undo,
    )
    hold = _claimed_row(status).values(
        status="pending",
        due_at=bindparam("m_until", type_=UTCDateTime()),
        error_kind=bindparam("m_reason", type_=String),
        lease_owner=None,
        lease_until=None,
        **undo,
    )
    return finish, hold


_ENDS = {status: _ends(status) for status in ("leased", "sending")}


def finish_claimed(rows: list[dict], status: str) -> None:
    """End claimed rows (m_id, m_fence, m_status, m_error_kind, m_last_error, m_now)."""
    if rows:
        db.session.execute(_ENDS[status][0], rows)


def hold_claimed(rows: list[dict], status: str) -> None:
    """Claimed rows back to pending until later, saying why (m_id, m_fence, m_until,
    m_reason: the error_kind while they wait)."""
    if rows:
        db.session.execute(_ENDS[status][1], rows)


# ------------------------------------------------------------- sending, sent: set-based

_PG_MARK_SENDING = text(
    "UPDATE outbound_message AS m SET status = 'sending', attempts = m.attempts + 1, "
    "provider_reference = 'nudge-' || m.id, provider = :provider, lease_until = :lease_until "
    "FROM unnest(CAST(:ids AS integer[]), CAST(:fences AS integer[])) AS v(id, fence) "
    "WHERE m.id = v.id AND m.fence = v.fence AND m.status = 'leased' RETURNING m.id"
).bindparams(
    bindparam("lease_until", type_=UTCDateTime()),
    bindparam("ids", type_=_Ints()),
    bindparam("fences", type_=_Ints()),
)
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
_PG_MARK_SENT = text(
    "UPDATE outbound_message AS m SET status = 'sent', sent_at = :now, completed_at = :now, "
    "provider_message_id = v.pid, error_kind = NULL, last_error = NULL, lease_owner = NULL, "
    "lease_until = NULL FROM unnest(CAST(:ids AS integer[]), CAST(:fences AS integer[]), "
    "CAST(:pids AS text[])) AS v(id, fence, pid) "
    "WHERE m.id = v.id AND m.fence = v.fence AND m.status = 'sending' RETURNING m.id"
).bindparams(
    bindparam("now", type_=UTCDateTime()),
    bindparam("ids", type_=_Ints()),
    bindparam("fences", type_=_Ints()),
    bindparam("pids", type_=_Texts()),
)
_SQLITE_MARK_SENT = text(
    "UPDATE outbound_message SET status = 'sent', sent_at = :now, completed_at = :now, "
    "provider_message_id = v.pid, error_kind = NULL, last_error = NULL, lease_owner = NULL, "
    "lease_until = NULL "
    "FROM (SELECT json_extract(value, '$[0]') AS id, json_extract(value, '$[1]') AS fence, "
    "json_extract(value, '$[2]') AS pid FROM json_each(:rows)) AS v "
    "WHERE outbound_message.id = v.id AND outbound_message.fence = v.fence "
    "AND +outbound_message.status = 'sending' RETURNING outbound_message.id"
).bindparams(bindparam("now", type_=UTCDateTime()))


_ON_DRIVER: dict = {}  # the PostgreSQL statements below, compiled once for the driver


def _batch_update(pg, sqlite, names: tuple[str, ...], rows: list[tuple], **params) -> set[int]:
    """Run a set-based fenced update over `rows` (tuples in the order of `names`); returns
    the ids it changed."""
    if not rows:
        return set()
    if _is_pg():
        for k, name in enumerate(names):
            params[name] = [r[k] for r in rows]
        on_driver = _ON_DRIVER.get(pg)
        if on_driver is None:
            on_driver = _ON_DRIVER[pg] = _OnDriver(pg, named=False)
        return {r[0] for r in on_driver.rows(params)}
    params["rows"] = json.dumps(rows)
    return set(db.session.execute(sqlite, params).scalars().all())


def mark_sending(rows: list[tuple[int, int]], provider: str, lease_until: datetime) -> set[int]:
    """Leased rows (id, fence) become `sending` through `provider`, attempts + 1."""
    return _batch_update(
        _PG_MARK_SENDING, _SQLITE_MARK_SENDING, ("ids", "fences"), rows,
        provider=provider, lease_until=lease_until,
    )  # fmt: skip


def mark_sent(rows: list[tuple[int, int, str | None]], now: datetime) -> set[int]:
    """`sending` rows (id, fence, provider's id) the provider took become `sent`: the one
    statement for every way a send is found accepted (batch, single, reclaim)."""
    return _batch_update(_PG_MARK_SENT, _SQLITE_MARK_SENT, ("ids", "fences", "pids"), rows, now=now)


def update_sending(message_id: int, fence: int, **values) -> bool:
    """A fenced update of one `sending` row (retry, failure, expiry, ambiguity)."""
    result = db.session.execute(
        update(T).where(T.c.id == message_id, T.c.fence == fence, T.c.status == "sending")
        .values(**values)
    )  # fmt: skip
    return result.rowcount == 1


# ------------------------------------------------------------------- expired `sending`


def take_stale_sending(worker: str, now: datetime, lease_until: datetime, limit: int) -> list:
    """Lease rows left `sending` past their lease to `worker` (fence + 1); returns them."""
    stale = (
        select(T.c.id)
        .where(T.c.status == "sending", T.c.lease_until < now)
        .order_by(T.c.lease_until)
        .limit(limit)
    )
    if _is_pg():  # a CTE joined by id, for an index lookup per row (see the claim)
        stale = stale.with_for_update(skip_locked=True).cte("stale")
        where = T.c.id == stale.c.id
    else:
        where = T.c.id.in_(stale.scalar_subquery())
    return list(
        db.session.execute(
            update(T)
            .where(where)
            .values(lease_owner=worker, lease_until=lease_until, fence=T.c.fence + 1)
            .returning(
                T.c.id, T.c.fence, T.c.channel, T.c.provider, T.c.provider_reference,
                T.c.attempts, T.c.expires_at, T.c.error_kind,
            )
        )
    )  # fmt: skip


# ------------------------------------------------------------------------------ backlog


def backlog(now: datetime) -> tuple[int, datetime | None]:
    """(messages due and waiting, the oldest due time) over running campaigns."""
    due = and_(T.c.status == "pending", T.c.due_at <= now)
    row = db.session.execute(
        select(func.count(), func.min(T.c.due_at))
        .select_from(T.join(C, C.c.id == T.c.campaign_id))
        .where(due, C.c.status == "running")
    ).one()
    return int(row[0]), row[1]


def upcoming(now: datetime) -> tuple[int, datetime | None, int]:
    """(pending messages of running campaigns not due yet, the first due time, pending
    messages of paused campaigns, which wait for the campaign to resume)."""
    pending = select(func.count(), func.min(T.c.due_at)).select_from(
        T.join(C, C.c.id == T.c.campaign_id)
    )
    later = db.session.execute(
        pending.where(T.c.status == "pending", T.c.due_at > now, C.c.status == "running")
    ).one()
    paused = db.session.execute(
        pending.where(T.c.status == "pending", C.c.status == "paused")
    ).one()
    return int(later[0]), later[1], int(paused[0])


def held(campaign_id: int) -> list[tuple[str, int, datetime]]:
    """A campaign's messages held back by a re-check: (reason, how many, first may go)."""
    rows = db.session.execute(
        select(T.c.error_kind, func.count(), func.min(T.c.due_at))
        .where(
            T.c.campaign_id == campaign_id,
            T.c.status == "pending",
            T.c.error_kind.in_(("quiet_hours", "daily_cap", "paused")),
        )
        .group_by(T.c.error_kind)
        .order_by(func.min(T.c.due_at))
    )
    return [(reason, int(n), first) for reason, n, first in rows]
