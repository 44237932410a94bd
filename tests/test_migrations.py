"""The migrated schema equals the models: no pending autogenerate difference."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import create_engine, inspect

from nudge_app.cli.db import current_revision, upgrade
from nudge_app.db import Base


def _diff(url: str) -> list:
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            ctx = MigrationContext.configure(conn, opts={"compare_type": True})
            return compare_metadata(ctx, Base.metadata)
    finally:
        engine.dispose()


def test_new_sqlite_file_upgrades_and_matches_models(tmp_path, schema_head):
    url = f"sqlite:///{tmp_path / 'new' / 'nudge.sqlite3'}"
    upgrade(url)
    assert current_revision(url) == schema_head
    assert _diff(url) == []
    engine = create_engine(url)
    try:
        tables = set(inspect(engine).get_table_names())
    finally:
        engine.dispose()
    assert {
        "council",
        "campaign",
        "arm",
        "participant",
        "assignment",
        "outbound_message",
        "event",
        "survey_response",
        "audit_entry",
        "api_token",
        "staff_user",
    } <= tables


def test_new_postgresql_database_upgrades_and_matches_models(pg_url, schema_head):
    assert current_revision(pg_url) == schema_head
    assert _diff(pg_url) == []


def test_upgrade_twice_is_a_no_op(tmp_path, schema_head):
    url = f"sqlite:///{tmp_path / 'nudge.sqlite3'}"
    upgrade(url)
    upgrade(url)
    assert current_revision(url) == schema_head
