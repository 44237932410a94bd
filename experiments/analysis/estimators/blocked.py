"""Blocked (stratified) difference in means: for a trial randomized within strata.

tau = sum_j (N_j/N) tau_j over strata j (N_j counts every arm's rows), Var = sum_j
(N_j/N)^2 Var_j, i.e. the contrast of standardized means of the arm x stratum cell-means
regression with HC2 (t with N - K df). Tiny strata are pooled first (strata.py); a pool
that mixes probabilities weights rows by their inverse probability.
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
    "blocked",
    applies=lambda design: design.stratified and not design.clustered,
    priority=20,
)
def blocked_effects(trial: Trial, design: Design) -> list[Effect]:
    pooled = design.pooled
    assert pooled is not None
    weighted = pooled.weighted or design.weighted
    return standardized_effects(
        trial,
        design,
        cells_of(pooled.codes, trial.n),
        "blocked",
        describe(design, weighted, pooled.count),
        weight=inverse_probability(design, weighted),
    )
