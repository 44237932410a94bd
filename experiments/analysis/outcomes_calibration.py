"""Calibration of the outcome analyses by simulation: run many campaigns through the
simulator (known true effects on every outcome and the true mediated effect) and count
how often the 95% intervals cover the truth.

Each campaign: `n` residents from `experiments.simulate`, blocked randomization over the
design's age x self-efficacy strata (equal arms), their responses; then
- verified attendance (`attended`, known for everyone): the blocked difference in means
  of `analyze`;
- individual and collective co-production (follow-up survey, answered more often by those
  who joined): the response-weighted Lin estimate (covariates age, self-efficacy, the
  strata and the outcome's baseline value), response modelled on `joined` and baseline
  age and self-efficacy within each arm;
- the mediated effect on collective co-production through follow-up self-efficacy:
  `mediation` on the respondents, weighted by the same response weights, covariates the
  baseline items, age and baseline collective co-production, strata as indicators.
The truth is the simulator's sample average effect over the campaign's residents
(`true_effects_by_outcome`, `true_mediated`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from experiments.analysis.adjustment import TrialColumns
from experiments.analysis.engine import analyze
from experiments.analysis.mediation import mediation
from experiments.analysis.nonresponse import response_weighted_effects, response_weights
from experiments.bands import DEFAULT_AGE_BANDS, DEFAULT_SELF_EFFICACY_BANDS
from experiments.randomization import Allocation, block_ra, stratify
from experiments.simulate import (
    CATALOG_EFFECTS,
    SELF_EFFICACY_ITEMS,
    SimulationParams,
    simulate_population,
    simulate_responses,
    true_effects_by_outcome,
    true_mediated,
)

TARGETS = ("attended", "individual_coproduction", "collective_coproduction", "mediated")
RESPONSE_COVARIATES = ("joined", "age", "self_efficacy")
MEDIATION_COVARIATES = (*SELF_EFFICACY_ITEMS, "age", "collective_baseline")


@dataclass
class Tally:
    """Intervals counted and covering, per target."""

    intervals: dict[str, int] = field(default_factory=lambda: dict.fromkeys(TARGETS, 0))
    covered: dict[str, int] = field(default_factory=lambda: dict.fromkeys(TARGETS, 0))

    def rate(self, target: str) -> float:
        n = self.intervals[target]
        return self.covered[target] / n if n else math.nan


def campaign_frame(
    n: int, seed: int, effects: dict, params: SimulationParams | None = None
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """One simulated campaign: the analysis frame (one row per resident) and the population."""
    population = simulate_population(n, seed=seed, params=params)
    strata = stratify(
        {"age": population["age"], "self_efficacy": population["self_efficacy"]},
        [DEFAULT_AGE_BANDS, DEFAULT_SELF_EFFICACY_BANDS],
    )
    arms = list(effects)
    arm = np.asarray(arms, dtype=object)[block_ra(strata.codes, Allocation.equal(arms), seed)]
    r = simulate_responses(population, arm, effects, seed=seed + 1, params=params)
    frame = pd.DataFrame(
        {
            "arm": arm,
            "stratum": np.asarray(strata.labels, dtype=object)[strata.codes],
            "age": population["age"],
            "self_efficacy": population["self_efficacy"],
            **{item: population[item] for item in SELF_EFFICACY_ITEMS},
            "collective_baseline": population["collective_coproduction"],
            "individual_baseline": population["individual_coproduction"],
            "joined": r["joined"],
            "attended": r["attended"],
            "surveyed": r["surveyed"],
            "self_efficacy_followup": r["self_efficacy_followup"],
            "individual_coproduction": r["individual_coproduction"],
            "collective_coproduction": r["collective_coproduction"],
        }
    )
    return frame, population


def intervals(frame: pd.DataFrame, seed: int, simulations: int = 1000) -> dict:
    """{(target, arm): (ci_low, ci_high)} for one campaign's frame."""
    out = {}
    attended = analyze(frame, arm="arm", control="control", outcome="attended", block="stratum")
    for e in attended.effects:
        out[("attended", e.arm)] = (e.ci_low, e.ci_high)
    cols = TrialColumns(covariates=("age", "self_efficacy"), stratum="stratum")
    for outcome, baseline in (
        ("individual_coproduction", "individual_baseline"),
        ("collective_coproduction", "collective_baseline"),
    ):
        for w in response_weighted_effects(
            frame, cols, outcome, RESPONSE_COVARIATES, response="surveyed", baseline=baseline
        ):
            out[(outcome, w.arm)] = (w.estimate.ci_low, w.estimate.ci_high)
    frame = frame.assign(
        response_weight=response_weights(frame, cols, "surveyed", RESPONSE_COVARIATES)
    )
    med_cols = TrialColumns(covariates=MEDIATION_COVARIATES, stratum="stratum")
    for m in mediation(
        frame,
        med_cols,
        "collective_coproduction",
        "self_efficacy_followup",
        weights="response_weight",
        simulations=simulations,
        seed=seed,
    ):
        out[("mediated", m.arm)] = (m.acme_ci_low, m.acme_ci_high)
    return out


def coverage(
    campaigns: int = 200,
    n: int = 5000,
    slug: str = "self-efficacy-cleanup",
    seed: int = 0,
    params: SimulationParams | None = None,
) -> Tally:
    """Coverage of the 95% intervals over `campaigns` simulated campaigns of `n` residents."""
    effects = CATALOG_EFFECTS[slug]
    tally = Tally()
    for k in range(campaigns):
        s = seed * 1_000_003 + k
        frame, population = campaign_frame(n, s, effects, params)
        truth = true_effects_by_outcome(population, effects, params=params, outcomes=TARGETS[:3])
        truth["mediated"] = true_mediated(population, effects, params=params)
        for (target, arm), (low, high) in intervals(frame, s).items():
            tally.intervals[target] += 1
            tally.covered[target] += int(low <= truth[target][arm] <= high)
    return tally
