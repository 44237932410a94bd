"""Randomization inference: p-values from re-running the design's own randomizer.

The arms are re-drawn R times with `experiments.randomization` (`block_ra`, or
`cluster_ra` when clusters were randomized: the same strata, the same clusters, the same
allocation weights; with recorded probabilities, each stratum's own), seeded, and every
estimator of the report is run again on each draw. The statistic is studentized (the
t statistic of an effect or a slope, the Wald chi-square or HTZ F of an interaction), and
p = (1 + #{|T*| >= |T|}) / (1 + R). When the design has no more distinct assignments than
R (every assignment with the observed number of units of each arm in each stratum), all
of them are enumerated and p = #{|T*| >= |T|} / (number of assignments): exact.

The null hypotheses: effects and subgroup effects are tested against the sharp null of no
effect for anyone (the outcomes stay as observed); interaction tests and slopes against a
constant effect per arm, imputed from the headline estimate (y - tau_arm, then + tau of the
re-drawn arm), as Ding, Feller and Miratrix (2016) suggest for effect heterogeneity.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Iterator, Sequence
from dataclasses import replace

import numpy as np

from experiments.analysis.estimates import Estimates, estimate_all
from experiments.analysis.trial import AnalysisInputError, Design, Trial
from experiments.randomization import Allocation, RandomizationError, block_ra, cluster_ra

ENUMERATION_LIMIT = 200_000
SHARP = frozenset({"effects", "adjusted", "subgroups"})  # re-estimated under no effect
DIFFER = frozenset({"subgroups", "slopes"})  # under a constant effect per arm
_TIE = 1e-9


def _units(trial: Trial, design: Design) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Randomized units (cluster per row, or the row), each unit's stratum and arm."""
    n = trial.n
    unit = design.clusters if design.clusters is not None else np.arange(n)
    strata = design.strata if design.strata is not None else np.zeros(n, dtype=np.intp)
    first = np.unique(unit, return_index=True)[1]
    unit_stratum = np.full(int(unit.max()) + 1, -1)
    unit_stratum[unit] = strata
    if np.any(unit_stratum[unit] != strata):
        raise AnalysisInputError(
            "randomization inference needs each cluster inside one stratum (the design's "
            "randomizer blocks clusters by characteristics the whole cluster shares)"
        )
    return unit, unit_stratum[unit[first]], trial.arm[first]


def _allocations(trial: Trial, design: Design, strata: np.ndarray) -> dict[int, Allocation]:
    """Each stratum's allocation: its recorded probabilities, or the design's weights."""
    arms = trial.arms
    weights = design.arm_weights or tuple(1.0 for _ in arms)
    if design.probability is None:
        return {int(s): Allocation(arms, weights) for s in np.unique(strata)}
    row_strata = design.strata if design.strata is not None else np.zeros(trial.n, dtype=np.intp)
    out = {}
    for s in np.unique(strata):
        in_s = row_strata == s
        p = np.array(
            [
                design.probability[in_s & (trial.arm == a)].mean()
                if np.any(in_s & (trial.arm == a))
                else np.nan
                for a in range(len(arms))
            ]
        )
        known = ~np.isnan(p)
        if not known.all():  # an arm absent from the stratum: share the rest by weight
            w = np.asarray(weights)
            p[~known] = max(1 - p[known].sum(), 0) * w[~known] / w[~known].sum()
        if np.any(p <= 0):
            raise AnalysisInputError(
                "randomization inference needs every arm's assignment probability in every "
                "stratum: give the strata (--block) the probabilities were set for"
            )
        try:
            out[int(s)] = Allocation(arms, tuple(float(x) for x in p))
        except RandomizationError as exc:
            raise AnalysisInputError(f"randomization inference: {exc}") from None
    return out


def _assignments_count(counts: np.ndarray) -> float:
    """How many assignments keep each stratum's arm counts (a product of multinomials)."""
    log = 0.0
    for row in counts:
        log += math.lgamma(row.sum() + 1) - sum(math.lgamma(c + 1) for c in row)
    return math.exp(min(log, 700.0))


def _arrangements(n: int, counts: Sequence[int]) -> Iterator[np.ndarray]:
    """Every distinct sequence of n arm codes with the given count of each arm."""
    if not counts:
        yield np.empty(0, dtype=np.intp)
        return
    first, rest = counts[0], counts[1:]
    for chosen in itertools.combinations(range(n), first):
        others = np.setdiff1d(np.arange(n), chosen)
        for tail in _arrangements(n - first, rest):
            out = np.zeros(n, dtype=np.intp)  # the chosen units get this arm (code 0)
            out[others] = tail + 1
            yield out


def _enumerate(unit_strata: np.ndarray, counts: np.ndarray) -> Iterator[np.ndarray]:
    """Every assignment of the units with the observed arm counts in each stratum."""
    strata = [np.flatnonzero(unit_strata == s) for s in range(len(counts))]
    options = [list(_arrangements(len(idx), list(counts[s]))) for s, idx in enumerate(strata)]
    for combo in itertools.product(*options):
        arms = np.empty(len(unit_strata), dtype=np.intp)
        for idx, choice in zip(strata, combo, strict=True):
            arms[idx] = choice
        yield arms


def _statistics(est: Estimates) -> tuple[np.ndarray, np.ndarray]:
    """|t| of effects, adjusted effects and subgroup effects (sharp null), then the
    interaction statistics and |t| of slopes (constant-effect null)."""
    effects = [*est.effects, *est.adjusted, *est.subgroups]
    sharp = np.array(
        [abs(e.estimate / e.std_error) if e.std_error > 0 else np.nan for e in effects]
    )
    differ = np.array(
        [t.statistic for t in est.interactions]
        + [abs(s.estimate / s.std_error) if s.std_error > 0 else np.nan for s in est.slopes]
    )
    return sharp, differ


def randomization_inference(
    trial: Trial,
    design: Design,
    moderators: Sequence,
    observed: Estimates,
    draws: int,
    seed: int = 0,
    progress: Callable[[int, int], None] | None = None,
) -> tuple[Estimates, dict]:
    """The observed estimates with `ri_p_value` set, and a summary of what was done."""
    k = len(trial.arms)
    unit, unit_strata, unit_arms = _units(trial, design)
    counts = np.zeros((int(unit_strata.max()) + 1, k), dtype=np.int64)
    np.add.at(counts, (unit_strata, unit_arms), 1)
    possible = _assignments_count(counts)
    exact = possible <= min(draws, ENUMERATION_LIMIT)
    if exact:
        assignments: Iterator[np.ndarray] = _enumerate(unit_strata, counts)
        total = int(round(possible))
    else:
        if design.weighted and design.strata is None:
            raise AnalysisInputError(
                "randomization inference needs the strata the probabilities were set for "
                "(--block), or equal probabilities within each arm"
            )
        assignments = _draws(trial, design, unit, unit_strata, draws, seed)
        total = draws
    tau = np.zeros(k)
    for e in observed.effects:
        if math.isfinite(e.estimate):
            tau[trial.arms.index(e.arm)] = e.estimate
    y0 = trial.y - tau[trial.arm]
    sharp_obs, differ_obs = _statistics(observed)
    sharp_hits = np.zeros(len(sharp_obs))
    differ_hits = np.zeros(len(differ_obs))
    sharp_valid = np.zeros(len(sharp_obs))
    differ_valid = np.zeros(len(differ_obs))
    moderators = list(moderators)
    for i, unit_arm in enumerate(assignments):
        arm = unit_arm[unit] if design.clusters is not None else unit_arm
        shuffled = replace(trial, arm=arm)
        sharp, _ = _statistics(estimate_all(shuffled, design, moderators, SHARP))
        if differ_obs.size:
            imputed = replace(shuffled, y=y0 + tau[arm])
            _, differ = _statistics(estimate_all(imputed, design, moderators, DIFFER))
            ok = ~np.isnan(differ)
            differ_valid += ok
            differ_hits += ok & (differ >= differ_obs * (1 - _TIE))
        ok = ~np.isnan(sharp)
        sharp_valid += ok
        sharp_hits += ok & (sharp >= sharp_obs * (1 - _TIE))
        if progress:
            progress(i + 1, total)
    if exact:
        sharp_p, differ_p = sharp_hits / sharp_valid, differ_hits / differ_valid
    else:
        sharp_p = (1 + sharp_hits) / (1 + sharp_valid)
        differ_p = (1 + differ_hits) / (1 + differ_valid)
    sharp_p[np.isnan(sharp_obs)] = np.nan
    differ_p[np.isnan(differ_obs)] = np.nan
    return _with_p(observed, sharp_p, differ_p), {
        "draws": total,
        "seed": seed,
        "exact": bool(exact),
        "statistic": "studentized (|t|, Wald chi-square or HTZ F)",
        "randomizer": "cluster_ra" if design.clusters is not None else "block_ra",
    }


def _draws(
    trial: Trial,
    design: Design,
    unit: np.ndarray,
    unit_strata: np.ndarray,
    draws: int,
    seed: int,
) -> Iterator[np.ndarray]:
    allocations = _allocations(trial, design, unit_strata)
    rng = np.random.default_rng(np.random.SeedSequence(int(seed)))
    groups: dict[tuple, list[int]] = {}
    for s, alloc in allocations.items():
        groups.setdefault(alloc.weights, []).append(s)
    n_units = len(unit_strata)
    for _ in range(draws):
        out = np.empty(n_units, dtype=np.intp)
        for members in groups.values():
            idx = np.flatnonzero(np.isin(unit_strata, members))
            alloc = allocations[members[0]]
            draw_seed = int(rng.integers(0, 2**63 - 1))
            if design.clusters is not None:
                out[idx] = cluster_ra(idx, alloc, draw_seed, unit_strata[idx])
            else:
                out[idx] = block_ra(unit_strata[idx], alloc, draw_seed)
        yield out


def _with_p(observed: Estimates, sharp_p: np.ndarray, differ_p: np.ndarray) -> Estimates:
    n_e, n_a = len(observed.effects), len(observed.adjusted)
    p = [float(x) for x in sharp_p]
    effects = [replace(e, ri_p_value=q) for e, q in zip(observed.effects, p[:n_e], strict=True)]
    adjusted = [
        replace(e, ri_p_value=q) for e, q in zip(observed.adjusted, p[n_e : n_e + n_a], strict=True)
    ]
    subgroups = [
        replace(s, ri_p_value=q) for s, q in zip(observed.subgroups, p[n_e + n_a :], strict=True)
    ]
    n_i = len(observed.interactions)
    d = [float(x) for x in differ_p]
    tests = [replace(t, ri_p_value=q) for t, q in zip(observed.interactions, d[:n_i], strict=True)]
    slopes = [replace(s, ri_p_value=q) for s, q in zip(observed.slopes, d[n_i:], strict=True)]
    return replace(
        observed,
        effects=effects,
        adjusted=adjusted,
        subgroups=subgroups,
        interactions=tests,
        slopes=slopes,
    )
