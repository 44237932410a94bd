"""`nudge power FILE`: simulation-based power of a campaign design file (no database).

Reads the design (experiments.design.load_design), simulates it DeclareDesign-style,
analysing every simulated trial with the estimators the report uses, and prints the power
for the main effect of each arm (beside its analytic value, the design effect included for
cluster designs: `--icc R --cluster-size M`) and each pre-registered interaction, with the
analytic sample size and minimum detectable effect. A progress bar runs on stderr when it
is a terminal (or with `--progress`).
"""

from __future__ import annotations

import json

import click

from nudge_app.cli.progress import progress as make_progress


@click.command("power")
@click.argument("path", metavar="FILE", type=click.Path(dir_okay=False))
@click.option(
    "--simulations",
    default=500,
    show_default=True,
    type=click.IntRange(10, 100_000),
    help="Simulated trials.",
)
@click.option(
    "--n",
    "n_total",
    default=None,
    type=click.IntRange(4, 10_000_000),
    help="Participants in all (default: the design's planned_sample_size, else "
    "the analytic sample size).",
)
@click.option(
    "--effect",
    default=None,
    type=float,
    help="True average effect per message arm (default: the plan's minimum_effect).",
)
@click.option(
    "--heterogeneity",
    default=0.5,
    show_default=True,
    type=click.FloatRange(0, 1),
    help="Effect spread across moderator levels: from (1-h) to (1+h) times the "
    "effect, lowest to highest level.",
)
@click.option(
    "--icc",
    default=None,
    type=click.FloatRange(0, 1, max_open=True),
    metavar="R",
    help="Intra-cluster correlation of the outcome (cluster designs; default 0.05).",
)
@click.option(
    "--cluster-size",
    default=None,
    type=click.IntRange(2, 100_000),
    metavar="M",
    help="People per randomized cluster: simulates a cluster design and inflates the "
    "analytic variance by the design effect 1 + (M - 1) R.",
)
@click.option("--seed", default=0, show_default=True, type=int)
@click.option(
    "--progress/--no-progress",
    default=None,
    help="Progress bar on stderr (default: only when stderr is a terminal).",
)
@click.option(
    "--format", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True
)
@click.option(
    "--spillover",
    default=None,
    type=float,
    help="Saturation designs: true spillover on untreated members of offered clusters "
    "(default: the plan's minimum_spillover, else half the effect).",
)
@click.option(
    "--prior-from-evidence",
    "prior_from_evidence",
    is_flag=True,
    help="Also give each arm's assurance: power averaged over the effects earlier "
    "campaigns with its mechanism found (the council's evidence library; reads the "
    "database), saying how many campaigns it rests on.",
)
@click.option(
    "--council",
    "council_slug",
    default=None,
    help="Council whose evidence library --prior-from-evidence reads (needed when there "
    "are several).",
)
def command(
    path,
    simulations,
    n_total,
    effect,
    heterogeneity,
    icc,
    cluster_size,
    seed,
    progress,
    fmt,
    spillover,
    prior_from_evidence=False,
    council_slug=None,
):
    """Power of a campaign design FILE by simulation, with analytic power, sample size and
    MDE (`--icc R --cluster-size M` for a cluster design)."""
    from experiments.design import DesignError, load_design
    from experiments.power import simulate_power

    try:
        design = load_design(path)
    except DesignError as exc:
        problems = "; ".join(str(p) for p in exc.problems[:5])
        more = f" (and {len(exc.problems) - 5} more)" if len(exc.problems) > 5 else ""
        raise click.ClickException(f"{path}: {problems}{more}") from None
    if design.randomization.saturations:
        from nudge_app.cli.power_saturation import saturation_power

        try:
            result = saturation_power(
                path, design, n_total, simulations, seed, effect, spillover, icc, cluster_size
            )
        except ValueError as exc:  # e.g. an ICC of 0, which a saturation design cannot use
            raise click.ClickException(f"{path}: {exc}") from None
        click.echo(
            json.dumps(result.to_dict(), indent=2, allow_nan=False)
            if fmt == "json"
            else result.to_text()
        )
        return
    bar = make_progress(simulations, "Simulating trials", progress)
    try:
        result = simulate_power(
            design,
            n_total=n_total,
            simulations=simulations,
            seed=seed,
            heterogeneity=heterogeneity,
            effect=effect,
            icc=icc,
            cluster_size=cluster_size,
            progress=bar.update if bar else None,
        )
    except ValueError as exc:
        raise click.ClickException(f"{path}: {exc}") from None
    finally:
        if bar:
            bar.close()
    rows = []
    if prior_from_evidence:
        from nudge_app.cli.power_evidence import evidence_assurance

        rows = evidence_assurance(design, result, council_slug)
    rules = design.eligibility.require if design.eligibility else []
    if fmt == "json":
        data = result.to_dict()
        if prior_from_evidence:
            data["assurance"] = [r.to_dict() for r in rows]
        if rules:
            data["eligibility"] = list(rules)  # the sample sizes count eligible residents
        click.echo(json.dumps(data, indent=2, allow_nan=False))
    else:
        click.echo(result.to_text())
        if rules:
            click.echo(
                "Sample sizes count eligible residents: the design's eligibility rules ("
                + "; ".join(rules)
                + ") screen the others out before randomization, so more must answer the "
                "baseline."
            )
        if prior_from_evidence:
            from experiments.evidence.assurance import assurance_text

            click.echo(assurance_text(rows))
