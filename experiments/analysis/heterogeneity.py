"""Heterogeneous effects: the effect of each arm within each level of a moderator, a Wald
test per arm that the effect is the same at every level, and for a numeric moderator the
linear interaction slope (change in effect per unit of the moderator).

The subgroup effect is the difference in means inside the level; for the saturated
arm x level model this equals OLS with HC2 exactly, and the subgroup estimates are
independent, so the homogeneity statistic is W = d'A'(A V A')^-1 A d with contrasts A of
every level against the first, chi-square with (levels - 1) df.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Literal

import numpy as np

from experiments.analysis.cells import CellStats
from experiments.analysis.dist import chi2_sf
from experiments.analysis.estimators import _clean, difference_in_means, inference
from experiments.analysis.ols import DegenerateDesign, ols
from experiments.design import POST_TREATMENT

Family = Literal["confirmatory", "exploratory"]


class PostTreatmentModerator(ValueError):
    """A moderator measured after the message: using it would bias the estimate."""


def check_moderator(name: str) -> None:
    """Refuse a moderator measured after treatment (an outcome, not a baseline trait)."""
    if name in POST_TREATMENT:
        raise PostTreatmentModerator(
            f"{name!r} is measured after the message, so it cannot be a moderator "
            "(a post-treatment moderator biases the estimate); use its baseline measure"
        )


@dataclass(frozen=True)
class SubgroupEffect:
    moderator: str
    level: str
    arm: str
    n: int
    n_treatment: int
    n_control: int
    mean_treatment: float
    mean_control: float
    estimate: float
    std_error: float
    ci_low: float
    ci_high: float
    p_value: float
    df: float
    family: Family
    p_adjusted: float = math.nan
    error: str | None = None
    message: str = ""

    def to_dict(self) -> dict:
        return {k: _clean(v) for k, v in asdict(self).items()}


@dataclass(frozen=True)
class Interaction:
    """Wald test, for one arm, that its effect is equal at every level of a moderator."""

    moderator: str
    arm: str
    statistic: float
    df: int
    p_value: float
    family: Family
    levels: int
    p_adjusted: float = math.nan
    error: str | None = None
    message: str = ""

    def to_dict(self) -> dict:
        return {k: _clean(v) for k, v in asdict(self).items()}


@dataclass(frozen=True)
class Slope:
    """Linear interaction: change in the arm's effect per unit of a numeric moderator."""

    moderator: str
    arm: str
    estimate: float
    std_error: float
    ci_low: float
    ci_high: float
    p_value: float
    df: float
    family: Family
    error: str | None = None
    message: str = ""

    def to_dict(self) -> dict:
        return {k: _clean(v) for k, v in asdict(self).items()}


def subgroup_effects(
    cells: Mapping[tuple[str, str], CellStats],
    moderator: str,
    levels: Sequence[str],
    arms: Sequence[str],
    control: str,
    family: Family = "exploratory",
    alpha: float = 0.05,
) -> list[SubgroupEffect]:
    """Difference in means of each arm against control inside each level.

    `cells[(arm, level)]` holds the outcome's summary statistics; a missing cell is empty.
    Rows come level by level (in the order given), arms in order within a level.
    """
    empty = CellStats(0, 0.0, 0.0)
    out = []
    for level in levels:
        c = cells.get((control, level), empty)
        for arm in arms:
            if arm == control:
                continue
            t = cells.get((arm, level), empty)
            e = difference_in_means(t, c, alpha, arm, control)
            out.append(
                SubgroupEffect(
                    moderator,
                    level,
                    arm,
                    t.n + c.n,
                    t.n,
                    c.n,
                    t.mean,
                    c.mean,
                    e.estimate,
                    e.std_error,
                    e.ci_low,
                    e.ci_high,
                    e.p_value,
                    e.df,
                    family,
                    error=e.error,
                    message=e.message and f"{moderator}={level}: {e.message}",
                )
            )
    return out


def homogeneity_wald(
    estimates: Sequence[float], variances: Sequence[float]
) -> tuple[float, int, float]:
    """W = d'A'(A V A')^-1 A d for independent estimates d with variances V (diagonal),
    A the contrasts of each level against the first; chi-square, levels - 1 df."""
    d = np.asarray(estimates, dtype=float)
    v = np.asarray(variances, dtype=float)
    k = len(d)
    if k < 2:
        return math.nan, 0, math.nan
    A = np.hstack([-np.ones((k - 1, 1)), np.eye(k - 1)])
    Ad = A @ d
    AVA = (A * v) @ A.T
    w = float(Ad @ np.linalg.solve(AVA, Ad))
    return w, k - 1, chi2_sf(w, k - 1)


def interactions(
    subgroups: Sequence[SubgroupEffect], arms: Sequence[str], control: str
) -> list[Interaction]:
    """Homogeneity test per arm over the levels whose subgroup effect could be estimated."""
    out = []
    if not subgroups:
        return out
    moderator, family = subgroups[0].moderator, subgroups[0].family
    for arm in arms:
        if arm == control:
            continue
        rows = [s for s in subgroups if s.arm == arm]
        ok = [s for s in rows if s.error is None and s.std_error > 0]
        skipped = [s.level for s in rows if s not in ok]
        message = (
            (f"left out level(s) {', '.join(skipped)} (too few participants or no variation)")
            if skipped
            else ""
        )
        if len(ok) < 2:
            out.append(
                Interaction(
                    moderator,
                    arm,
                    math.nan,
                    0,
                    math.nan,
                    family,
                    len(ok),
                    error="too_few_levels",
                    message=f"{moderator}: fewer than two levels with an "
                    f"estimable effect for {arm!r}",
                )
            )
            continue
        w, df, p = homogeneity_wald([s.estimate for s in ok], [s.std_error**2 for s in ok])
        out.append(Interaction(moderator, arm, w, df, p, family, len(ok), message=message))
    return out


def interaction_slopes(
    y: np.ndarray,
    arm_codes: np.ndarray,
    arms: Sequence[str],
    control: int,
    moderator_values: np.ndarray,
    moderator: str,
    family: Family = "exploratory",
    alpha: float = 0.05,
    clusters: np.ndarray | None = None,
) -> list[Slope]:
    """y on arm dummies, centred moderator and arm x centred moderator (HC2, or CR1 with
    clusters); the interaction coefficient is the change in effect per unit."""
    m = np.asarray(moderator_values, dtype=float)
    mc = m - m.mean()
    y = np.asarray(y, dtype=float)
    treated = [i for i in range(len(arms)) if i != control]
    if clusters is None:
        return _slopes_by_arm(
            y, np.asarray(arm_codes, dtype=np.intp), arms, control, mc, moderator, family, alpha
        )
    X = np.empty((len(y), 2 + 2 * len(treated)))
    X[:, 0] = 1.0
    X[:, 1] = mc
    for j, i in enumerate(treated):
        d = arm_codes == i
        X[:, 2 + j] = d
        X[:, 2 + len(treated) + j] = d * mc
    try:
        fit = ols(X, y, "CR1", clusters)
    except DegenerateDesign as exc:
        nan = math.nan
        return [
            Slope(moderator, arms[i], nan, nan, nan, nan, nan, nan, family, "degenerate", str(exc))
            for i in treated
        ]
    out = []
    for j, i in enumerate(treated):
        col = 2 + len(treated) + j
        inf = inference(
            float(fit.beta[col]), float(fit.std_errors[col]), float(fit.df_resid), alpha
        )
        out.append(
            Slope(
                moderator,
                arms[i],
                inf.estimate,
                inf.std_error,
                inf.ci_low,
                inf.ci_high,
                inf.p_value,
                inf.df,
                family,
            )
        )
    return out


def _slopes_by_arm(
    y: np.ndarray,
    codes: np.ndarray,
    arms: Sequence[str],
    control: int,
    mc: np.ndarray,
    moderator: str,
    family: Family,
    alpha: float,
) -> list[Slope]:
    """The same HC2 fit in O(n) passes: the arm x moderator model is saturated in arm, so
    it splits into one regression of y on (1, m) per arm with the same residuals and
    leverages; an arm's slope minus control's is the interaction, their HC2 variances
    add (df: N - 2 x arms, the full model's residual df)."""
    k = len(arms)

    def sums(w: np.ndarray) -> np.ndarray:
        return np.bincount(codes, weights=w, minlength=k)

    n = np.bincount(codes, minlength=k).astype(float)
    sm, smm = sums(mc), sums(mc * mc)
    sy, smy = sums(y), sums(mc * y)
    det = n * smm - sm * sm
    nan = math.nan
    if np.any(det <= 1e-12 * np.maximum(n * smm, 1.0)) or np.any(n < 3):
        return [
            Slope(
                moderator,
                arms[i],
                nan,
                nan,
                nan,
                nan,
                nan,
                nan,
                family,
                "degenerate",
                f"{moderator} does not vary within an arm",
            )
            for i in range(k)
            if i != control
        ]
    # (X'X)^-1 per arm = [[smm, -sm], [-sm, n]] / det
    slope = (n * smy - sm * sy) / det
    icept = (sy - slope * sm) / n
    e = y - icept[codes] - slope[codes] * mc
    a, b, c = smm / det, -sm / det, n / det
    h = a[codes] + 2 * b[codes] * mc + c[codes] * mc * mc
    if np.any(h >= 1 - 1e-12):
        return [
            Slope(
                moderator,
                arms[i],
                nan,
                nan,
                nan,
                nan,
                nan,
                nan,
                family,
                "degenerate",
                f"a participant alone at their {moderator} value in an arm has leverage "
                "1: the slope's variance cannot be estimated",
            )
            for i in range(k)
            if i != control
        ]
    w = e * e / (1.0 - h)
    s0, s1, s2 = sums(w), sums(w * mc), sums(w * mc * mc)
    # variance of the slope: row 2 of (X'X)^-1 times meat times its column
    var_slope = b * b * s0 + 2 * b * c * s1 + c * c * s2
    df = float(len(y) - 2 * k)
    out = []
    for i in range(k):
        if i == control:
            continue
        inf = inference(
            float(slope[i] - slope[control]),
            math.sqrt(max(float(var_slope[i] + var_slope[control]), 0.0)),
            df,
            alpha,
        )
        out.append(
            Slope(
                moderator,
                arms[i],
                inf.estimate,
                inf.std_error,
                inf.ci_low,
                inf.ci_high,
                inf.p_value,
                inf.df,
                family,
            )
        )
    return out


def clustered_subgroups(
    y: np.ndarray,
    arm_codes: np.ndarray,
    level_codes: np.ndarray,
    clusters: np.ndarray,
    arms: Sequence[str],
    control: int,
    levels: Sequence[str],
    moderator: str,
    family: Family = "exploratory",
    alpha: float = 0.05,
) -> tuple[list[SubgroupEffect], list[Interaction]]:
    """Subgroup effects and homogeneity tests with CR1 cluster-robust covariance.

    The saturated arm x level model has the cell means as coefficients, so the sandwich
    is diag(1/n) S'S diag(1/n) times G/(G-1) (N-1)/(N-K), S the per-cluster sums of
    residuals by cell; subgroup effects are contrasts of cell means, and the Wald test
    uses their full covariance (subgroups in one cluster are correlated). t with G - 1 df.
    """
    y = np.asarray(y, dtype=float)
    L, k = len(levels), len(arms)
    K = k * L
    cell = np.asarray(arm_codes, dtype=np.intp) * L + np.asarray(level_codes, dtype=np.intp)
    _, g_codes = np.unique(np.asarray(clusters), return_inverse=True)
    G = int(g_codes.max()) + 1
    n = np.bincount(cell, minlength=K).astype(float)
    sums = np.bincount(cell, weights=y, minlength=K)
    means = np.divide(sums, n, out=np.full(K, np.nan), where=n > 0)
    e = y - means[cell]
    S = np.bincount(g_codes * K + cell, weights=e, minlength=G * K).reshape(G, K)
    N = len(y)
    live = n > 0
    Keff = int(live.sum())
    factor = G / (G - 1) * (N - 1) / (N - Keff) if G > 1 and N > Keff else math.nan
    inv_n = np.divide(1.0, n, out=np.zeros(K), where=live)
    cov = factor * (inv_n[:, None] * (S.T @ S) * inv_n[None, :])
    df = float(G - 1)
    subs: list[SubgroupEffect] = []
    tests: list[Interaction] = []
    arm_names = list(arms)
    for j in range(k):
        if j == control:
            continue
        d = np.full(L, np.nan)
        A = np.zeros((L, K))
        for lvl in range(L):
            t, c = j * L + lvl, control * L + lvl
            A[lvl, t], A[lvl, c] = 1.0, -1.0
            d[lvl] = means[t] - means[c]
        V = A @ cov @ A.T
        for lvl in range(L):
            t, c = j * L + lvl, control * L + lvl
            nt, nc = int(n[t]), int(n[c])
            var = V[lvl, lvl]
            if nt < 2 or nc < 2 or not math.isfinite(var) or var <= 0:
                subs.append(
                    SubgroupEffect(
                        moderator,
                        levels[lvl],
                        arm_names[j],
                        nt + nc,
                        nt,
                        nc,
                        means[t],
                        means[c],
                        math.nan,
                        math.nan,
                        math.nan,
                        math.nan,
                        math.nan,
                        df,
                        family,
                        error="too_few_rows",
                        message=f"{moderator}={levels[lvl]}: too few participants or no variation",
                    )
                )
                continue
            inf = inference(float(d[lvl]), math.sqrt(var), df, alpha)
            subs.append(
                SubgroupEffect(
                    moderator,
                    levels[lvl],
                    arm_names[j],
                    nt + nc,
                    nt,
                    nc,
                    float(means[t]),
                    float(means[c]),
                    inf.estimate,
                    inf.std_error,
                    inf.ci_low,
                    inf.ci_high,
                    inf.p_value,
                    df,
                    family,
                )
            )
        ok = [lvl for lvl in range(L) if subs[-L + lvl].error is None]
        if len(ok) < 2:
            tests.append(
                Interaction(
                    moderator,
                    arm_names[j],
                    math.nan,
                    0,
                    math.nan,
                    family,
                    len(ok),
                    error="too_few_levels",
                    message=f"{moderator}: fewer than two levels with an "
                    f"estimable effect for {arm_names[j]!r}",
                )
            )
            continue
        dd, VV = d[ok], V[np.ix_(ok, ok)]
        B = np.hstack([-np.ones((len(ok) - 1, 1)), np.eye(len(ok) - 1)])
        Bd = B @ dd
        try:
            w = float(Bd @ np.linalg.solve(B @ VV @ B.T, Bd))
        except np.linalg.LinAlgError:
            tests.append(
                Interaction(
                    moderator,
                    arm_names[j],
                    math.nan,
                    0,
                    math.nan,
                    family,
                    len(ok),
                    error="singular",
                    message=f"{moderator}: too few clusters for this test",
                )
            )
            continue
        tests.append(
            Interaction(
                moderator, arm_names[j], w, len(ok) - 1, chi2_sf(w, len(ok) - 1), family, len(ok)
            )
        )
    return subs, tests
