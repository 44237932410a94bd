"""`nudge report SLUG`: write a campaign's effect report from the database (JSON, HTML, CSV)."""

from __future__ import annotations

import click


@click.command("report")
@click.argument("slug")
@click.option(
    "--council",
    "council_slug",
    default=None,
    help="Council slug, when several councils use the campaign slug.",
)
@click.option(
    "--format", "fmt", type=click.Choice(["json", "html", "csv"]), default="json", show_default=True
)
@click.option(
    "--outcome",
    default=None,
    help="Outcome to analyse instead of the plan's primary outcome (exposed, joined, "
    "participated, self_efficacy_followup).",
)
@click.option("--out", default=None, metavar="PATH", help="Write here instead of stdout.")
def command(slug, council_slug, fmt, outcome, out):
    """Write campaign SLUG's effect report from the database."""
    from experiments.design import OUTCOMES
    from nudge_app.cli.common import app_context

    if outcome is not None and outcome not in OUTCOMES:
        raise click.ClickException(f"--outcome {outcome!r}: must be one of {', '.join(OUTCOMES)}")
    with app_context(commit=False):
        from nudge_app.services.campaigns import find_campaign
        from nudge_app.services.reporting import campaign_report

        campaign = find_campaign(slug, council_slug)
        text = campaign_report(campaign, outcome).render(fmt)
    if out:
        try:
            with open(out, "w", encoding="utf-8", newline="") as fh:
                fh.write(text)
        except OSError as exc:
            raise click.ClickException(f"--out {out}: cannot write: {exc.strerror}") from None
    else:
        click.echo(text, nl=not text.endswith("\n"))
