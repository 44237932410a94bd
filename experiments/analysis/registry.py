"""The estimator registry: every estimator is a small function `(trial, design) -> typed
result`, registered for a role with the condition on the design under which it is the
right one; `choose(role, design)` picks it, as gbstats' `get_configured_test` picks a test
class from its settings. `analyze()` is then a short pipeline over the roles.

Roles and what their estimators return:
- `effects`: the headline effect of each arm against control (list of Effect);
- `adjusted`: the covariate-adjusted (Lin 2013) effects (list of Effect);
- `subgroups`: effects within each level of the trial's moderator and the test that they
  differ across levels (Heterogeneity);
- `slopes`: the change in effect per unit of a numeric moderator (list of Slope);
- `spillover`: in a randomized saturation design, direct, spillover and total effects
  per saturation against pure-control clusters (list of SpilloverEffect);
- `cells`: each arm's effect in every cell of two banded moderators, raw and partially
  pooled, with the targeting table (CellAnalysis); its input is the rows that have both
  moderators (`CellData`), not the whole trial.

Adding an estimator is one module in `experiments/analysis/estimators/` that calls
`register` (that package imports every module in it, and `estimates.py` imports the
package before choosing) and its tests. Among the estimators of a role, the highest
`priority` whose `applies(design)` holds wins.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:
    from experiments.analysis.trial import Design, Trial

Role = Literal["effects", "adjusted", "subgroups", "slopes", "spillover", "cells", "sequential"]


@dataclass(frozen=True)
class Estimator:
    role: Role
    method: str
    applies: Callable[[Design], bool]
    priority: int
    run: Callable[[Trial, Design], Any]

    def __call__(self, trial: Trial, design: Design) -> Any:
        return self.run(trial, design)


_REGISTRY: dict[str, list[Estimator]] = {}


def register(
    role: Role, method: str, *, applies: Callable[[Design], bool], priority: int = 0
) -> Callable[[Callable[[Trial, Design], Any]], Callable[[Trial, Design], Any]]:
    """Decorator: register `fn(trial, design)` as the `method` estimator for `role`."""

    def wrap(fn: Callable[[Trial, Design], Any]) -> Callable[[Trial, Design], Any]:
        entries = _REGISTRY.setdefault(role, [])
        if any(e.method == method for e in entries):
            raise ValueError(f"estimator {method!r} is already registered for {role!r}")
        entries.append(Estimator(role, method, applies, priority, fn))
        entries.sort(key=lambda e: -e.priority)
        return fn

    return wrap


def estimators(role: Role) -> list[Estimator]:
    """The estimators registered for a role, the preferred first."""
    return list(_REGISTRY.get(role, []))


def choose(role: Role, design: Design) -> Estimator:
    """The estimator for `role` that fits the design (the first that applies)."""
    for entry in estimators(role):
        if entry.applies(design):
            return entry
    raise LookupError(f"no estimator for {role!r} fits this design")
