"""SQLite's WRITE mode (the participant pages'): reads run outside a transaction, and the
first statement that is not a plain SELECT takes the write lock before it runs.

A write that ran without the lock would commit on its own at once (the connection is in
autocommit until BEGIN), so these tests check both that the lock is held afterwards
(another connection cannot begin writing) and that a rollback undoes the write.
"""

from __future__ import annotations

import sqlite3

import pytest
from sqlalchemy import create_engine, text

from nudge_app.db import LAZY, sqlite_begin_mode

WRITES = {
    "a CTE that writes": (
        "WITH new(v) AS (SELECT 'written') INSERT INTO note (v) SELECT v FROM new",
        "SELECT count(*) FROM note",
        0,
    ),
    "an INSERT ... RETURNING": (
        "INSERT INTO note (v) VALUES ('written') RETURNING id",
        "SELECT count(*) FROM note",
        0,
    ),
    "a PRAGMA that writes": ("PRAGMA user_version = 7", "PRAGMA user_version", 0),
}


@pytest.fixture
def engine(tmp_path):
    path = tmp_path / "lock.sqlite3"
    with sqlite3.connect(path) as setup:
        setup.execute("CREATE TABLE note (id INTEGER PRIMARY KEY, v TEXT)")
    engine = create_engine(f"sqlite:///{path}")
    token = sqlite_begin_mode.set(LAZY)
    yield engine
    sqlite_begin_mode.reset(token)
    engine.dispose()


def _another_writer_is_locked_out(engine) -> bool:
    """Whether a second connection is refused the write lock right now."""
    other = sqlite3.connect(engine.url.database, timeout=0, isolation_level=None)
    try:
        other.execute("BEGIN IMMEDIATE")
    except sqlite3.OperationalError as exc:
        assert "locked" in str(exc)
        return True
    else:
        other.execute("ROLLBACK")
        return False
    finally:
        other.close()


@pytest.mark.parametrize("kind", sorted(WRITES))
def test_a_statement_that_writes_takes_the_lock_first(engine, kind):
    write, read_back, before = WRITES[kind]
    with engine.connect() as conn:
        conn.begin()
        conn.execute(text(write))
        assert conn.connection.dbapi_connection.in_transaction, f"{kind} ran outside BEGIN"
        assert _another_writer_is_locked_out(engine)
        conn.rollback()
        assert conn.execute(text(read_back)).scalar() == before, f"{kind} survived a rollback"
    assert not _another_writer_is_locked_out(engine)


def test_a_plain_select_does_not_take_the_lock(engine):
    with engine.connect() as conn:
        conn.begin()
        assert conn.execute(text("SELECT count(*) FROM note")).scalar() == 0
        assert not conn.connection.dbapi_connection.in_transaction
        assert not _another_writer_is_locked_out(engine)
        conn.rollback()
