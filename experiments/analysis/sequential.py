"""Always-valid monitoring: asymptotic confidence sequences (Waudby-Smith, Arbour, Sinha,
Kennedy and Ramdas 2023) for each arm's effect, one look per distinct value of a time
column, and the always-valid p-values that go with them.

At a look with n units (participants, or clusters in a cluster design) the headline
estimator of the design (blocked, difference in means, CR2, ...) gives tau_n and its
variance V_n; with s^2 = n V_n the (1 - alpha) confidence sequence is

    tau_n +- s sqrt( 2 (n rho^2 + 1) / (n^2 rho^2) log( sqrt(n rho^2 + 1) / alpha ) ),

rho^2 = (-2 log alpha + log(-2 log alpha + 1)) / N*, which makes the sequence tightest
at N* units (the planned sample; GrowthBook's tuning parameter). It covers the effect at
every look at once with probability at least 1 - alpha (asymptotically), however often
it is looked at. The always-valid p-value is the smallest alpha' whose sequence (same rho)
excludes zero, p_n = sqrt(n rho^2 + 1) exp(-z_n^2 n rho^2 / (2 (n rho^2 + 1))), z_n =
tau_n / sqrt(V_n), kept as the running minimum over looks (so it never rises).

The looks are cumulative: everyone randomized up to and including that value of the
time column. Without clusters or weights the cell sums (n, sum, sum of squares per
look x stratum x arm) are accumulated once and every look whose strata all have two
units per arm is computed from them (the blocked estimator's own formula); other looks
run the registry's headline estimator on their rows.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, replace

import numpy as np

from experiments.analysis.results import Effect, clean
from experiments.analysis.strata import pool_strata
from experiments.analysis.trial import Design, Trial

METHOD = "asymptotic_confidence_sequence"


def rho_squared(alpha: float, n_star: float) -> float:
    """The mixing variance that makes the sequence tightest at n_star units."""
    la = -2.0 * math.log(alpha)
    return (la + math.log(la + 1.0)) / n_star


def half_width(std_error: float, n: float, alpha: float, n_star: float) -> float:
    """Half-width of the asymptotic confidence sequence at n units, V = std_error^2."""
    r2 = rho_squared(alpha, n_star)
    nr = n * r2
    return std_error * math.sqrt(2.0 * (nr + 1.0) / nr * math.log(math.sqrt(nr + 1.0) / alpha))


def p_value(estimate: float, std_error: float, n: float, alpha: float, n_star: float) -> float:
    """The smallest level whose sequence (the same rho) excludes zero at this look."""
    if not (math.isfinite(estimate) and math.isfinite(std_error)) or std_error <= 0:
        return math.nan
    nr = n * rho_squared(alpha, n_star)
    z2 = (estimate / std_error) ** 2
    log_p = 0.5 * math.log(nr + 1.0) - z2 * nr / (2.0 * (nr + 1.0))
    return min(1.0, math.exp(log_p))


@dataclass(frozen=True)
class Look:
    through: object  # the time column's value at this look
    n: int
    estimate: float
    ci_low: float
    ci_high: float
    p_value: float

    def to_dict(self) -> dict:
        return {
            "through": clean(self.through),
            "n": self.n,
            "estimate": clean(self.estimate),
            "ci_low": clean(self.ci_low),
            "ci_high": clean(self.ci_high),
            "p_value": clean(self.p_value),
        }


@dataclass(frozen=True)
class SequentialArm:
    """One arm's confidence sequence against control, look by look."""

    arm: str
    method: str
    looks: tuple[Look, ...]
    estimator: str = ""  # the headline estimator run at each look

    def to_dict(self) -> dict:
        return {
            "arm": self.arm,
            "method": self.method,
            "looks": [look.to_dict() for look in self.looks],
        }

    @property
    def ever_excluded_zero(self) -> bool:
        return any(math.isfinite(x.ci_low) and (x.ci_low > 0 or x.ci_high < 0) for x in self.looks)


HeadlineEstimator = Callable[[Trial, Design], list[Effect]]


def confidence_sequences(
    trial: Trial,
    design: Design,
    headline: Callable[[Design], HeadlineEstimator],
) -> list[SequentialArm]:
    """Each non-control arm's confidence sequence over the design's looks.

    `design.looks` codes each row's look (0, 1, ...; -1 = no time: left out),
    `design.look_values` the time column's value at each look, `design.sequential_n` the
    units at which the sequence is tightest (0: the units at the last look). `headline`
    picks the headline estimator for a look's design (registry.choose)."""
    assert design.looks is not None
    looks = np.asarray(design.looks)
    timed = looks >= 0
    if not timed.all():
        trial, design = trial.subset(timed), design.subset(timed)
        looks = looks[timed]
    n_looks = len(design.look_values)
    k = len(trial.arms)
    alpha = design.alpha
    units_at = _units_per_look(looks, design.clusters, n_looks)
    n_star = float(design.sequential_n or units_at[-1] or 1)
    fast = _CellSums(trial, design, looks, n_looks) if _summable(design) else None
    rows: list[list[Look]] = [[] for _ in range(k - 1)]
    running = [1.0] * (k - 1)
    method_used = ""
    for t in range(n_looks):
        effects = fast.effects(t) if fast is not None else None
        if effects is None:
            effects = _run_estimator(trial, design, looks <= t, headline)
        for j, e in enumerate(effects[: k - 1]):
            if e.error is None:
                method_used = method_used or e.method
            n = units_at[t]
            ok = math.isfinite(e.estimate) and math.isfinite(e.std_error) and e.std_error > 0
            if ok and n > 0:
                h = half_width(e.std_error, n, alpha, n_star)
                running[j] = min(running[j], p_value(e.estimate, e.std_error, n, alpha, n_star))
                look = Look(
                    design.look_values[t],
                    int(n),
                    e.estimate,
                    e.estimate - h,
                    e.estimate + h,
                    running[j],
                )
            else:
                look = Look(design.look_values[t], int(n), math.nan, math.nan, math.nan, math.nan)
            rows[j].append(look)
    return [
        SequentialArm(trial.arms[j + 1], METHOD, tuple(rows[j]), method_used) for j in range(k - 1)
    ]


def _units_per_look(looks: np.ndarray, clusters: np.ndarray | None, n_looks: int) -> list[int]:
    """Randomized units up to each look: rows, or distinct clusters (by first look)."""
    if clusters is None:
        return np.cumsum(np.bincount(looks, minlength=n_looks)).tolist()
    first = np.full(int(clusters.max()) + 1 if len(clusters) else 0, n_looks, dtype=np.intp)
    np.minimum.at(first, clusters, looks)
    first = first[first < n_looks]
    return np.cumsum(np.bincount(first, minlength=n_looks)).tolist()


def _summable(design: Design) -> bool:
    return not design.clustered and not design.weighted


def _run_estimator(
    trial: Trial, design: Design, mask: np.ndarray, headline: Callable[[Design], HeadlineEstimator]
) -> list[Effect]:
    """The headline estimator on the rows up to a look (strata pooled for those rows)."""
    sub, sub_design = trial.subset(mask), design.subset(mask)
    k = len(trial.arms)
    counts = np.bincount(sub.arm, minlength=k)
    if np.any(counts < 2):
        return [_empty(trial, j) for j in range(1, k)]
    if sub_design.strata is not None:
        sub_design = replace(sub_design, pooled=pool_strata(sub, sub_design))
    return headline(sub_design)(sub, sub_design)


def _empty(trial: Trial, j: int) -> Effect:
    from experiments.analysis.results import failed_effect

    return failed_effect(
        trial.arms[j], trial.control, "difference_in_means", "too_few_rows", "too few rows yet"
    )


class _CellSums:
    """Cumulative n, sum and sum of squares per look x stratum x arm (outcome centred on
    its overall mean for precision), from which a look whose strata all hold two units
    per arm gets the blocked estimate (one stratum: the difference in means) in O(S K)."""

    def __init__(self, trial: Trial, design: Design, looks: np.ndarray, n_looks: int):
        k = len(trial.arms)
        strata = design.strata
        if strata is None:
            strata = np.zeros(trial.n, dtype=np.intp)
            s_count = 1
        else:
            s_count = int(strata.max()) + 1 if len(strata) else 1
        y = trial.y - (trial.y.mean() if trial.n else 0.0)
        key = (looks * s_count + strata) * k + trial.arm
        size = n_looks * s_count * k
        shape = (n_looks, s_count, k)
        self.n = np.cumsum(np.bincount(key, minlength=size).reshape(shape), axis=0)
        self.s = np.cumsum(np.bincount(key, weights=y, minlength=size).reshape(shape), axis=0)
        self.ss = np.cumsum(np.bincount(key, weights=y * y, minlength=size).reshape(shape), axis=0)
        self.trial = trial
        self.method = "blocked" if design.strata is not None else "difference_in_means"

    def effects(self, t: int) -> list[Effect] | None:
        n, s, ss = self.n[t], self.s[t], self.ss[t]
        present = n.sum(1) > 0
        n, s, ss = n[present], s[present], ss[present]
        if n.size == 0 or np.any(n < 2):
            return None  # tiny strata at this look: the estimator pools them
        mean = s / n
        var = np.maximum(ss - s * mean, 0.0) / (n - 1)
        w = n.sum(1) / n.sum()
        out = []
        for j in range(1, len(self.trial.arms)):
            est = float(w @ (mean[:, j] - mean[:, 0]))
            se = float(math.sqrt(w**2 @ (var[:, j] / n[:, j] + var[:, 0] / n[:, 0])))
            out.append(
                Effect(
                    self.trial.arms[j],
                    self.trial.control,
                    self.method,  # type: ignore[arg-type]
                    est,
                    se,
                    math.nan,
                    math.nan,
                    math.nan,
                    math.nan,
                    math.nan,
                    int(n[:, j].sum()),
                    int(n[:, 0].sum()),
                    math.nan,
                    math.nan,
                    math.nan,
                    math.nan,
                )
            )
        return out
