"""The registered estimators, one module each (see registry.py).

Importing this package imports every module in it, so a new estimator is one new module
that calls `register`, and its tests. The cell-summary functions are re-exported for
callers that estimate from sums (power simulation, SQL aggregates).
"""

import importlib
import pkgutil

from experiments.analysis.means import (
    blocked_difference_in_means,
    difference_in_means,
    effects_from_cells,
    relative_lift,
    welch_df,
)
from experiments.analysis.results import Effect, inference

for _module in pkgutil.iter_modules(__path__):
    importlib.import_module(f"{__name__}.{_module.name}")

__all__ = [
    "Effect",
    "blocked_difference_in_means",
    "difference_in_means",
    "effects_from_cells",
    "inference",
    "relative_lift",
    "welch_df",
]
