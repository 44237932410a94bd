"""Every role's estimate for one assignment of the arms: the registry's chosen estimator
of each role run on the trial (and, per moderator, on the rows that have it). The
analysis pipeline runs it once; randomization inference once per re-randomization."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import experiments.analysis.estimators  # noqa: F401  (registers every estimator)
from experiments.analysis.registry import choose
from experiments.analysis.results import Effect, Interaction, Slope, SubgroupEffect
from experiments.analysis.trial import Design, Trial


@dataclass(frozen=True)
class Estimates:
    """Everything the registry's estimators produced for one assignment of the arms."""

    effects: list[Effect]
    adjusted: list[Effect]
    subgroups: list[SubgroupEffect]
    interactions: list[Interaction]
    slopes: list[Slope]


ROLES = frozenset({"effects", "adjusted", "subgroups", "slopes"})


def estimate_all(
    trial: Trial, design: Design, moderators: Sequence, roles: frozenset[str] = ROLES
) -> Estimates:
    """Run the chosen estimator of every role (or of the `roles` given) on the trial."""
    effects = choose("effects", design)(trial, design) if "effects" in roles else []
    adjusted = []
    if "adjusted" in roles and trial.covariates.shape[1]:
        adjusted = choose("adjusted", design)(trial, design)
    subgroups: list[SubgroupEffect] = []
    tests: list[Interaction] = []
    slopes: list[Slope] = []
    for m in moderators:
        sub, mask = trial.for_moderator(m)
        sub_design = design.subset(mask)
        if "subgroups" in roles:
            het = choose("subgroups", sub_design)(sub, sub_design)
            subgroups.extend(het.subgroups)
            tests.extend(het.interactions)
        if "slopes" in roles and m.values is not None:
            slopes.extend(choose("slopes", sub_design)(sub, sub_design))
    return Estimates(effects, adjusted, subgroups, tests, slopes)
