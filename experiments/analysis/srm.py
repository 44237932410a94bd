"""Sample ratio mismatch that fits the design: the randomized units (clusters in a cluster
design, participants otherwise) counted per arm and compared, stratum by stratum, with the
probabilities each stratum was randomized with (the recorded ones when there are any).

Within stratum s with n_s units and arm probabilities P_s, the arm counts O_s are
multinomial(n_s, P_s) under a working randomization. Their totals over strata have mean
E = sum_s n_s P_s and covariance V = sum_s n_s (diag P_s - P_s P_s'); the statistic
(O - E)' V^- (O - E) is chi-square with (arms - 1) df. With one stratum it is Pearson's
chi-square against the design weights; with strata of different probabilities it is the
comparison of arm counts with the sums of the recorded probabilities that a pooled
Pearson test gets wrong (it alarms on every stratified design with unequal probabilities).
Complete or blocked randomization fixes the counts, so the test is then conservative; a
sample ratio mismatch is flagged at p < 0.001 as GrowthBook, Eppo and Optimizely do.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np
from scipy import special

from experiments.diagnostics import SRM_THRESHOLD, SRMResult

# Recorded probabilities of a stratum's arms that sum to within this of 1 are taken as given.
PROBABILITY_TOLERANCE = 1e-6


def stratified_srm(
    observed: np.ndarray,
    probabilities: np.ndarray,
    arms: Sequence[str],
    *,
    unit: str = "participants",
    threshold: float = SRM_THRESHOLD,
) -> SRMResult:
    """The test from a strata x arms table of unit counts and one of arm probabilities
    (each row summing to one). Arms with probability zero everywhere are left out of the
    df; a unit in a cell of probability zero is an error (it cannot have been allocated)."""
    counts = np.asarray(observed, dtype=float).reshape(-1, len(arms))
    P = np.asarray(probabilities, dtype=float).reshape(counts.shape)
    n = counts.sum(1)
    total = counts.sum(0)
    E = (n[:, None] * P).sum(0)
    obs = {str(a): int(round(t)) for a, t in zip(arms, total, strict=True)}
    exp = {str(a): float(e) for a, e in zip(arms, E, strict=True)}
    strata = int((n > 0).sum())

    def fail(code: str, message: str) -> SRMResult:
        return SRMResult(
            math.nan,
            max(len(arms) - 1, 0),
            math.nan,
            False,
            obs,
            exp,
            threshold,
            code,
            message,
            unit=unit,
            strata=strata,
        )

    if len(arms) < 2:
        return fail("too_few_arms", "the sample ratio test needs at least two arms")
    if n.sum() == 0:
        return fail("no_participants", f"no {unit} yet: nothing to compare")
    if np.any((P == 0) & (counts > 0)):
        return fail("zero_weight_arm", "an arm with weight 0 has participants")
    live = P.max(0) > 0
    if live.sum() < 2:
        return fail("too_few_arms", "the sample ratio test needs at least two arms")
    d = (total - E)[live][:-1]
    V = np.zeros((live.sum(), live.sum()))
    for ns, ps in zip(n, P[:, live], strict=True):
        if ns:
            V += ns * (np.diag(ps) - np.outer(ps, ps))
    V = V[:-1, :-1]
    # A V that is singular (an arm drawn with probability one in every stratum) tests only
    # what can vary: the pseudo-inverse, with the df its rank.
    eig = np.linalg.eigvalsh(V) if V.size else np.array([])
    tol = max(eig.max(initial=0.0), 1.0) * 1e-10
    df = int((eig > tol).sum())
    statistic = float(d @ np.linalg.pinv(V, rcond=1e-10, hermitian=True) @ d) if df else 0.0
    return _chi_square(statistic, df, obs, exp, threshold, unit, strata)


def _chi_square(
    statistic: float,
    df: int,
    observed: dict[str, int],
    expected: dict[str, float],
    threshold: float,
    unit: str,
    strata: int,
) -> SRMResult:
    """The test of a chi-square `statistic` on `df` degrees of freedom (none: p is NaN)."""
    p_value = float(special.chdtrc(df, statistic)) if df > 0 else math.nan
    return SRMResult(
        statistic,
        df,
        p_value,
        bool(p_value < threshold),
        observed,
        expected,
        threshold,
        unit=unit,
        strata=strata,
    )


def design_srm(
    arm: np.ndarray,
    arms: Sequence[str],
    weights: Mapping[str, float] | None = None,
    *,
    strata: np.ndarray | None = None,
    stratum_labels: Sequence[str] = (),
    clusters: np.ndarray | None = None,
    cluster_labels: Sequence[str] = (),
    probability: np.ndarray | None = None,
    threshold: float = SRM_THRESHOLD,
) -> SRMResult:
    """The design's sample ratio test from per-row codes (arm: -1 = no arm; strata,
    clusters: integer codes, -1 = missing; probability: the recorded probability of the
    row's own arm, NaN = missing).

    - Clusters: each cluster is one unit, in its arm and its stratum (a cluster whose
      members hold several arms was not randomized whole: an error, nothing flagged).
    - Strata: a stratum's probability of arm a is the recorded probability of its units
      in arm a; an arm with no unit in the stratum shares what the others leave, in
      proportion to the design weights. Without recorded probabilities every stratum has
      the design weights (and the test is Pearson's).
    """
    arms = [str(a) for a in arms]
    k = len(arms)
    if weights is not None:
        unknown = [a for a in arms if a not in {str(x) for x in weights}]
        if unknown:
            return _failed(
                arms,
                "unknown_arm",
                f"arm(s) {', '.join(unknown)} have participants but no design weight",
            )
    w = np.array([float((weights or {}).get(a, 1.0)) for a in arms])
    if not np.all(np.isfinite(w)) or np.any(w < 0) or w.sum() <= 0:
        return _failed(
            arms, "bad_weights", "design weights must be non-negative numbers, not all zero"
        )
    w = w / w.sum()
    arm = np.asarray(arm)
    ok = arm >= 0
    n_rows = len(arm)
    s = np.zeros(n_rows, dtype=np.intp) if strata is None else np.asarray(strata, np.intp)
    ok &= s >= 0
    unit = "participants"
    p = None if probability is None else np.asarray(probability, dtype=float)
    if p is not None:
        ok &= np.isfinite(p)
    if clusters is not None:
        unit = "clusters"
        g = np.asarray(clusters, dtype=np.intp)
        ok &= g >= 0
        g, a, s_ok = g[ok], arm[ok], s[ok]
        order = np.argsort(g, kind="stable")
        g, a, s_ok = g[order], a[order], s_ok[order]
        first = np.r_[True, g[1:] != g[:-1]]
        start = np.flatnonzero(first)
        which = np.cumsum(first) - 1
        if np.any(a != a[start][which]):
            bad = int(g[np.flatnonzero(a != a[start][which])[0]])
            name = cluster_labels[bad] if bad < len(cluster_labels) else str(bad)
            return _failed(
                arms,
                "mixed_clusters",
                f"cluster {name!r} has members in more than one arm: the test counts "
                "clusters, so each cluster must have been randomized whole",
                unit,
            )
        arm_u, s_u = a[start], s_ok[start]
        p_u = None if p is None else p[ok][order][start]
    else:
        arm_u, s_u = arm[ok], s[ok]
        p_u = None if p is None else p[ok]
    n_strata = int(s_u.max()) + 1 if len(s_u) else 1
    counts = np.zeros((n_strata, k))
    np.add.at(counts, (s_u, arm_u), 1.0)
    if p_u is None:
        P = np.tile(w, (n_strata, 1))
    else:
        P, problem = _stratum_probabilities(counts, s_u, arm_u, p_u, w, stratum_labels)
        if problem:
            return _failed(arms, "bad_probabilities", problem, unit)
    return stratified_srm(counts, P, arms, unit=unit, threshold=threshold)


def _failed(arms: Sequence[str], code: str, message: str, unit: str = "participants"):
    return SRMResult(
        math.nan,
        max(len(arms) - 1, 0),
        math.nan,
        False,
        {},
        {},
        error=code,
        message=message,
        unit=unit,
    )


def _stratum_probabilities(
    counts: np.ndarray,
    s: np.ndarray,
    a: np.ndarray,
    p: np.ndarray,
    w: np.ndarray,
    labels: Sequence[str],
) -> tuple[np.ndarray, str]:
    """Each stratum x arm's recorded probability (the median over its units), completed."""
    S, k = counts.shape
    recorded = np.full((S, k), np.nan)
    key = s * k + a
    order = np.argsort(key, kind="stable")
    ks, ps = key[order], p[order]
    bounds = np.flatnonzero(np.r_[True, ks[1:] != ks[:-1], True])
    for lo, hi in zip(bounds[:-1], bounds[1:], strict=True):
        recorded.flat[ks[lo]] = float(np.median(ps[lo:hi]))
    return complete_probabilities(recorded, w, labels)


def complete_probabilities(
    recorded: np.ndarray, weights: np.ndarray, labels: Sequence[str] = ()
) -> tuple[np.ndarray, str]:
    """Strata x arms probabilities from the recorded ones (NaN where a stratum has nobody
    in an arm): an arm without units shares what the recorded ones leave, in proportion to
    the design `weights`; a stratum with no recorded value takes the weights. Returns the
    table and a sentence naming the first stratum whose probabilities add up to more
    than one ("" when none does)."""
    w = np.asarray(weights, dtype=float)
    w = w / w.sum()
    P = np.array(recorded, dtype=float)
    for j in range(P.shape[0]):
        known = ~np.isnan(P[j])
        if not known.any():
            P[j] = w
            continue
        total = P[j, known].sum()
        if total > 1 + PROBABILITY_TOLERANCE or total <= 0:
            name = labels[j] if j < len(labels) else str(j)
            return P, (
                f"the recorded probabilities of stratum {name!r} add up to {total:.4g} over "
                "its arms: each arm's probability can be at most one in all"
            )
        rest = w[~known]
        if known.all() or rest.sum() <= 0:
            P[j, ~known] = 0.0
            P[j] = P[j] / total  # rounding in the recorded values
        else:
            P[j, ~known] = (1 - total) * rest / rest.sum()
    return P, ""


def saturation_srm(
    arm: np.ndarray,
    arms: Sequence[str],
    clusters: np.ndarray,
    saturation: np.ndarray,
    *,
    control: int = 0,
    levels: Sequence[float] = (),
    cluster_labels: Sequence[str] = (),
    threshold: float = SRM_THRESHOLD,
) -> SRMResult:
    """The sample ratio test of a randomized saturation design, from per-row codes (arm:
    -1 = no arm; clusters: integer codes, -1 = missing; saturation: the row's cluster's
    share, NaN = missing). A saturation design randomizes twice, so it is tested twice:

    1. **Clusters to saturations**, with equal chances: the clusters at each saturation
       against an equal share of all clusters (Pearson, df = levels - 1);
    2. **Members to the offered arm** at their cluster's share: a cluster of m members at
       saturation s is expected to have s m offered (any arm but `control`) and (1 - s) m
       not; the expected counts are summed per saturation and compared with the observed
       ones with binomial variance sum m s (1 - s) (df = saturations strictly between 0
       and 1).

    The two stages are independent under the design, so the statistic is their sum,
    chi-square with the summed df. Both are conservative under complete randomization
    (cluster counts within one of equal, offered counts within one of s m), exact under
    independent draws (members who arrive later). An offered member of a saturation-0
    cluster, a member left out at saturation 1, or a cluster with two saturations cannot
    have been allocated: an error naming the cluster, nothing flagged.
    """
    arms = [str(a) for a in arms]
    # The counts shown are members (participants); the clusters per saturation are tested too.
    unit = "participants"
    if len(arms) < 2:
        return _failed(arms, "too_few_arms", "the sample ratio test needs at least two arms", unit)
    arm = np.asarray(arm)
    g = np.asarray(clusters, dtype=np.intp)
    s = np.round(np.asarray(saturation, dtype=float), 6)
    ok = (arm >= 0) & (g >= 0) & np.isfinite(s)
    arm, g, s = arm[ok], g[ok], s[ok]
    if len(arm) == 0:
        return _failed(arms, "no_participants", "no participants yet: nothing to compare", unit)

    def name(code: int) -> str:
        return repr(cluster_labels[code]) if code < len(cluster_labels) else repr(str(code))

    if np.any((s < 0) | (s > 1)):
        return _failed(arms, "bad_saturation", "a saturation is a share between 0 and 1", unit)
    offered = arm != control
    for bad, what in (
        (offered & (s == 0), "an offered member but saturation 0"),
        (~offered & (s == 1), "a member not offered but saturation 1"),
    ):
        if bad.any():
            return _failed(
                arms,
                "zero_weight_arm",
                f"cluster {name(int(g[np.flatnonzero(bad)[0]]))} has {what}: it cannot have "
                "been allocated so",
                unit,
            )
    ids, first = np.unique(g, return_index=True)
    cluster_sat = s[first]
    differs = s != cluster_sat[np.searchsorted(ids, g)]
    if differs.any():
        return _failed(
            arms,
            "mixed_saturations",
            f"cluster {name(int(g[np.flatnonzero(differs)[0]]))} has members at more than one "
            "saturation: each cluster is randomized to one",
            unit,
        )
    grid = sorted({round(float(x), 6) for x in levels} | set(cluster_sat.tolist()))
    # Stage 1: clusters per saturation, equal chances.
    per_level = np.array([(cluster_sat == x).sum() for x in grid], dtype=float)
    expected_clusters = per_level.sum() / len(grid)
    stat1 = float(((per_level - expected_clusters) ** 2).sum() / expected_clusters)
    df1 = len(grid) - 1
    # Stage 2: members offered at their cluster's share, summed per saturation.
    stat2, df2 = 0.0, 0
    for x in grid:
        at = s == x
        n = int(at.sum())
        if n and 0 < x < 1:
            o = float(offered[at].sum())
            stat2 += (o - n * x) ** 2 / (n * x * (1 - x))
            df2 += 1
    counts = np.bincount(arm, minlength=len(arms))
    expected_offered = float(s.sum())
    others = [i for i in range(len(arms)) if i != control]
    share = counts[others] / max(counts[others].sum(), 1)
    exp = {arms[control]: float(len(s) - expected_offered)}
    for i, sh in zip(others, share, strict=True):
        exp[arms[i]] = expected_offered * float(sh) if len(others) > 1 else expected_offered
    obs = {a: int(c) for a, c in zip(arms, counts, strict=True)}
    return _chi_square(stat1 + stat2, df1 + df2, obs, exp, threshold, unit, len(grid))
