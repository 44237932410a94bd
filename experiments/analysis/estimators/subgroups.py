"""Subgroup effects by a moderator, and the test that an arm's effect differs across its
levels.

Without strata, clusters or unequal probabilities: the difference in means inside each
level (equal to the saturated arm x level OLS with HC2; Welch df) and the Wald
chi-square over the independent levels. Otherwise the estimator of the headline restricted
to the level: cells stratum x level (tiny cells pooled within the level as strata.py
says), each level's effect the contrast of standardized means over its cells, inverse-
probability weights where the probabilities call for them; the homogeneity test is the
Wald chi-square on the levels' (independent) estimates, or, with clusters, CR2 with
Bell-McCaffrey df for each level and the HTZ F test (Pustejovsky and Tipton 2018) across
levels, whose estimates share clusters.
"""

from __future__ import annotations

import math

import numpy as np

from experiments.analysis.cells import grouped_stats
from experiments.analysis.dist import chi2_sf
from experiments.analysis.heterogeneity import (
    interactions,
    level_contrasts,
    skipped_message,
    too_few_levels,
)
from experiments.analysis.linear import Block, DegenerateDesign, Fit
from experiments.analysis.means import difference_in_means
from experiments.analysis.registry import register
from experiments.analysis.results import (
    Heterogeneity,
    Interaction,
    SubgroupEffect,
    inference,
)
from experiments.analysis.saturated import describe, infer
from experiments.analysis.strata import pool_strata
from experiments.analysis.trial import Design, Trial


@register("subgroups", "difference_in_means", applies=lambda d: True, priority=0)
def subgroups_by_difference_in_means(trial: Trial, design: Design) -> Heterogeneity:
    m = trial.moderator
    assert m is not None
    k, L = len(trial.arms), max(len(m.levels), 1)
    cells = grouped_stats(trial.arm * L + m.codes, trial.y, k * L)
    subs = []
    for lvl, level in enumerate(m.levels):
        c = cells[lvl]
        for j in range(1, k):
            t = cells[j * L + lvl]
            e = difference_in_means(t, c, design.alpha, trial.arms[j], trial.control)
            subs.append(
                SubgroupEffect(
                    m.name,
                    level,
                    trial.arms[j],
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
                    m.family,
                    error=e.error,
                    message=e.message and f"{m.name}={level}: {e.message}",
                    reference=e.reference,
                )
            )
    return Heterogeneity(subs, interactions(subs, trial.arms, trial.control))


def _units(trial: Trial, design: Design, L: int) -> np.ndarray:
    """Units (rows, or clusters) per level x arm."""
    k = len(trial.arms)
    cell = trial.moderator.codes * k + trial.arm  # type: ignore[union-attr]
    if design.clusters is None:
        return np.bincount(cell, minlength=L * k).reshape(L, k)
    pairs = np.unique(np.column_stack([cell, design.clusters]), axis=0)
    return np.bincount(pairs[:, 0], minlength=L * k).reshape(L, k)


def _design_aware(trial: Trial, design: Design, method: str) -> Heterogeneity:
    m = trial.moderator
    assert m is not None
    k, L = len(trial.arms), len(m.levels)
    units = _units(trial, design, L)
    ok = units >= 2  # (level, arm) estimable
    cell = np.full(trial.n, -1, dtype=np.intp)
    share: list[float] = []
    level_cells: list[np.ndarray] = []
    weighted = design.weighted
    pooled_count = 0
    for lvl in range(L):
        rows = m.codes == lvl
        start = len(share)
        if design.stratified and ok[lvl].sum() >= 2:
            sub_trial, sub_design = trial.subset(rows), design.subset(rows)
            pooled = pool_strata(sub_trial, sub_design, arms=ok[lvl])
            weighted = weighted or pooled.weighted
            codes = pooled.codes
            pooled_count = max(pooled_count, pooled.count)
        else:
            codes = np.zeros(int(rows.sum()), dtype=np.intp)
        count = int(codes.max()) + 1 if len(codes) else 0
        cell[rows] = start + codes
        share.extend(np.bincount(codes, minlength=count) / max(len(codes), 1))
        level_cells.append(np.arange(start, start + count))
    share_arr = np.array(share)
    weight = 1.0 / design.probability if weighted and design.probability is not None else None
    reference = describe(design, weighted, pooled_count or None)
    # One block per arm holding the cells of the levels where that arm is estimable.
    blocks: list[Block] = []
    position: dict[int, int] = {}  # arm -> its block in the fit
    local: dict[int, np.ndarray] = {}  # arm -> global cell -> the block's cell
    for a in range(k):
        mine = [level_cells[lvl] for lvl in range(L) if ok[lvl, a]]
        if not mine:
            continue
        cells_a = np.concatenate(mine)
        remap = np.full(len(share_arr), -1, dtype=np.intp)
        remap[cells_a] = np.arange(len(cells_a))
        rows = np.flatnonzero((trial.arm == a) & ok[m.codes, a])
        position[a], local[a] = len(blocks), remap
        blocks.append(
            Block(
                rows,
                remap[cell[rows]],
                len(cells_a),
                np.zeros((len(rows), 0)),
                None if weight is None else weight[rows],
            )
        )
    try:
        fit = Fit(trial.y, blocks)
    except DegenerateDesign as exc:
        return _all_failed(trial, str(exc), method, reference)

    def mean_row(a: int, lvl: int) -> np.ndarray:
        row = np.zeros(fit.k)
        cells = level_cells[lvl]
        row[fit.offsets[position[a]] + local[a][cells]] = share_arr[cells]
        return row

    subs: list[SubgroupEffect] = []
    tests: list[Interaction] = []
    for j in range(1, k):
        levels_ok = [lvl for lvl in range(L) if ok[lvl, j] and ok[lvl, 0]]
        est = V = df = None
        failure = ""
        if levels_ok:
            means = np.array([r for lvl in levels_ok for r in (mean_row(j, lvl), mean_row(0, lvl))])
            try:
                res = infer(
                    fit, np.vstack([means[0::2] - means[1::2], means]), design, design.clusters
                )
                est, V, df = res.estimates, res.covariance, res.df
            except DegenerateDesign as exc:
                failure = str(exc)
        rows: list[SubgroupEffect] = []
        for lvl in range(L):
            in_level = m.codes == lvl
            nt = int((in_level & (trial.arm == j)).sum())
            nc = int((in_level & (trial.arm == 0)).sum())
            if lvl not in levels_ok or est is None:
                why = failure or (
                    f"{units[lvl, j]} unit(s) of {trial.arms[j]!r} and {units[lvl, 0]} of "
                    f"{trial.control!r}: each needs at least two"
                )
                rows.append(_failed(m, lvl, trial, j, nt, nc, why, method, reference))
                continue
            i, n_ok = levels_ok.index(lvl), len(levels_ok)
            var = float(V[i, i])
            if not var > 0:
                rows.append(_failed(m, lvl, trial, j, nt, nc, "no variation", method, reference))
                continue
            inf = inference(float(est[i]), math.sqrt(var), float(df[i]), design.alpha)
            rows.append(
                SubgroupEffect(
                    m.name,
                    m.levels[lvl],
                    trial.arms[j],
                    nt + nc,
                    nt,
                    nc,
                    float(est[n_ok + 2 * i]),
                    float(est[n_ok + 2 * i + 1]),
                    inf.estimate,
                    inf.std_error,
                    inf.ci_low,
                    inf.ci_high,
                    inf.p_value,
                    inf.df,
                    m.family,
                    method=method,
                    reference=reference,
                )
            )
        tests.append(_homogeneity(fit, trial, design, j, rows, mean_row))
        subs.extend(rows)
    # level by level, arms in order within a level
    subs.sort(key=lambda s: (m.levels.index(s.level), trial.arms.index(s.arm)))
    return Heterogeneity(subs, tests)


def _homogeneity(fit, trial, design, j, rows, mean_row) -> Interaction:
    m = trial.moderator
    good = [lvl for lvl, s in enumerate(rows) if s.error is None]
    arm = trial.arms[j]
    if len(good) < 2:
        return too_few_levels(m.name, arm, m.family, len(good))
    d = np.array([mean_row(j, lvl) - mean_row(0, lvl) for lvl in good])
    B = level_contrasts(len(good)) @ d  # each level's effect minus the first's
    message = skipped_message(rows, [rows[lvl] for lvl in good])
    est = fit.estimates(B)
    q = len(good) - 1
    if design.clusters is not None:
        F, q, df2, p = fit.cr2(B, design.clusters).htz(est)
        return Interaction(
            m.name,
            arm,
            F,
            q,
            p,
            m.family,
            len(good),
            message=message,
            test="htz_f",
            df_denominator=df2,
            reference=f"F, {q} and estimated denominator df (HTZ, CR2, "
            f"{design.n_clusters} clusters)",
        )
    V = fit.hc2(B)
    try:
        w = float(est @ np.linalg.solve(V, est))
    except np.linalg.LinAlgError:
        return Interaction(
            m.name, arm, math.nan, q, math.nan, m.family, len(good), "singular", message
        )
    return Interaction(
        m.name,
        arm,
        w,
        q,
        chi2_sf(w, q),
        m.family,
        len(good),
        message=message,
        reference=f"chi-square, {q} df (Wald, independent levels, HC2 within strata)",
    )


def _failed(m, lvl, trial, j, nt, nc, why, method, reference) -> SubgroupEffect:
    nan = math.nan
    return SubgroupEffect(
        m.name,
        m.levels[lvl],
        trial.arms[j],
        nt + nc,
        nt,
        nc,
        nan,
        nan,
        nan,
        nan,
        nan,
        nan,
        nan,
        nan,
        m.family,
        error="too_few_rows",
        message=f"{m.name}={m.levels[lvl]}: {why}",
        method=method,
        reference=reference,
    )


def _all_failed(trial, why, method, reference) -> Heterogeneity:
    m = trial.moderator
    subs = []
    for lvl in range(len(m.levels)):
        for j in range(1, len(trial.arms)):
            nt = int(((m.codes == lvl) & (trial.arm == j)).sum())
            nc = int(((m.codes == lvl) & (trial.arm == 0)).sum())
            subs.append(_failed(m, lvl, trial, j, nt, nc, why, method, reference))
    tests = [too_few_levels(m.name, trial.arms[j], m.family, 0) for j in range(1, len(trial.arms))]
    return Heterogeneity(subs, tests)


@register("subgroups", "cluster_robust", applies=lambda d: d.clustered, priority=30)
def subgroups_cluster_robust(trial: Trial, design: Design) -> Heterogeneity:
    return _design_aware(trial, design, "cluster_robust")


@register("subgroups", "blocked", applies=lambda d: d.stratified, priority=20)
def subgroups_blocked(trial: Trial, design: Design) -> Heterogeneity:
    return _design_aware(trial, design, "blocked")


@register("subgroups", "ipw", applies=lambda d: d.weighted, priority=10)
def subgroups_ipw(trial: Trial, design: Design) -> Heterogeneity:
    return _design_aware(trial, design, "ipw")
