"""The report as CSV: one row per estimate (effects, secondary outcomes' effects, complier
and mediated effects, Lee bounds, subgroups, interaction tests, slopes, cells), under the
columns of `CSV_COLUMNS`; a field a row does not have is left empty.

Rows of the same kind of estimate share their fields through the name groups below, so an
estimate's interval or test is written the same way wherever it appears.
"""

from __future__ import annotations

import io
import math
from typing import TYPE_CHECKING, Any

from experiments import csv_cells

if TYPE_CHECKING:
    from experiments.report.model import Report

CSV_COLUMNS = (
    "kind",
    "moderator",
    "level",
    "arm",
    "family",
    "method",
    "n",
    "n_treatment",
    "n_control",
    "estimate",
    "std_error",
    "ci_low",
    "ci_high",
    "statistic",
    "df",
    "p_value",
    "p_adjusted",
    "error",
    "ri_p_value",
    "df_denominator",
    "reference",
)

COUNTS = ("n_treatment", "n_control")
INTERVAL = ("estimate", "std_error", "ci_low", "ci_high")
TEST = ("df", "p_value", "p_adjusted", "error", "ri_p_value", "reference")


def _fields(x: Any, names: tuple[str, ...], leave_out: tuple[str, ...] = ()) -> dict[str, Any]:
    return {name: getattr(x, name) for name in names if name not in leave_out}


def _effect(e: Any, leave_out: tuple[str, ...] = ()) -> dict[str, Any]:
    """An effect of an arm against control: its counts, interval and test."""
    return dict(
        arm=e.arm,
        method=e.method,
        n=e.n_treatment + e.n_control,
        **_fields(e, (*COUNTS, *INTERVAL, "statistic", *TEST), leave_out),
    )


def csv_rows(report: Report) -> list[dict[str, Any]]:
    a = report.analysis
    rows: list[dict[str, Any]] = []
    for kind, effects in (("effect", a.effects), ("adjusted_effect", a.adjusted_effects)):
        rows += [dict(kind=kind, **_effect(e)) for e in effects]
    rows += _further_rows(report)
    for s in a.subgroups:
        rows.append(
            dict(
                kind="subgroup",
                **_fields(s, ("moderator", "level", "arm", "family", "method", "n", *COUNTS)),
                **_fields(s, (*INTERVAL, *TEST)),
            )
        )
    for t in a.interactions:
        rows.append(
            dict(
                kind="interaction",
                **_fields(t, ("moderator", "arm", "family")),
                method="htz_homogeneity" if t.test == "htz_f" else "wald_homogeneity",
                statistic=t.statistic,
                df_denominator=t.df_denominator,
                **_fields(t, TEST),
            )
        )
    for s in a.slopes:
        rows.append(
            dict(
                kind="slope",
                **_fields(s, ("moderator", "arm", "family")),
                method="linear_interaction",
                **_fields(s, (*INTERVAL, *TEST)),
            )
        )
    if a.cells is not None:
        moderators = " x ".join(a.cells.table.moderators)
        for c in a.cells.table.cells:
            cell = dict(
                kind="cell",
                moderator=moderators,
                level=" | ".join(c.levels.values()),
                arm=c.arm,
                **_fields(c, ("n", *COUNTS, "error")),
            )
            rows.append(dict(cell, method="raw", estimate=c.estimate, std_error=c.std_error))
            rows.append(
                dict(
                    cell,
                    method="empirical_bayes",
                    estimate=c.pooled_estimate,
                    std_error=c.pooled_std_error,
                    ci_low=c.pooled_ci_low,
                    ci_high=c.pooled_ci_high,
                )
            )
    return rows


def _further_rows(report: Report) -> list[dict[str, Any]]:
    """Secondary outcomes' effects (`level` names the outcome, `family` its role), the
    complier effects, the mediated effects (ACME) and the Lee bounds (as ci_low and
    ci_high)."""
    f = report.further
    if f is None:
        return []
    rows: list[dict[str, Any]] = []
    for o in f.outcomes:
        if o.role == "primary":
            continue
        for e in o.effects:
            rows.append(
                dict(
                    kind="outcome_effect",
                    level=o.outcome,
                    family=o.role,
                    **_effect(e, leave_out=("ri_p_value",)),
                )
            )
    for c in f.cace:
        e = c.effect
        rows.append(
            dict(
                kind="cace",
                level=c.outcome,
                arm=c.arm,
                method="two_stage_least_squares",
                n=c.n,
                **_fields(e, INTERVAL),
                **_fields(e, ("df", "p_value")),
            )
        )
    for m in f.mediation:
        rows.append(
            dict(
                kind="mediation",
                moderator=m.mediator,
                level=m.outcome,
                arm=m.arm,
                family="exploratory",
                method="causal_mediation_acme",
                n=m.n,
                estimate=m.acme,
                ci_low=m.acme_ci_low,
                ci_high=m.acme_ci_high,
                p_value=m.acme_p_value,
            )
        )
    for b in f.bounds:
        rows.append(
            dict(
                kind="lee_bounds",
                level=b.outcome,
                arm=b.arm,
                method="lee_bounds",
                ci_low=b.lower,
                ci_high=b.upper,
            )
        )
    return rows


def to_csv(report: Report) -> str:
    buf = io.StringIO()
    writer = csv_cells.dict_writer(buf, CSV_COLUMNS)
    writer.writeheader()
    for row in csv_rows(report):
        writer.writerow({k: _csv_value(row.get(k)) for k in CSV_COLUMNS})
    return buf.getvalue()


def _csv_value(v: Any) -> Any:
    if v is None:
        return ""
    if isinstance(v, float):
        if not math.isfinite(v):
            return "" if math.isnan(v) else ("inf" if v > 0 else "-inf")
        return repr(v)
    return v
