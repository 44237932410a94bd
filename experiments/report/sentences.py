"""Plain-language sentences for evaluators: one per arm, saying what the estimate and its
interval mean without jargon beyond "95% CI"."""

from __future__ import annotations

from typing import TYPE_CHECKING

from experiments.p_values import fmt_p, p_text

if TYPE_CHECKING:
    from experiments.analysis.estimators import Effect
    from experiments.report.model import Report

__all__ = ["CORRECTION_NAMES", "amount", "effect_sentence", "fmt_p", "p_text"]

CORRECTION_NAMES = {"holm": "Holm", "bh": "Benjamini-Hochberg", "none": ""}


def amount(report: Report, x: float, signed: bool = False) -> str:
    """An effect in the outcome's units: percentage points for a yes/no outcome."""
    if report.analysis.binary_outcome:
        v = 100 * x
        return f"{v:+.1f}" if signed else f"{v:.1f}"
    return f"{x:+.3g}" if signed else f"{x:.3g}"


def effect_sentence(report: Report, e: Effect) -> str:
    a = report.analysis
    name = f"“{report.label(e.arm)}” message"
    control = f"the control (“{report.label(a.control)}”)"
    what = report.outcome_label or a.outcome
    units = " percentage points" if a.binary_outcome else ""
    level = round(100 * (1 - a.alpha))
    if e.error:
        return f"The effect of the {name} on {what} could not be estimated: {e.message}."
    lo, hi = amount(report, e.ci_low), amount(report, e.ci_high)
    corr = CORRECTION_NAMES.get(a.correction, "")
    padj = (
        f", {corr}-adjusted across {len(a.effects)} arms {p_text(e.p_adjusted)}"
        if corr and len(a.effects) > 1
        else ""
    )
    if e.ri_p_value is not None:
        padj += f", randomization inference {p_text(e.ri_p_value)}"
    base = (
        f"{100 * e.mean_control:.1f}% under {control} to {100 * e.mean_treatment:.1f}%"
        if a.binary_outcome
        else f"{e.mean_control:.3g} under {control} to {e.mean_treatment:.3g}"
    )
    interval = f"({level}% CI {lo} to {hi}; {p_text(e.p_value)}{padj})"
    if e.ci_low > 0 or e.ci_high < 0:
        verb = "raised" if e.estimate > 0 else "lowered"
        size = amount(report, abs(e.estimate))
        return f"The {name} {verb} {what} by {size}{units} {interval}, from {base}."
    return (
        f"The {name} changed {what} by {amount(report, e.estimate, signed=True)}{units} "
        f"{interval}: the data are consistent with no effect, and effects outside that "
        "interval are unlikely."
    )
