"""Differences in means from cell summaries (n, sum, sum of squares): the same estimator on
a participant frame or on sums pushed down to SQL (gbstats-style).

- difference in means: SE sqrt(s_T^2/n_T + s_C^2/n_C) (= OLS with HC2, the Neyman
  variance), t reference with Welch-Satterthwaite df (as estimatr);
- blocked difference in means over given blocks: tau = sum_j (N_j/N) tau_j,
  Var = sum_j (N_j/N)^2 Var_j;
- relative lift tau / mean_C with its delta-method standard error (gbstats).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import replace

from experiments.analysis.cells import CellStats
from experiments.analysis.results import Effect, Method, failed_effect, inference


def welch_df(t: CellStats, c: CellStats) -> float:
    vt, vc = t.variance / t.n, c.variance / c.n
    den = vt * vt / (t.n - 1) + vc * vc / (c.n - 1)
    return (vt + vc) ** 2 / den if den > 0 else math.inf


def relative_lift(t: CellStats, c: CellStats) -> tuple[float, float]:
    """tau / mean_C and its delta-method standard error (gbstats)."""
    return lift_from_means(t.mean, c.mean, t.variance / t.n, c.variance / c.n)


def lift_from_means(
    mean_t: float, mean_c: float, var_t: float, var_c: float, cov_tc: float = 0.0
) -> tuple[float, float]:
    """mean_T / mean_C - 1 and its delta-method SE from the variances of the two means."""
    if not math.isfinite(mean_c) or mean_c == 0:
        return math.nan, math.nan
    var = var_t / mean_c**2 + var_c * mean_t**2 / mean_c**4 - 2 * cov_tc * mean_t / mean_c**3
    return mean_t / mean_c - 1, math.sqrt(max(var, 0.0))


def difference_in_means(
    treatment: CellStats,
    control: CellStats,
    alpha: float = 0.05,
    arm: str = "treatment",
    control_name: str = "control",
) -> Effect:
    """mean_T - mean_C with SE sqrt(s_T^2/n_T + s_C^2/n_C), t reference with Welch df."""
    method: Method = "difference_in_means"
    for cell, name in ((treatment, arm), (control, control_name)):
        if cell.n < 2:
            return _failed(
                arm,
                control_name,
                method,
                "too_few_rows",
                f"arm {name!r} has {cell.n} row(s): at least two are needed",
                treatment,
                control,
            )
    se = math.sqrt(treatment.variance / treatment.n + control.variance / control.n)
    est = treatment.mean - control.mean
    if se == 0:
        return _failed(
            arm,
            control_name,
            method,
            "zero_variance",
            "the outcome does not vary in either arm: no standard error",
            treatment,
            control,
        )
    inf = inference(est, se, welch_df(treatment, control), alpha)
    lift, lift_se = relative_lift(treatment, control)
    return Effect(
        arm,
        control_name,
        method,
        est,
        se,
        inf.ci_low,
        inf.ci_high,
        inf.p_value,
        inf.statistic,
        inf.df,
        treatment.n,
        control.n,
        treatment.mean,
        control.mean,
        lift,
        lift_se,
    )


def blocked_difference_in_means(
    blocks: Mapping[str, tuple[CellStats, CellStats]],
    alpha: float = 0.05,
    arm: str = "treatment",
    control_name: str = "control",
) -> Effect:
    """tau = sum_j (N_j/N) tau_j, Var = sum_j (N_j/N)^2 Var_j over blocks j (two arms).

    `blocks` maps a block to (treatment cell, control cell). A block with a single
    participant in an arm is an error naming the block (pool it first: see strata.py).
    """
    method: Method = "blocked"
    live = {b: tc for b, tc in blocks.items() if tc[0].n + tc[1].n > 0}
    t_all = sum((tc[0] for tc in live.values()), CellStats(0, 0.0, 0.0))
    c_all = sum((tc[1] for tc in live.values()), CellStats(0, 0.0, 0.0))
    if not live:
        return failed_effect(arm, control_name, method, "too_few_rows", "no participants")
    for b, (t, c) in live.items():
        if t.n < 2 or c.n < 2:
            return _failed(
                arm,
                control_name,
                method,
                "small_block",
                f"block {b!r} has {t.n} participant(s) in {arm!r} and {c.n} in "
                f"{control_name!r}: each needs at least two",
                t_all,
                c_all,
            )
    total = t_all.n + c_all.n
    mean_t = mean_c = var_t = var_c = 0.0
    for t, c in live.values():
        w = (t.n + c.n) / total
        mean_t += w * t.mean
        mean_c += w * c.mean
        var_t += w * w * t.variance / t.n
        var_c += w * w * c.variance / c.n
    est, se = mean_t - mean_c, math.sqrt(var_t + var_c)
    if se == 0:
        return _failed(
            arm,
            control_name,
            method,
            "zero_variance",
            "the outcome does not vary within blocks: no standard error",
            t_all,
            c_all,
        )
    inf = inference(est, se, float(total - 2 * len(live)), alpha)
    lift, lift_se = lift_from_means(mean_t, mean_c, var_t, var_c)
    return Effect(
        arm,
        control_name,
        method,
        est,
        se,
        inf.ci_low,
        inf.ci_high,
        inf.p_value,
        inf.statistic,
        inf.df,
        t_all.n,
        c_all.n,
        mean_t,
        mean_c,
        lift,
        lift_se,
    )


def _failed(arm, control, method, code, message, t: CellStats, c: CellStats) -> Effect:
    return failed_effect(arm, control, method, code, message, t.n, c.n, t.mean, c.mean)


def effects_from_cells(
    cells: Mapping[str, CellStats], control: str, alpha: float = 0.05, correction: str = "holm"
) -> list[Effect]:
    """Each arm's difference in means against control from per-arm summaries (e.g. `SELECT
    arm, count(*), sum(y), sum(y*y) ... GROUP BY arm`), p-values adjusted across arms."""
    from experiments.analysis.multiplicity import adjust

    if control not in cells:
        raise KeyError(f"no cell for the control arm {control!r}")
    effects = [
        difference_in_means(c, cells[control], alpha, arm, control)
        for arm, c in cells.items()
        if arm != control
    ]
    adjusted = adjust([e.p_value for e in effects], correction)  # type: ignore[arg-type]
    return [replace(e, p_adjusted=float(q)) for e, q in zip(effects, adjusted, strict=True)]
