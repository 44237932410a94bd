"""`nudge db upgrade|current`: apply Alembic revisions to the configured database."""

from __future__ import annotations

from pathlib import Path

import click

MIGRATIONS = Path(__file__).resolve().parents[2] / "migrations"


def alembic_config(url: str):
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return cfg


def upgrade(url: str, revision: str = "head") -> None:
    """Create or bring the database at `url` to `revision` (a new SQLite file is created)."""
    from alembic import command as alembic_command

    if url.startswith("sqlite:///"):
        Path(url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
    alembic_command.upgrade(alembic_config(url), revision)


def _url() -> str:
    from config import config_from_env

    return config_from_env().SQLALCHEMY_DATABASE_URI


@click.group("db")
def command() -> None:
    """Database schema: upgrade to the newest revision, show the current one."""


@command.command("upgrade")
@click.argument("revision", default="head")
def upgrade_command(revision: str) -> None:
    """Apply pending migrations (to REVISION, default the newest)."""
    from sqlalchemy.exc import OperationalError

    url = _url()
    try:
        upgrade(url, revision)
    except OperationalError as exc:
        raise click.ClickException(f"cannot reach the database: {exc.orig}") from None
    click.echo(f"database at revision {current_revision(url)}")


def current_revision(url: str) -> str | None:
    from alembic.runtime.migration import MigrationContext
    from sqlalchemy import create_engine

    import nudge_app.db  # noqa: F401  (SQLite connection settings)

    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            return MigrationContext.configure(conn).get_current_revision()
    finally:
        engine.dispose()


@command.command("current")
def current_command() -> None:
    """Print the database's schema revision."""
    click.echo(current_revision(_url()) or "(empty database)")
