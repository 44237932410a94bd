"""`nudge retention run [--dry-run]`: erase names and contacts past their retention period."""

from __future__ import annotations

from datetime import datetime

import click

from nudge_app.cli.common import app_context


@click.group("retention")
def command() -> None:
    """Erase names and contact details of closed campaigns past their retention period."""


@command.command("run")
@click.option("--dry-run", is_flag=True, help="Count who would be erased; change nothing.")
@click.option(
    "--now",
    "now_text",
    default=None,
    metavar="ISO-TIME",
    help="Act as if it were this time (UTC), e.g. 2027-06-01T00:00:00Z.",
)
def run(dry_run: bool, now_text: str | None) -> None:
    """Erase (or with --dry-run count) the names, contact details and references of every
    participant whose campaign closed more than its retention_days ago. The pseudonymous
    trial rows stay, so each campaign's report is unchanged. The scheduler runs this daily."""
    now = None
    if now_text:
        try:
            now = datetime.fromisoformat(now_text.replace("Z", "+00:00"))
        except ValueError:
            raise click.BadParameter(
                f"{now_text!r} is not an ISO time", param_hint="--now"
            ) from None
        if now.tzinfo is None:
            raise click.BadParameter("give a timezone, e.g. ...Z", param_hint="--now")
    from nudge_app.services.retention import run as run_retention

    with app_context(commit=not dry_run):
        result = run_retention(now, dry_run=dry_run, actor="cli")
        click.echo(result.summary())
