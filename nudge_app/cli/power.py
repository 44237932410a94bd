"""`nudge power FILE`: simulation-based power of a campaign design file (no database).

Reads the design (experiments.design.load_design), simulates it DeclareDesign-style and
prints the power for the main effect of each arm and each pre-registered interaction,
with the analytic sample size and minimum detectable effect beside them.
"""

from __future__ import annotations

import json

import click


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
@click.option("--seed", default=0, show_default=True, type=int)
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
    "--icc",
    default=None,
    type=click.FloatRange(0, 1, min_open=True, max_open=True),
    help="Saturation designs: intra-cluster correlation of the outcome (default 0.05).",
)
@click.option(
    "--cluster-size",
    default=None,
    type=click.IntRange(1, 100_000),
    help="Saturation designs: members per cluster (default: by the design's cluster kind).",
)
def command(
    path, simulations, n_total, effect, heterogeneity, seed, fmt, spillover, icc, cluster_size
):
    """Power of a campaign design FILE by simulation, with analytic sample size and MDE."""
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

        result = saturation_power(
            path, design, n_total, simulations, seed, effect, spillover, icc, cluster_size
        )
        click.echo(
            json.dumps(result.to_dict(), indent=2, allow_nan=False)
            if fmt == "json"
            else result.to_text()
        )
        return
    try:
        result = simulate_power(
            design,
            n_total=n_total,
            simulations=simulations,
            seed=seed,
            heterogeneity=heterogeneity,
            effect=effect,
        )
    except ValueError as exc:
        raise click.ClickException(f"{path}: {exc}") from None
    if fmt == "json":
        click.echo(json.dumps(result.to_dict(), indent=2, allow_nan=False))
    else:
        click.echo(result.to_text())
