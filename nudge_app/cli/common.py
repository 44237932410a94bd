"""Helpers shared by CLI commands that need the app and its database."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import click


@contextlib.contextmanager
def app_context(commit: bool = True) -> Iterator:
    """Build the app from the environment and push its context: the command is one unit of
    work (`nudge_app.boundary`) that commits at the end (rolls back with `commit=False`, or
    if it fails).

    Domain errors (ValueError subclasses from the services) become one clear message.
    """
    from nudge_app.app import ConfigurationError, create_app

    try:
        app = create_app()
    except ConfigurationError as exc:
        raise click.ClickException(str(exc)) from None
    from nudge_app.boundary import unit_of_work
    from nudge_app.extensions import db

    with app.app_context():
        try:
            with unit_of_work(commit=commit):
                yield app
        except click.ClickException:
            raise
        except ValueError as exc:
            raise click.ClickException(str(exc)) from None
        except Exception as exc:
            from sqlalchemy.exc import OperationalError, ProgrammingError

            if isinstance(exc, OperationalError | ProgrammingError):
                raise click.ClickException(
                    f"database error: {exc.orig}. Is the database reachable and migrated "
                    "(`nudge db upgrade`)?"
                ) from None
            raise
        finally:
            db.session.remove()
            db.engine.dispose()  # a CLI command is short-lived: close its connections


def council_or_fail(slug: str):
    """The council with this slug, or one clear CLI error naming it."""
    from nudge_app.services.councils import council_by_slug

    council = council_by_slug(slug)
    if council is None:
        raise click.ClickException(f"no council with slug {slug!r} (see `nudge council list`)")
    return council
