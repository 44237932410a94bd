"""Always-valid confidence sequences (role `sequential`): each arm's effect at every look
of the time column, with an interval that stays valid however often it is looked at
(asymptotic confidence sequences, Waudby-Smith et al. 2023; see sequential.py). At each
look the design's own headline estimator (blocked, CR2, ...) gives the estimate and its
variance, so the sequence respects strata, clusters and probabilities as the report does.
"""

from __future__ import annotations

from experiments.analysis.registry import choose, register
from experiments.analysis.sequential import SequentialArm, confidence_sequences
from experiments.analysis.trial import Design, Trial


@register(
    "sequential",
    "asymptotic_confidence_sequence",
    applies=lambda design: design.looks is not None,
    priority=10,
)
def asymptotic_confidence_sequences(trial: Trial, design: Design) -> list[SequentialArm]:
    return confidence_sequences(trial, design, lambda d: choose("effects", d))
