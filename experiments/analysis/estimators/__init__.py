"""The registered estimators, one module each (see registry.py).

Every module here is imported when the registry is first used, so a new estimator is one
new module that calls `register`, and its tests. The cell-summary functions are
re-exported for callers that estimate from sums (power simulation, SQL aggregates).
"""

from experiments.analysis.means import (
    blocked_difference_in_means,
    difference_in_means,
    effects_from_cells,
    relative_lift,
    welch_df,
)
from experiments.analysis.results import Effect, inference

__all__ = [
    "Effect",
    "blocked_difference_in_means",
    "difference_in_means",
    "effects_from_cells",
    "inference",
    "relative_lift",
    "welch_df",
]
