"""Spillover effects of a randomized saturation design (the design gives each row its
cluster's saturation): direct, spillover and total effects of each arm per saturation
against pure-control clusters, by saturation-indicator OLS with CR2 by cluster and
Bell-McCaffrey df (`experiments/analysis/spillover.py`)."""

from __future__ import annotations

from experiments.analysis.registry import register
from experiments.analysis.spillover import SpilloverEffect, spillover_effects
from experiments.analysis.trial import Design, Trial


@register(
    "spillover",
    "saturation_ols",
    applies=lambda design: design.saturation is not None and design.clustered,
)
def saturation_spillover(trial: Trial, design: Design) -> list[SpilloverEffect]:
    """Each treatment arm against the control arm: rows of other arms are left out."""
    assert design.saturation is not None and design.clusters is not None
    out: list[SpilloverEffect] = []
    for k in range(1, len(trial.arms)):
        rows = (trial.arm == 0) | (trial.arm == k)
        out.extend(
            spillover_effects(
                trial.y[rows],
                trial.arm[rows] == k,
                design.saturation[rows],
                design.clusters[rows],
                arm=trial.arms[k],
                alpha=design.alpha,
            )
        )
    return out
