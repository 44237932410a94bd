"""`nudge council create|list`."""

from __future__ import annotations

import click

from nudge_app.cli.common import app_context


@click.group("council")
def command() -> None:
    """Create and list councils (tenants)."""


@command.command("create")
@click.argument("slug")
@click.option("--name", required=True, help="The council's name as residents know it.")
@click.option(
    "--timezone",
    default="Europe/London",
    show_default=True,
    help="IANA timezone for quiet hours and schedules.",
)
@click.option("--locale", default="en", show_default=True)
def create(slug: str, name: str, timezone: str, locale: str) -> None:
    """Create a council with the URL-safe SLUG."""
    from nudge_app.services.councils import create_council

    with app_context():
        council = create_council(slug, name, timezone=timezone, locale=locale)
        click.echo(f"created council {council.name!r}: {council.slug}")


@command.command("list")
def list_councils() -> None:
    """List councils."""
    from sqlalchemy import select

    from nudge_app.extensions import db
    from nudge_app.models import Council

    with app_context(commit=False):
        for council in db.session.scalars(select(Council).order_by(Council.slug)):
            click.echo(f"{council.slug}\t{council.name}\t{council.timezone}")
