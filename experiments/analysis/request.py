"""What every analysis of one trial shares, and the engine's request built from it.

The primary analysis, each secondary outcome's effects and the further analyses
(`TrialColumns`) of one trial read the same design columns (arm, control, covariates,
stratum, cluster, recorded probability) with the same alpha and correction. `nudge
analyze` and the campaign report state them once, as a `TrialSettings`, and every call
into the engine is made from it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pandas as pd

from experiments.analysis.adjustment import TrialColumns
from experiments.analysis.engine import analyze
from experiments.analysis.multiplicity import Correction
from experiments.analysis.results import Effect


@dataclass(frozen=True)
class TrialSettings:
    """A trial's design columns and inference settings."""

    arm: str
    control: str
    covariates: tuple[str, ...] = ()
    block: str | None = None
    cluster: str | None = None
    probability: str | None = None
    alpha: float = 0.05
    correction: Correction = "holm"

    def engine_arguments(self) -> dict[str, Any]:
        """The keyword arguments of `analyze` these settings fix."""
        return dict(
            arm=self.arm,
            control=self.control,
            covariates=list(self.covariates),
            block=self.block,
            cluster=self.cluster,
            probability=self.probability,
            alpha=self.alpha,
            correction=self.correction,
        )

    def columns(self) -> TrialColumns:
        """The same design for the further analyses (mediation, bounds, CACE, panels)."""
        return TrialColumns(
            arm=self.arm,
            control=self.control,
            covariates=tuple(self.covariates),
            stratum=self.block,
            probability=self.probability,
            cluster=self.cluster,
        )

    def effects(self, frame: pd.DataFrame, outcome: str, **engine: Any) -> list[Effect]:
        """Each arm's effect on `outcome` (a secondary outcome: no flow columns); `engine`
        adds keyword arguments of `analyze` these settings leave open (e.g. weights)."""
        arguments = self.engine_arguments()
        return analyze(frame, outcome=outcome, flow_columns=False, **arguments, **engine).effects
