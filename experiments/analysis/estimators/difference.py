"""Difference in means per arm against control: for a trial with neither strata, clusters
nor unequal probabilities. SE sqrt(s_T^2/n_T + s_C^2/n_C) (= OLS with HC2 and the Neyman
variance), t with Welch-Satterthwaite df as estimatr's `difference_in_means`."""

from __future__ import annotations

from experiments.analysis.cells import grouped_stats
from experiments.analysis.means import difference_in_means
from experiments.analysis.registry import register
from experiments.analysis.results import Effect
from experiments.analysis.trial import Design, Trial


@register("effects", "difference_in_means", applies=lambda design: True, priority=0)
def difference_in_means_effects(trial: Trial, design: Design) -> list[Effect]:
    cells = grouped_stats(trial.arm, trial.y, len(trial.arms))
    return [
        difference_in_means(cells[j], cells[0], design.alpha, trial.arms[j], trial.control)
        for j in range(1, len(trial.arms))
    ]
