"""`nudge power FILE` for a randomized saturation design: the design's saturations,
cluster kind and analysis plan turned into a power simulation of the direct and spillover
effects (`experiments.saturation_power`)."""

from __future__ import annotations

import math

import click


def saturation_power(
    path, design, n_total, simulations, seed, effect, spillover, icc, cluster_size
):
    from experiments.power import CLUSTER_SIZES
    from experiments.saturation_power import DEFAULT_ICC, simulate_saturation_power

    plan = design.analysis
    size = cluster_size or CLUSTER_SIZES.get(design.randomization.cluster or "cluster", 20)
    total = n_total or design.planned_sample_size
    if not total:
        raise click.ClickException(
            f"{path}: a saturation design needs its size: give --n or planned_sample_size"
        )
    direct = plan.minimum_effect if effect is None else effect
    if spillover is None:
        spillover = plan.minimum_spillover if plan.minimum_spillover else direct / 2
    try:
        return simulate_saturation_power(
            clusters=max(1, math.ceil(total / size)),
            cluster_size=size,
            saturations=design.randomization.saturations,
            baseline_rate=plan.baseline_rate,
            direct_effect=direct,
            spillover_effect=spillover,
            icc=DEFAULT_ICC if icc is None else icc,
            alpha=plan.alpha,
            simulations=simulations,
            seed=seed,
        )
    except ValueError as exc:
        raise click.ClickException(f"{path}: {exc}") from None
