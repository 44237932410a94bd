"""The test that an arm's effect is the same at every level of a moderator, from
independent subgroup estimates: W = d'A'(A V A')^-1 A d with contrasts A of every level
against the first, chi-square with (levels - 1) df. Levels are disjoint groups of rows,
so without clusters their estimates are independent (V diagonal)."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from experiments.analysis.dist import chi2_sf
from experiments.analysis.results import Interaction, SubgroupEffect


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
    A = level_contrasts(k)
    Ad = A @ d
    AVA = (A * v) @ A.T
    w = float(Ad @ np.linalg.solve(AVA, Ad))
    return w, k - 1, chi2_sf(w, k - 1)


def level_contrasts(k: int) -> np.ndarray:
    """Rows: each level minus the first ((k - 1) x k)."""
    return np.hstack([-np.ones((k - 1, 1)), np.eye(k - 1)])


def too_few_levels(moderator: str, arm: str, family, levels: int) -> Interaction:
    return Interaction(
        moderator,
        arm,
        math.nan,
        0,
        math.nan,
        family,
        levels,
        error="too_few_levels",
        message=f"{moderator}: fewer than two levels with an estimable effect for {arm!r}",
    )


def interactions(
    subgroups: Sequence[SubgroupEffect], arms: Sequence[str], control: str
) -> list[Interaction]:
    """Homogeneity test per arm over the levels whose subgroup effect could be estimated."""
    out: list[Interaction] = []
    if not subgroups:
        return out
    moderator, family = subgroups[0].moderator, subgroups[0].family
    for arm in arms:
        if arm == control:
            continue
        rows = [s for s in subgroups if s.arm == arm]
        ok = [s for s in rows if s.error is None and s.std_error > 0]
        if len(ok) < 2:
            out.append(too_few_levels(moderator, arm, family, len(ok)))
            continue
        w, df, p = homogeneity_wald([s.estimate for s in ok], [s.std_error**2 for s in ok])
        out.append(
            Interaction(
                moderator,
                arm,
                w,
                df,
                p,
                family,
                len(ok),
                message=skipped_message(rows, ok),
                reference=f"chi-square, {df} df (Wald, independent levels)",
            )
        )
    return out


def skipped_message(rows: Sequence[SubgroupEffect], ok: Sequence[SubgroupEffect]) -> str:
    skipped = [s.level for s in rows if s not in ok]
    if not skipped:
        return ""
    return f"left out level(s) {', '.join(skipped)} (too few participants or no variation)"
