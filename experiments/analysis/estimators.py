"""Average effects of each arm against control: difference in means, Lin-adjusted, blocked
and cluster-robust estimators, with their standard errors, intervals and p-values.

Reference distributions (stated in every result's `reference`):
- difference in means: t with Welch-Satterthwaite df (as estimatr); its standard error
  sqrt(s_T^2/n_T + s_C^2/n_C) equals OLS with HC2 and the Neyman variance;
- blocked difference in means: t with N - 2 x blocks df (as estimatr);
- Lin (2013) regression: t with N - K df, HC2 standard errors;
- cluster-robust: CR1 (Stata's small-sample factor), t with G - 1 df.
For the sample sizes of a campaign these t references are indistinguishable from normal.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Literal

import numpy as np

from experiments.analysis.cells import CellStats
from experiments.analysis.dist import norm_isf, norm_sf, t_isf, t_sf
from experiments.analysis.ols import DegenerateDesign, ols

Method = Literal["difference_in_means", "lin", "lin_cluster_robust", "blocked", "cluster_robust"]

REFERENCES: dict[str, str] = {
    "difference_in_means": "t, Welch-Satterthwaite df (HC2 = Neyman standard error)",
    "blocked": "t, N - 2 x blocks df (blocked difference in means)",
    "lin": "t, N - K df (OLS with centred covariates x arm, HC2)",
    "cluster_robust": "t, G - 1 df (CR1 cluster-robust, Stata small-sample factor)",
    "lin_cluster_robust": "t, G - 1 df (Lin covariate adjustment with CR1 cluster-robust SE)",
}


@dataclass(frozen=True)
class Inference:
    estimate: float
    std_error: float
    df: float
    statistic: float
    p_value: float
    ci_low: float
    ci_high: float


def inference(estimate: float, std_error: float, df: float, alpha: float) -> Inference:
    """Two-sided test of zero and a 1 - alpha interval; df = inf means normal."""
    if not (math.isfinite(estimate) and math.isfinite(std_error)) or std_error <= 0:
        nan = math.nan
        return Inference(estimate, std_error, df, nan, nan, nan, nan)
    z = estimate / std_error
    if math.isinf(df):
        p = 2 * norm_sf(abs(z))
        q = norm_isf(alpha / 2)
    else:
        p = 2 * t_sf(abs(z), df)
        q = t_isf(alpha / 2, df)
    return Inference(
        estimate, std_error, df, z, float(p), estimate - q * std_error, estimate + q * std_error
    )


@dataclass(frozen=True)
class Effect:
    """One arm's effect against control. `error` is a code when it could not be estimated
    (`message` says why); the numbers are then NaN."""

    arm: str
    control: str
    method: Method
    estimate: float
    std_error: float
    ci_low: float
    ci_high: float
    p_value: float
    statistic: float
    df: float
    n_treatment: int
    n_control: int
    mean_treatment: float
    mean_control: float
    relative_lift: float = math.nan
    relative_lift_se: float = math.nan
    p_adjusted: float = math.nan
    error: str | None = None
    message: str = ""

    @property
    def reference(self) -> str:
        return REFERENCES[self.method]

    def to_dict(self) -> dict:
        d = {k: _clean(v) for k, v in asdict(self).items()}
        d["reference"] = self.reference
        return d


def _clean(v):
    if isinstance(v, float | np.floating):
        return float(v) if math.isfinite(v) else None
    if isinstance(v, np.integer):
        return int(v)
    return v


def _failed(
    arm: str,
    control: str,
    method: Method,
    code: str,
    message: str,
    t: CellStats | None = None,
    c: CellStats | None = None,
) -> Effect:
    nan = math.nan
    return Effect(
        arm,
        control,
        method,
        nan,
        nan,
        nan,
        nan,
        nan,
        nan,
        nan,
        t.n if t else 0,
        c.n if c else 0,
        t.mean if t else nan,
        c.mean if c else nan,
        error=code,
        message=message,
    )


def welch_df(t: CellStats, c: CellStats) -> float:
    vt, vc = t.variance / t.n, c.variance / c.n
    den = vt * vt / (t.n - 1) + vc * vc / (c.n - 1)
    return (vt + vc) ** 2 / den if den > 0 else math.inf


def relative_lift(t: CellStats, c: CellStats) -> tuple[float, float]:
    """tau / mean_C and its delta-method standard error (gbstats)."""
    mc, mt = c.mean, t.mean
    if not math.isfinite(mc) or mc == 0:
        return math.nan, math.nan
    var = t.variance / (mc * mc * t.n) + c.variance * mt * mt / (mc**4 * c.n)
    return (mt - mc) / mc, math.sqrt(var)


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
    """tau = sum_j (N_j/N) tau_j, Var = sum_j (N_j/N)^2 Var_j over blocks j.

    `blocks` maps a block to (treatment cell, control cell). A block holding only one of
    the two arms carries no comparison and is an error (name it), as is a block with a
    single participant in an arm.
    """
    method: Method = "blocked"
    live = {b: tc for b, tc in blocks.items() if tc[0].n + tc[1].n > 0}
    t_all = sum((tc[0] for tc in live.values()), CellStats(0, 0.0, 0.0))
    c_all = sum((tc[1] for tc in live.values()), CellStats(0, 0.0, 0.0))
    if not live:
        return _failed(arm, control_name, method, "too_few_rows", "no participants")
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
    est = var = 0.0
    for t, c in live.values():
        w = (t.n + c.n) / total
        est += w * (t.mean - c.mean)
        var += w * w * (t.variance / t.n + c.variance / c.n)
    se = math.sqrt(var)
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
    lift, lift_se = relative_lift(t_all, c_all)
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
        t_all.mean,
        c_all.mean,
        lift,
        lift_se,
    )


def _arm_design(arm_codes: np.ndarray, arms: Sequence[str], control: int) -> np.ndarray:
    n = len(arm_codes)
    treated = [i for i in range(len(arms)) if i != control]
    X = np.empty((n, 1 + len(treated)))
    X[:, 0] = 1.0
    for j, i in enumerate(treated):
        X[:, 1 + j] = arm_codes == i
    return X


def _regression_effects(
    y: np.ndarray,
    arm_codes: np.ndarray,
    arms: Sequence[str],
    control: int,
    X: np.ndarray,
    method: Method,
    alpha: float,
    clusters: np.ndarray | None,
) -> list[Effect]:
    treated = [i for i in range(len(arms)) if i != control]
    cells = [CellStats.of(y[arm_codes == i]) for i in range(len(arms))]
    try:
        fit = ols(X, y, "CR1" if clusters is not None else "HC2", clusters)
    except DegenerateDesign as exc:
        return [
            _failed(
                arms[i], arms[control], method, "degenerate", str(exc), cells[i], cells[control]
            )
            for i in treated
        ]
    out = []
    for j, i in enumerate(treated):
        est, se = float(fit.beta[1 + j]), float(fit.std_errors[1 + j])
        inf = inference(est, se, float(fit.df_resid), alpha)
        lift, lift_se = relative_lift(cells[i], cells[control])
        out.append(
            Effect(
                arms[i],
                arms[control],
                method,
                est,
                se,
                inf.ci_low,
                inf.ci_high,
                inf.p_value,
                inf.statistic,
                inf.df,
                cells[i].n,
                cells[control].n,
                cells[i].mean,
                cells[control].mean,
                lift,
                lift_se,
            )
        )
    return out


def lin_adjusted(
    y: np.ndarray,
    arm_codes: np.ndarray,
    arms: Sequence[str],
    control: int,
    covariates: np.ndarray,
    alpha: float = 0.05,
    clusters: np.ndarray | None = None,
) -> list[Effect]:
    """Lin (2013): y on arm dummies, centred covariates and every arm x centred covariate
    product; the arm coefficients are the effects. HC2 (CR1 when clusters are given)."""
    Z = np.asarray(covariates, dtype=float)
    if Z.ndim == 1:
        Z = Z[:, None]
    Zc = Z - Z.mean(axis=0)
    base = _arm_design(arm_codes, arms, control)
    dummies = base[:, 1:]
    inter = (dummies[:, :, None] * Zc[:, None, :]).reshape(len(y), -1)
    X = np.hstack([base, Zc, inter])
    method: Method = "lin" if clusters is None else "lin_cluster_robust"
    return _regression_effects(
        np.asarray(y, float), arm_codes, arms, control, X, method, alpha, clusters
    )


def cluster_robust(
    y: np.ndarray,
    arm_codes: np.ndarray,
    arms: Sequence[str],
    control: int,
    clusters: np.ndarray,
    alpha: float = 0.05,
) -> list[Effect]:
    """Difference in means from y on arm dummies (all arms in one model), CR1 errors."""
    X = _arm_design(arm_codes, arms, control)
    return _regression_effects(
        np.asarray(y, float), arm_codes, arms, control, X, "cluster_robust", alpha, clusters
    )


def effects_from_cells(
    cells: Mapping[str, CellStats], control: str, alpha: float = 0.05, correction: str = "holm"
) -> list[Effect]:
    """Each arm's difference in means against control from per-arm summaries (e.g. `SELECT
    arm, count(*), sum(y), sum(y*y) ... GROUP BY arm`), p-values adjusted across arms."""
    from dataclasses import replace

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
