"""The analysis engine: effects per arm, heterogeneous effects, multiplicity, from a frame
of one row per randomized participant (or from per-cell sums)."""

from experiments.analysis.cells import CellStats, grouped_stats
from experiments.analysis.engine import AnalysisInputError, AnalysisResult, analyze
from experiments.analysis.estimators import (
    Effect,
    blocked_difference_in_means,
    cluster_robust,
    difference_in_means,
    effects_from_cells,
    lin_adjusted,
)
from experiments.analysis.heterogeneity import (
    Interaction,
    PostTreatmentModerator,
    Slope,
    SubgroupEffect,
    homogeneity_wald,
)
from experiments.analysis.multiplicity import adjust, benjamini_hochberg, holm

__all__ = [
    "AnalysisInputError",
    "AnalysisResult",
    "CellStats",
    "Effect",
    "Interaction",
    "PostTreatmentModerator",
    "Slope",
    "SubgroupEffect",
    "adjust",
    "analyze",
    "benjamini_hochberg",
    "blocked_difference_in_means",
    "cluster_robust",
    "difference_in_means",
    "effects_from_cells",
    "grouped_stats",
    "holm",
    "homogeneity_wald",
    "lin_adjusted",
]
