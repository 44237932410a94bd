"""`nudge participants import|links|subject-access`: a campaign's participant list in,
personal links out, and everything held about one person (a subject-access request)."""

from __future__ import annotations

import sys

import click

from nudge_app.cli.common import app_context


@click.group("participants")
def command() -> None:
    """Import participants from CSV, write their personal links, answer subject access."""


@command.command("import")
@click.argument("slug")
@click.argument("file", type=click.Path(dir_okay=False, allow_dash=True))
@click.option("--council", "council_slug", help="The council's slug (if several use SLUG).")
@click.option(
    "--errors",
    "errors_path",
    type=click.Path(dir_okay=False, writable=True),
    help="Write the error report (row, column, problem) to this CSV file if rejected.",
)
def import_participants(
    slug: str, file: str, council_slug: str | None, errors_path: str | None
) -> None:
    """Import FILE (CSV) into campaign SLUG: every row is checked; one bad row imports nothing.

    Header: external_ref,first_name,email (required), then any of phone, the baseline
    variables' columns (age, birth_year, gender, se_safety, se_environment, se_health, ...:
    the console's import page and the README list them all), cluster, neighbourhood,
    consent_basis, locale. In a running list campaign the new people are randomized at once.
    """
    try:
        if file == "-":
            data = sys.stdin.buffer.read()
        else:
            with open(file, "rb") as fh:
                data = fh.read()
    except OSError as exc:
        raise click.ClickException(f"cannot read {file}: {exc.strerror or exc}") from None
    from nudge_app.services.campaigns import find_campaign
    from nudge_app.services.participants_import import ImportRejected, import_csv

    with app_context():
        campaign = find_campaign(slug, council_slug)
        try:
            result = import_csv(campaign, data, actor="cli")
        except ImportRejected as exc:
            if errors_path:
                from nudge_app.private_files import write_private

                write_private(errors_path, exc.report_csv())
            lines = [str(p) for p in exc.problems[:20]]
            more = exc.total - len(lines)
            raise click.ClickException(
                f"{file}: nothing was imported, {exc.total} problem(s):\n  "
                + "\n  ".join(lines)
                + (f"\n  ... and {more} more" if more > 0 else "")
                + (f"\nfull report: {errors_path}" if errors_path else "")
            ) from None
        click.echo(
            f"imported {result.imported} participant(s) into {campaign.slug}"
            + (f"; skipped {result.suppressed} suppressed" if result.suppressed else "")
            + (f"; randomized {result.randomized}" if result.randomized else "")
            + (
                f"; screened out {result.screened_out} by the eligibility rules"
                if result.screened_out
                else ""
            )
            + (f"; {result.messages} message(s) scheduled" if result.messages else "")
            + (f"; passed over {result.erased} erased" if result.erased else "")
            + (f"; read past {', '.join(result.read_past)}" if result.read_past else "")
        )


@command.command("links")
@click.argument("slug")
@click.option("--council", "council_slug", help="The council's slug (if several use SLUG).")
@click.option(
    "--out",
    "out_path",
    required=True,
    type=click.Path(dir_okay=False, writable=True, allow_dash=True),
    help="CSV file to write (external_ref,url); '-' for standard output.",
)
def links(slug: str, council_slug: str | None, out_path: str) -> None:
    """Write every participant's personal link (for a mail merge) as external_ref,url."""
    from flask import current_app
    from sqlalchemy import select

    from experiments import csv_cells
    from nudge_app.extensions import db
    from nudge_app.models import Participant
    from nudge_app.private_files import open_private
    from nudge_app.security import participant_token
    from nudge_app.services.campaigns import find_campaign

    with app_context(commit=False):
        campaign = find_campaign(slug, council_slug)
        base = current_app.config["BASE_URL"].rstrip("/")
        key = current_app.config["SECRET_KEY"]
        rows = db.session.execute(
            select(Participant.external_ref, Participant.access_nonce)
            .where(Participant.campaign_id == campaign.id, Participant.erased_at.is_(None))
            .order_by(Participant.id)
        )
        # Personal links open people's pages: the file is readable by its owner only.
        out = (
            sys.stdout
            if out_path == "-"
            else open_private(out_path, "w", encoding="utf-8", newline="")
        )
        n = 0
        try:
            writer = csv_cells.writer(out)
            writer.writerow(["external_ref", "url"])
            for ref, nonce in rows:
                writer.writerow([ref or "", f"{base}/p/{participant_token(key, nonce)}"])
                n += 1
        finally:
            if out is not sys.stdout:
                out.close()
        if out_path != "-":
            click.echo(f"wrote {n} link(s) to {out_path}")


@command.command("subject-access")
@click.option("--council", "council_slug", required=True, help="The council's slug.")
@click.option("--contact", required=True, help="The person's email address or phone number.")
@click.option(
    "--out",
    "out_path",
    type=click.Path(dir_okay=False, writable=True),
    help="Write the JSON here (readable by you only) instead of standard output.",
)
def subject_access(council_slug: str, contact: str, out_path: str | None) -> None:
    """Everything the council holds about one person, across its campaigns, as JSON
    (a subject-access request). The request is recorded in the audit log."""
    import json

    from nudge_app.cli.common import council_or_fail
    from nudge_app.services.subject_access import document

    with app_context():
        found = document(council_or_fail(council_slug), contact, actor="cli")
        text = json.dumps(found, indent=2, ensure_ascii=False, sort_keys=True) + "\n"
        if out_path:
            from nudge_app.private_files import write_private

            write_private(out_path, text)
            click.echo(f"wrote {len(found['records'])} record(s) to {out_path}", err=True)
        else:
            click.echo(text, nl=False)
