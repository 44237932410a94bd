"""Whom a report is about: the eligible population beside everyone assessed for eligibility,
by age band, self-efficacy band and baseline individual and collective co-production, with
a sentence that says so.

A campaign with eligibility rules estimates its effects for the residents the rules admit,
not for everyone who answered the baseline: an evaluator reading the estimate needs to see
how that target group differs from all who were assessed. `describe(frame, ...)` takes one
row per assessed resident (their baseline values and whether they were eligible) and
returns the counts and shares of both populations, level by level, with "not known" where
an answer is missing. Pure: pandas in, plain values out.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from experiments import baseline
from experiments.bands import BandSpec

NOT_KNOWN = "not known"
# How many individual co-production activities a person already does: none, one, several.
INDIVIDUAL_BANDS = BandSpec("individual_coproduction", (1.0, 2.0), ("none", "one", "two or more"))


@dataclass(frozen=True)
class PopulationRow:
    """One level of one variable: how many of the assessed and of the eligible have it."""

    variable: str
    level: str
    assessed: int
    eligible: int
    assessed_share: float | None
    eligible_share: float | None

    def to_dict(self) -> dict[str, Any]:
        return {
            "variable": self.variable,
            "level": self.level,
            "assessed": self.assessed,
            "assessed_share": self.assessed_share,
            "eligible": self.eligible,
            "eligible_share": self.eligible_share,
        }


@dataclass(frozen=True)
class Population:
    """The eligible population beside the assessed one, with the sentence that says whom
    the report's estimates are about."""

    assessed: int
    eligible: int
    rules: list[str]
    rows: list[PopulationRow] = field(default_factory=list)

    @property
    def sentence(self) -> str:
        if not self.rules:
            return (
                f"The estimates are about everyone who answered the baseline and was "
                f"randomized ({self.eligible:,} residents): the campaign had no eligibility "
                "rules."
            )
        share = f" ({self.eligible / self.assessed:.0%})" if self.assessed else ""
        return (
            f"The estimates are about the residents the campaign was aimed at, those who met "
            f"every eligibility rule ({'; '.join(self.rules)}): {self.eligible:,} of the "
            f"{self.assessed:,} assessed{share}. They do not describe the effect on residents "
            "who were screened out; the table shows how the two groups differ."
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "assessed": self.assessed,
            "eligible": self.eligible,
            "rules": list(self.rules),
            "sentence": self.sentence,
            "rows": [row.to_dict() for row in self.rows],
        }


def describe_bands() -> list[BandSpec]:
    """The variables described, with their bands: the core moderators' declared bands (age,
    self-efficacy), individual co-production counted, collective co-production by answer."""
    specs = [v.bands for v in baseline.core_variables() if v.bands is not None]
    names = [v.name for v in baseline.variables()]
    if "individual_coproduction" in names:
        specs.append(INDIVIDUAL_BANDS)
    if "collective_coproduction" in names:
        specs.append(BandSpec("collective_coproduction"))
    return specs


def _labels(spec: BandSpec) -> list[str]:
    if spec.levels is not None:
        return list(spec.levels)
    variable = baseline.get(spec.column)
    return [str(o.value) for o in variable.options]


def _level_names(spec: BandSpec) -> dict[str, str]:
    """Readable names of a level-by-level variable's levels (its answers' labels)."""
    if spec.levels is not None:
        return {label: label for label in spec.levels}
    return {str(o.value): o.label for o in baseline.get(spec.column).options}


def describe(
    frame: pd.DataFrame,
    eligible: str = "eligible",
    rules: Sequence[str] = (),
    specs: Sequence[BandSpec] | None = None,
) -> Population:
    """Counts and shares of the assessed and the eligible, level by level.

    `frame` has one row per assessed resident, a boolean column `eligible` and the
    variables' values (missing ones are counted as "not known").
    """
    specs = describe_bands() if specs is None else list(specs)
    is_eligible = frame[eligible].fillna(False).astype(bool).to_numpy()
    n_assessed, n_eligible = len(frame), int(is_eligible.sum())
    rows: list[PopulationRow] = []
    for spec in specs:
        if spec.column not in frame.columns:
            continue
        levels = spec.assign(frame[spec.column]).fillna(NOT_KNOWN).astype(str).to_numpy()
        names = _level_names(spec)
        order = _labels(spec)
        if (levels == NOT_KNOWN).any():
            order = [*order, NOT_KNOWN]
        for level in order:
            here = levels == level
            a, e = int(here.sum()), int((here & is_eligible).sum())
            rows.append(
                PopulationRow(
                    spec.column,
                    names.get(level, level),
                    a,
                    e,
                    a / n_assessed if n_assessed else None,
                    e / n_eligible if n_eligible else None,
                )
            )
    return Population(n_assessed, n_eligible, list(rules), rows)
