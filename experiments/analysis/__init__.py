"""The analysis engine: effects per arm, heterogeneous effects, multiplicity, from a frame
of one row per randomized participant (or from per-cell sums). Estimators are chosen from
the trial's design through the registry (registry.py)."""

from experiments.analysis.cells import CellStats, grouped_stats
from experiments.analysis.engine import AnalysisResult, analyze
from experiments.analysis.heterogeneity import homogeneity_wald
from experiments.analysis.means import (
    blocked_difference_in_means,
    difference_in_means,
    effects_from_cells,
)
from experiments.analysis.multiplicity import adjust, benjamini_hochberg, holm
from experiments.analysis.registry import choose, estimators, register
from experiments.analysis.results import (
    Effect,
    Heterogeneity,
    Interaction,
    Slope,
    SubgroupEffect,
)
from experiments.analysis.trial import AnalysisInputError, Design, Trial

__all__ = [
    "AnalysisInputError",
    "AnalysisResult",
    "CellStats",
    "Design",
    "Effect",
    "Heterogeneity",
    "Interaction",
    "Slope",
    "SubgroupEffect",
    "Trial",
    "adjust",
    "analyze",
    "benjamini_hochberg",
    "blocked_difference_in_means",
    "choose",
    "difference_in_means",
    "effects_from_cells",
    "estimators",
    "grouped_stats",
    "holm",
    "homogeneity_wald",
    "register",
]
