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
@click.option(
    "--randomization-inference",
    "draws",
    default=None,
    type=click.IntRange(min=0),
    metavar="N",
    help="Re-randomizations for randomization-inference p-values (default: the analysis "
    "plan's `randomization_inference`, if any).",
)
@click.option("--seed", default=0, show_default=True, type=int, help="Seed of the draws.")
def command(slug, council_slug, fmt, outcome, out, draws, seed):
    """Write campaign SLUG's effect report from the database."""
    from experiments.design import OUTCOMES
    from nudge_app.cli.analyze import progress_bar, write_report
    from nudge_app.cli.common import app_context

    if outcome is not None and outcome not in OUTCOMES:
        raise click.ClickException(f"--outcome {outcome!r}: must be one of {', '.join(OUTCOMES)}")
    with app_context(commit=False):
        from nudge_app.services.campaigns import find_campaign
        from nudge_app.services.reporting import campaign_plan_draws, campaign_report

        campaign = find_campaign(slug, council_slug)
        planned = campaign_plan_draws(campaign)
        n = planned if draws is None else draws
        bar = progress_bar(n)
        try:
            report = campaign_report(
                campaign, outcome, n, seed, progress=bar.update if bar else None
            )
        finally:
            if bar:
                bar.close()
        text = report.render(fmt)
    write_report(text, out, fmt)
