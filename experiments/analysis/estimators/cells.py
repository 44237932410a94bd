"""Age x self-efficacy cells (role `cells`): each arm's effect in every cell of two banded
moderators, raw and partially pooled (empirical Bayes, `experiments.analysis.cell_pooling`),
with the targeting table, the cross-fitted gain from targeting and the calibration check of
the heterogeneity model (`experiments.analysis.targeting`, exploratory).

The input is the trial's rows that have both moderators (`CellData`); the raw effects are
formed within the randomization strata and weighted by recorded probabilities as the
headline is, so the estimator applies to every design without clusters (the cells'
variance is not cluster-robust: with clusters `choose` finds no estimator and the engine
says so).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from experiments.analysis.cell_pooling import CellData, CellTable, arm_cell_means, pool_cells
from experiments.analysis.empirical_bayes import PoolingError
from experiments.analysis.registry import register
from experiments.analysis.targeting import (
    BestArm,
    Calibration,
    TargetingError,
    TargetingGain,
    best_arms,
    calibration,
    targeting_gain,
)
from experiments.analysis.trial import Design

GAIN_FOLDS = 5
CALIBRATION_SPLITS = 20
CALIBRATION_GROUPS = 3


@dataclass
class CellAnalysis:
    """The cell table and what targeting makes of it; a part that could not be formed
    carries its reason in `messages` (keyed `gain`, `best_arms`, `calibration`)."""

    table: CellTable
    n: int  # rows in the cell table
    left_out: int  # analysable rows missing either moderator
    best_arms: list[BestArm] = field(default_factory=list)
    gain: TargetingGain | None = None
    calibration: list[Calibration] = field(default_factory=list)
    messages: dict[str, str] = field(default_factory=dict)
    seed: int = 0

    def targeting_dict(self) -> dict:
        return {
            "best_arms": [b.to_dict() for b in self.best_arms],
            "gain": self.gain.to_dict() if self.gain else None,
            "calibration": [c.to_dict() for c in self.calibration],
            "calibration_label": "exploratory",
            "seed": self.seed,
            "messages": dict(self.messages),
        }


@register("cells", "empirical_bayes_cells", applies=lambda design: not design.clustered)
def empirical_bayes_cells(
    data: CellData, design: Design, *, left_out: int = 0, seed: int = 0
) -> CellAnalysis:
    """Raw and pooled cells, the omnibus and trend tests, best arm per cell, the
    cross-fitted gain and BLP / GATES (each part that the data cannot carry says why)."""
    table = pool_cells(arm_cell_means(data), design.alpha)
    out = CellAnalysis(table, len(data.y), left_out, seed=seed)
    if table.pooled is None:
        out.messages["best_arms"] = table.message
        return out
    try:
        out.best_arms = best_arms(table, seed=seed)
    except TargetingError as exc:
        out.messages["best_arms"] = str(exc)
    if len(data.arms) < 3:
        out.messages["gain"] = "with one arm besides control, targeting has nothing to choose"
    else:
        try:
            out.gain = targeting_gain(data, folds=GAIN_FOLDS, seed=seed, alpha=design.alpha)
        except (TargetingError, PoolingError) as exc:
            out.messages["gain"] = str(exc)
    try:
        out.calibration = calibration(
            data,
            splits=CALIBRATION_SPLITS,
            groups=CALIBRATION_GROUPS,
            seed=seed,
            alpha=design.alpha,
        )
    except (TargetingError, PoolingError) as exc:
        out.messages["calibration"] = str(exc)
    if not out.calibration and "calibration" not in out.messages:
        out.messages["calibration"] = (
            "no arm's pooled cell effects varied enough to sort participants into groups"
        )
    return out
