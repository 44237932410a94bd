"""Database plumbing: the declarative base with a naming convention, and SQLite settings.

On SQLite every transaction begins with `BEGIN IMMEDIATE` (one writer at a time, so a
read followed by a write never fails half way), except on the participant pages, whose
reads run outside a transaction and whose first statement that may write begins it
(`sqlite_begin_mode` WRITE); the journal is WAL and a busy timeout makes writers wait
instead of failing. PostgreSQL needs none of this.
"""

from __future__ import annotations

import sqlite3
import time
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import Annotated

from sqlalchemy import JSON, DateTime, MetaData, String, event
from sqlalchemy.engine import Engine
from sqlalchemy.orm import DeclarativeBase, mapped_column, registry
from sqlalchemy.types import TypeDecorator

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

SQLITE_BUSY_TIMEOUT_MS = 30_000


def utcnow() -> datetime:
    return datetime.now(UTC)


class UTCDateTime(TypeDecorator):
    """A timezone-aware UTC datetime on every database (SQLite forgets the zone)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value, dialect):
        if value is not None:
            if value.tzinfo is None:
                raise ValueError("naive datetime given: use timezone-aware UTC datetimes")
            value = value.astimezone(UTC)
            if dialect.name == "sqlite":
                value = value.replace(tzinfo=None)
        return value

    def process_result_value(self, value, dialect):
        if value is not None and value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
        return value


class Base(DeclarativeBase):
    registry = registry(
        metadata=MetaData(naming_convention=NAMING_CONVENTION),
        type_annotation_map={dict: JSON, list: JSON, datetime: UTCDateTime},
    )


# Reusable column shapes.
Key = Annotated[str, mapped_column(String(64))]
Created = Annotated[datetime, mapped_column(UTCDateTime, default=utcnow, nullable=False)]


@event.listens_for(Engine, "connect")
def _sqlite_on_connect(dbapi_connection, connection_record):
    if not isinstance(dbapi_connection, sqlite3.Connection):
        return
    # Let SQLAlchemy's "begin" event below emit BEGIN itself (pysqlite's own is deferred).
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    cursor.execute(f"PRAGMA busy_timeout = {SQLITE_BUSY_TIMEOUT_MS}")
    cursor.execute("PRAGMA foreign_keys = ON")
    cursor.execute("PRAGMA journal_mode = WAL")
    cursor.execute("PRAGMA synchronous = NORMAL")
    # Reads through a memory map and a 32 MB page cache instead of a read() per page:
    # a page request reads a dozen pages (participant page: 2.6 -> 2.2 ms at 3,000).
    cursor.execute("PRAGMA cache_size = -32768")
    cursor.execute("PRAGMA mmap_size = 268435456")
    cursor.close()


# How SQLite transactions begin in this context. IMMEDIATE everywhere in the running
# platform; a test body may read as DEFERRED so its open session does not hold the write
# lock while the code under test (a CLI command, a server thread) writes. WRITE is the
# participant pages' mode: reads run outside a transaction (each sees the latest commit,
# as on PostgreSQL), and the first statement that is not a plain SELECT, or `begin_write`,
# begins IMMEDIATE. A page then holds the write lock only for its writes, not while it
# looks up the person or renders, so several processes serve pages at once.
sqlite_begin_mode: ContextVar[str] = ContextVar("sqlite_begin_mode", default="IMMEDIATE")
LAZY = "WRITE"


@event.listens_for(Engine, "begin")
def _sqlite_on_begin(conn):
    if conn.dialect.name == "sqlite":
        mode = sqlite_begin_mode.get()
        conn.info["sqlite_lazy"] = mode == LAZY
        if mode == "IMMEDIATE":
            begin_immediate(conn.connection.dbapi_connection)
        elif mode != LAZY:
            conn.exec_driver_sql(f"BEGIN {mode}")


@event.listens_for(Engine, "before_cursor_execute")
def _sqlite_first_write(conn, cursor, statement, parameters, context, executemany):
    if conn.info.get("sqlite_lazy") and not _reads_only(statement):
        _take_write_lock(conn)


def _reads_only(statement: str) -> bool:
    """Whether a statement is a plain SELECT, the one kind that never writes.

    Anything else may write, whatever its first word: `WITH ... INSERT`, `INSERT ...
    RETURNING`, `PRAGMA name = value`, `SAVEPOINT`. Outside a transaction such a write
    would commit on its own at once, so in WRITE mode it takes the lock first.
    """
    return statement.lstrip()[:6].upper() == "SELECT"


def _take_write_lock(conn) -> bool:
    """In WRITE mode, before the transaction's first write: BEGIN IMMEDIATE now (True).
    Otherwise (already writing, another mode, PostgreSQL) nothing to do (False)."""
    dbapi = conn.connection.dbapi_connection
    if not conn.info.get("sqlite_lazy") or dbapi.in_transaction:
        return False
    begin_immediate(dbapi)
    return True


def begin_immediate(dbapi_connection: sqlite3.Connection) -> None:
    """BEGIN IMMEDIATE, retrying every fraction of a millisecond while another writer
    holds the lock, for at most the busy timeout.

    SQLite's own busy handler sleeps 1, 2, 5, 10, 15 ... ms between tries, while a page
    holds the lock for about a millisecond: two processes serving pages would mostly
    wait for a lock nobody holds (the demo's residents: 48 s -> 38 s for 3,000).
    """
    deadline = time.monotonic() + SQLITE_BUSY_TIMEOUT_MS / 1000
    pause = 0.0001
    dbapi_connection.execute("PRAGMA busy_timeout = 0")
    try:
        while True:
            try:
                dbapi_connection.execute("BEGIN IMMEDIATE")
                return
            except sqlite3.OperationalError as exc:
                if "locked" not in str(exc) or time.monotonic() > deadline:
                    raise
            time.sleep(pause)
            pause = min(pause * 1.5, 0.001)
    finally:
        dbapi_connection.execute(f"PRAGMA busy_timeout = {SQLITE_BUSY_TIMEOUT_MS}")


def begin_write(session) -> bool:
    """Make sure the session's SQLite transaction holds the write lock.

    True when it was taken now (WRITE mode): what was read before may have changed, so
    the caller reads again what its write depends on. False when the transaction already
    had it (IMMEDIATE), and on PostgreSQL, where row locks do this job.
    """
    return _take_write_lock(session.connection())


def dialect_insert(table, dialect: str):
    """An INSERT with ON CONFLICT clauses: PostgreSQL's, or SQLite's (the two databases)."""
    from sqlalchemy.dialects import postgresql, sqlite

    return (postgresql if dialect == "postgresql" else sqlite).insert(table)


class PerDialect:
    """A statement built once per database kind on first use (`build(dialect name)`), so
    a hot path reuses its compiled form instead of rebuilding it and its cache key."""

    def __init__(self, build):
        self.build = build
        self.built: dict[str, object] = {}

    def __call__(self, session):
        dialect = session.get_bind().dialect.name
        if dialect not in self.built:
            self.built[dialect] = self.build(dialect)
        return self.built[dialect]


def single_writer(session) -> bool:
    """Whether the session's database has one writer at a time (SQLite).

    On SQLite a transaction that writes holds the only write lock (from its first
    statement, or from `begin_write` in WRITE mode), so row locks and savepoints guarding
    a race on PostgreSQL add nothing there.
    """
    return session.get_bind().dialect.name == "sqlite"


def database_kind(url: str) -> str:
    """`sqlite` or `postgresql` (or the dialect name) from a database URL."""
    return url.split(":", 1)[0].split("+", 1)[0]
