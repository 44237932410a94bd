"""`nudge campaign validate|create|export|list|launch|pause|resume|close`."""

from __future__ import annotations

import sys

import click

from experiments.design import DesignError, design_to_toml, load_design


@click.group("campaign")
def command() -> None:
    """Campaign design files and the campaign lifecycle."""


@command.command("validate")
@click.argument("file", type=click.Path(dir_okay=False))
def validate(file: str) -> None:
    """Check a campaign design FILE; list every problem with its field path."""
    try:
        design = load_design(file)
    except DesignError as exc:
        click.echo(f"{file}: {len(exc.problems)} problem(s)", err=True)
        for problem in exc.problems:
            click.echo(f"  {problem}", err=True)
        sys.exit(1)
    arms = ", ".join(arm.key + (" (control)" if arm.control else "") for arm in design.arms)
    click.echo(f"{file}: valid. {design.name!r}, {design.enrolment_mode} enrolment, arms: {arms}")


@command.command("create")
@click.argument("file", type=click.Path(dir_okay=False))
@click.option("--council", "council_slug", required=True, help="The council's slug.")
def create(file: str, council_slug: str) -> None:
    """Store the design FILE as a draft campaign; prints the new campaign's slug last."""
    try:
        design = load_design(file)
    except DesignError as exc:
        raise click.ClickException(
            f"{file} is not a valid design:\n" + "\n".join(f"  {p}" for p in exc.problems)
        ) from None
    from nudge_app.cli.common import app_context, council_or_fail
    from nudge_app.services.campaigns import create_campaign

    with app_context():
        council = council_or_fail(council_slug)
        campaign = create_campaign(council, design, actor="cli")
        slug = campaign.slug
    click.echo(f"created draft campaign {design.name!r} for {council_slug}: {slug}")


@command.command("export")
@click.argument("slug")
@click.option("--council", "council_slug", help="The council's slug (if several use SLUG).")
def export(slug: str, council_slug: str | None) -> None:
    """Print a campaign's design file (TOML)."""
    from nudge_app.cli.common import app_context
    from nudge_app.services.campaigns import design_of, find_campaign

    with app_context(commit=False):
        text = design_to_toml(design_of(find_campaign(slug, council_slug)))
    click.echo(text, nl=False)


@command.command("list")
@click.option("--council", "council_slug", help="Only this council's campaigns.")
def list_campaigns(council_slug: str | None) -> None:
    """List campaigns with their status."""
    from sqlalchemy import select

    from nudge_app.cli.common import app_context
    from nudge_app.extensions import db
    from nudge_app.models import Campaign, Council

    with app_context(commit=False):
        query = select(Campaign, Council.slug).join(Council).order_by(Council.slug, Campaign.slug)
        if council_slug:
            query = query.where(Council.slug == council_slug)
        for campaign, council in db.session.execute(query):
            click.echo(f"{council}\t{campaign.slug}\t{campaign.status}\t{campaign.name}")


def _lifecycle(step: str):
    @command.command(step)
    @click.argument("slug")
    @click.option("--council", "council_slug", help="The council's slug (if several use SLUG).")
    def run(slug: str, council_slug: str | None) -> None:
        from nudge_app.cli.common import app_context
        from nudge_app.services import campaigns

        with app_context():
            campaign = campaigns.find_campaign(slug, council_slug)
            getattr(campaigns, f"{step}_campaign")(campaign, actor="cli")
            status = campaign.status
        click.echo(f"campaign {slug}: {status}")

    run.__doc__ = {
        "launch": "Launch SLUG: freeze its design, record the hash, start enrolment.",
        "pause": "Pause SLUG: stop enrolment and sending.",
        "resume": "Resume a paused campaign SLUG.",
        "close": "Close SLUG: no more enrolment or messages.",
    }[step]
    run.help = run.__doc__
    return run


for _step in ("launch", "pause", "resume", "close"):
    _lifecycle(_step)
