"""Linear interaction slopes: the change in an arm's effect per unit of a numeric
moderator (per year of age, per point of self-efficacy).

The outcome on arm indicators, the centred moderator and every arm x moderator product,
formed within strata when the trial was stratified (cell intercepts per arm x stratum,
tiny strata pooled), weighted by inverse probabilities where they differ, with HC2 and
N - K df, or CR2 and Bell-McCaffrey df with clusters. The slope is the arm's moderator
coefficient minus control's.
"""

from __future__ import annotations

import math

import numpy as np

from experiments.analysis.linear import DegenerateDesign
from experiments.analysis.registry import register
from experiments.analysis.results import Slope, inference
from experiments.analysis.saturated import (
    cells_of,
    centred,
    describe,
    fit_arms,
    infer,
    inverse_probability,
)
from experiments.analysis.strata import pool_strata
from experiments.analysis.trial import Design, Trial


@register("slopes", "linear_interaction", applies=lambda d: True, priority=0)
def linear_interaction_slopes(trial: Trial, design: Design) -> list[Slope]:
    m = trial.moderator
    if m is None or m.values is None:
        return []
    pooled = pool_strata(trial, design) if design.stratified else None
    weighted = design.weighted or bool(pooled and pooled.weighted)
    cells = cells_of(None if pooled is None else pooled.codes, trial.n)
    reference = describe(design, weighted, cells.count)
    k = len(trial.arms)
    nan = math.nan

    def failed(message: str) -> list[Slope]:
        return [
            Slope(
                m.name, trial.arms[j], nan, nan, nan, nan, nan, nan, m.family, "degenerate", message
            )
            for j in range(1, k)
        ]

    try:
        fit = fit_arms(
            trial,
            cells,
            dense=centred(m.values[:, None]),
            weight=inverse_probability(design, weighted),
        )
    except DegenerateDesign:
        return failed(f"{m.name} does not vary within an arm (or a stratum of one)")
    slope = np.zeros((k, fit.k))
    for a in range(k):
        slope[a, fit.offsets[a] + cells.count] = 1.0
    try:
        res = infer(fit, slope[1:] - slope[0], design, design.clusters)
    except DegenerateDesign as exc:
        return failed(f"a participant alone at their {m.name} value in an arm: {exc}")
    out = []
    for j in range(1, k):
        var = float(res.covariance[j - 1, j - 1])
        if not var > 0:
            out.extend(failed(f"{m.name}: no variation to estimate the slope")[j - 1 : j])
            continue
        inf = inference(
            float(res.estimates[j - 1]), math.sqrt(var), float(res.df[j - 1]), design.alpha
        )
        out.append(
            Slope(
                m.name,
                trial.arms[j],
                inf.estimate,
                inf.std_error,
                inf.ci_low,
                inf.ci_high,
                inf.p_value,
                inf.df,
                m.family,
                reference=reference,
            )
        )
    return out
