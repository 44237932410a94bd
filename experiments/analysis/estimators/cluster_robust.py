"""Cluster-robust effects: for a trial that randomized clusters (households, streets).

The difference of (stratum-standardized, weighted where probabilities call for it) arm
means with CR2 standard errors (Bell and McCaffrey 2002) and t with Bell-McCaffrey
degrees of freedom, as estimatr's `lm_robust(se_type = "CR2")` and clubSandwich. With
few clusters the df fall far below G - 1 and the intervals widen accordingly.
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


@register("effects", "cluster_robust", applies=lambda design: design.clustered, priority=30)
def cluster_robust_effects(trial: Trial, design: Design) -> list[Effect]:
    pooled = design.pooled
    weighted = design.weighted or bool(pooled and pooled.weighted)
    return standardized_effects(
        trial,
        design,
        cells_of(None if pooled is None else pooled.codes, trial.n),
        "cluster_robust",
        describe(design, weighted, None if pooled is None else pooled.count),
        weight=inverse_probability(design, weighted),
    )
