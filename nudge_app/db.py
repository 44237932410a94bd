"""Database plumbing: the declarative base with a naming convention, and SQLite settings.

On SQLite every transaction begins with `BEGIN IMMEDIATE` (one writer at a time, so a
read followed by a write never fails half way), the journal is WAL and a busy timeout
makes writers wait instead of failing. PostgreSQL needs none of this.
"""

from __future__ import annotations

import sqlite3
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
    cursor.close()


# How SQLite transactions begin in this context. IMMEDIATE everywhere in the running
# platform; a test body may read as DEFERRED so its open session does not hold the write
# lock while the code under test (a CLI command, a server thread) writes.
sqlite_begin_mode: ContextVar[str] = ContextVar("sqlite_begin_mode", default="IMMEDIATE")


@event.listens_for(Engine, "begin")
def _sqlite_on_begin(conn):
    if conn.dialect.name == "sqlite":
        mode = conn.get_execution_options().get("sqlite_begin") or sqlite_begin_mode.get()
        conn.exec_driver_sql(f"BEGIN {mode}")


def single_writer(session) -> bool:
    """Whether the session's database has one writer at a time (SQLite).

    On SQLite a transaction never sees another's writes once it has read (WAL snapshot),
    and a platform transaction holds the only write lock from its first statement, so
    row locks, re-reads and savepoints guarding a race on PostgreSQL add nothing there.
    """
    return session.get_bind().dialect.name == "sqlite"


def database_kind(url: str) -> str:
    """`sqlite` or `postgresql` (or the dialect name) from a database URL."""
    return url.split(":", 1)[0].split("+", 1)[0]
