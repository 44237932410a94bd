"""Lin (2013) covariate adjustment, interacted with the design.

The outcome on arm indicators, centred covariates (at everyone's means) and every arm x
centred covariate product; with strata, cell intercepts per arm x stratum as well (Lin
inside the strata, slopes shared across strata within an arm), standardized by the
strata's shares; with unequal probabilities and no strata, WLS with inverse-probability
weights. The effect is the difference of the arms' standardized means: HC2 and N - K df,
or CR2 and Bell-McCaffrey df with clusters. A missing covariate enters as its mean with a
missingness indicator (trial.py).
"""

from __future__ import annotations

from experiments.analysis.registry import register
from experiments.analysis.results import Effect
from experiments.analysis.saturated import (
    cells_of,
    centred,
    describe,
    inverse_probability,
    standardized_effects,
)
from experiments.analysis.trial import Design, Trial


def _lin(trial: Trial, design: Design, method: str) -> list[Effect]:
    pooled = design.pooled
    weighted = design.weighted or bool(pooled and pooled.weighted)
    codes = None if pooled is None else pooled.codes
    return standardized_effects(
        trial,
        design,
        cells_of(codes, trial.n),
        method,
        describe(design, weighted, None if pooled is None else pooled.count, adjusted=True),
        dense=centred(trial.covariates),
        weight=inverse_probability(design, weighted),
    )


@register("adjusted", "lin_cluster_robust", applies=lambda d: d.clustered, priority=30)
def lin_cluster_robust(trial: Trial, design: Design) -> list[Effect]:
    return _lin(trial, design, "lin_cluster_robust")


@register("adjusted", "lin_blocked", applies=lambda d: d.stratified, priority=20)
def lin_blocked(trial: Trial, design: Design) -> list[Effect]:
    return _lin(trial, design, "lin_blocked")


@register("adjusted", "lin_ipw", applies=lambda d: d.weighted, priority=10)
def lin_ipw(trial: Trial, design: Design) -> list[Effect]:
    return _lin(trial, design, "lin_ipw")


@register("adjusted", "lin", applies=lambda d: True, priority=0)
def lin(trial: Trial, design: Design) -> list[Effect]:
    return _lin(trial, design, "lin")
