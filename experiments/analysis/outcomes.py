"""Several outcomes in one report: the primary outcome, on which the confirmatory claims
rest, and secondary outcomes, reported beside it and marked as such.

The analysis plan names the outcomes in order, the first primary. Each outcome's effects
come from the same headline estimator (any function from an outcome to its list of
effects, e.g. the registry's choice for the design). Multiplicity follows the plan:
- primary family: the primary outcome's effects across arms, adjusted by the plan's
  correction (Holm by default), the same figures as the report's top-level `effects`;
- secondary family: every secondary outcome's effects across arms together, adjusted by
  Benjamini-Hochberg (false discovery rate), as exploratory moderators are; they support
  no confirmatory claim.
JSON: `outcomes`: one entry per outcome, `{"outcome", "role", "effects"}`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any, Literal

from experiments.analysis.multiplicity import Correction, adjust

Role = Literal["primary", "secondary"]


class OutcomePlanError(ValueError):
    """The list of outcomes to analyse is unusable (empty, or an outcome twice)."""


@dataclass(frozen=True)
class OutcomeEffects:
    """One analysed outcome, its role and its effects (the headline Effect objects, with
    `p_adjusted` set within the outcome's family)."""

    outcome: str
    role: Role
    effects: list[Any]

    def to_dict(self) -> dict:
        return {
            "outcome": self.outcome,
            "role": self.role,
            "effects": [e.to_dict() for e in self.effects],
        }


def roles(outcomes: Sequence[str]) -> dict[str, Role]:
    """The first outcome is primary, the others secondary (in the order given)."""
    if not outcomes:
        raise OutcomePlanError("name at least one outcome (the first is the primary)")
    seen: set[str] = set()
    for name in outcomes:
        if name in seen:
            raise OutcomePlanError(f"outcome {name!r} is named twice")
        seen.add(name)
    return {name: ("primary" if i == 0 else "secondary") for i, name in enumerate(outcomes)}


def family_correction(role: Role, correction: Correction) -> Correction:
    """The plan's correction for the primary family, Benjamini-Hochberg for secondaries."""
    if correction == "none":
        return "none"
    return correction if role == "primary" else "bh"


def several_outcomes(
    effects_by_outcome: Mapping[str, Sequence[Any]],
    outcomes: Sequence[str],
    correction: Correction = "holm",
) -> list[OutcomeEffects]:
    """Assign roles and adjust p-values within each family.

    `effects_by_outcome[name]` is the list of effects (objects with `p_value` and
    `p_adjusted`, e.g. the headline `Effect`) for every name in `outcomes`.
    """
    role_of = roles(outcomes)
    missing = [name for name in outcomes if name not in effects_by_outcome]
    if missing:
        raise OutcomePlanError(f"no effects for outcome(s) {', '.join(map(repr, missing))}")
    adjusted: dict[str, list[Any]] = {}
    for role in ("primary", "secondary"):
        names = [n for n in outcomes if role_of[n] == role]
        flat = [(n, e) for n in names for e in effects_by_outcome[n]]
        p = adjust([e.p_value for _, e in flat], family_correction(role, correction))
        for (name, effect), q in zip(flat, p, strict=True):
            adjusted.setdefault(name, []).append(replace(effect, p_adjusted=float(q)))
    return [OutcomeEffects(n, role_of[n], adjusted.get(n, [])) for n in outcomes]


def analyze_outcomes(
    outcomes: Sequence[str],
    estimate: Callable[[str], Sequence[Any]],
    correction: Correction = "holm",
) -> list[OutcomeEffects]:
    """Run `estimate(outcome)` (the headline estimator for one outcome) for each outcome,
    then `several_outcomes`."""
    roles(outcomes)
    return several_outcomes({n: estimate(n) for n in outcomes}, outcomes, correction)
