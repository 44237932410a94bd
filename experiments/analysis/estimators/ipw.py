"""Inverse-probability weighted means (Hajek): for a trial whose recorded assignment
probabilities differ within an arm and that has no strata to compare within.

Each arm's mean weights its rows by 1 / (recorded probability of their arm); the effect
is the difference of weighted means, i.e. WLS of the outcome on the arms with those
weights, HC2 of the weighted regression, t with N - K df.
"""

from __future__ import annotations

from experiments.analysis.registry import register
from experiments.analysis.results import Effect
from experiments.analysis.saturated import (
    cells_of,
    describe,
    inverse_probability,
    standardized_effects,
)
from experiments.analysis.trial import Design, Trial


@register(
    "effects",
    "ipw",
    applies=lambda design: design.weighted and not design.stratified and not design.clustered,
    priority=10,
)
def ipw_effects(trial: Trial, design: Design) -> list[Effect]:
    return standardized_effects(
        trial,
        design,
        cells_of(None, trial.n),
        "ipw",
        describe(design, True, None),
        weight=inverse_probability(design, True),
    )
