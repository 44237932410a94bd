"""Power: analytic sample size and minimum detectable effect for two proportions, the
inflation an interaction needs, and a simulation-based diagnosis of a campaign design.

The simulation follows DeclareDesign's `diagnose_design`: draw a population shaped like
the campaign's residents, randomize it as the design says, generate the outcome with a
known effect (and known heterogeneity across the pre-registered moderators), analyse it
exactly as the report does, and repeat (500 times by default). Power is the share of
simulated trials whose (multiplicity-adjusted) p-value is at most alpha.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field

import numpy as np
from scipy import optimize

from experiments.analysis.cells import grouped_stats
from experiments.analysis.dist import norm_isf
from experiments.analysis.estimators import difference_in_means
from experiments.analysis.heterogeneity import homogeneity_wald
from experiments.analysis.multiplicity import adjust
from experiments.bands import BandSpec
from experiments.design import CampaignDesign, moderator_bands

DEFAULT_SIMULATIONS = 500
CLUSTER_SIZES = {"household": 2, "neighbourhood": 40, "cluster": 20}


def _per_test_alpha(alpha: float, comparisons: int, correction: str) -> float:
    """Alpha per comparison: Bonferroni (Holm's first step, the conservative bound for Holm
    and BH alike) unless no correction is made."""
    if correction == "none" or comparisons <= 1:
        return alpha
    return alpha / comparisons


@dataclass(frozen=True)
class SampleSize:
    """Participants per arm to detect p_control -> p_treatment with a two-sided test."""

    n_per_arm: int
    n_total: int
    arms: int
    p_control: float
    p_treatment: float
    alpha: float
    alpha_per_test: float
    power: float
    correction: str

    def to_dict(self) -> dict:
        return asdict(self)


def sample_size_two_proportions(
    p_control: float,
    p_treatment: float,
    alpha: float = 0.05,
    power: float = 0.8,
    arms: int = 2,
    correction: str = "holm",
) -> SampleSize:
    """n = (z_{1-a/2} sqrt(2 pbar qbar) + z_{1-b} sqrt(p1 q1 + p2 q2))^2 / (p1 - p2)^2 per
    arm, with alpha split over the arms - 1 comparisons against control."""
    if not (0 < p_control < 1 and 0 < p_treatment < 1) or p_control == p_treatment:
        raise ValueError("proportions must lie strictly between 0 and 1 and differ")
    if arms < 2:
        raise ValueError("a trial needs at least two arms")
    a = _per_test_alpha(alpha, arms - 1, correction)
    p1, p2 = p_control, p_treatment
    pbar = (p1 + p2) / 2
    za, zb = norm_isf(a / 2), norm_isf(1 - power)
    n = za * math.sqrt(2 * pbar * (1 - pbar)) + zb * math.sqrt(p1 * (1 - p1) + p2 * (1 - p2))
    n = math.ceil(n * n / (p1 - p2) ** 2 - 1e-9)
    return SampleSize(n, n * arms, arms, p1, p2, alpha, a, power, correction)


def minimum_detectable_effect(
    p_control: float,
    n_treatment: int,
    n_control: int,
    alpha: float = 0.05,
    power: float = 0.8,
    comparisons: int = 1,
    correction: str = "holm",
) -> float:
    """The smallest rise above p_control detected with `power`: solves
    d = z_{1-a/2} sqrt(pbar qbar (1/n_T + 1/n_C)) + z_{1-b} sqrt(p1 q1/n_C + p2 q2/n_T)
    for d = p2 - p1 (the unequal-n form of the sample size formula)."""
    a = _per_test_alpha(alpha, comparisons, correction)
    za, zb = norm_isf(a / 2), norm_isf(1 - power)
    p1 = p_control

    def gap(d: float) -> float:
        p2 = p1 + d
        pbar = (n_control * p1 + n_treatment * p2) / (n_control + n_treatment)
        need = za * math.sqrt(
            pbar * (1 - pbar) * (1 / n_treatment + 1 / n_control)
        ) + zb * math.sqrt(p1 * (1 - p1) / n_control + p2 * (1 - p2) / n_treatment)
        return d - need

    hi = 1 - p1 - 1e-12
    if gap(hi) < 0:
        return math.nan
    return float(optimize.brentq(gap, 1e-12, hi, xtol=1e-12))


def interaction_inflation(ratio: float = 1.0, share: float = 0.5) -> float:
    """How many times the main-effect sample an interaction needs for the same power.

    For a binary moderator with `share` of participants in one level, the difference of
    the two subgroup effects has variance 1/(share (1 - share)) times the main effect's;
    an interaction `ratio` times the main effect needs 1/(share (1 - share) ratio^2) times
    the sample: 4 for ratio 1 at a 50/50 split, 16 for ratio 0.5.
    """
    if not 0 < share < 1 or ratio <= 0:
        raise ValueError("share must lie in (0, 1) and ratio be positive")
    return 1.0 / (share * (1 - share) * ratio * ratio)


@dataclass(frozen=True)
class PowerRow:
    target: str  # "main" or the moderator
    arm: str
    power: float
    mc_error: float
    mean_estimate: float = math.nan
    truth: float = math.nan
    bias: float = math.nan
    rmse: float = math.nan
    coverage: float = math.nan

    def to_dict(self) -> dict:
        return {
            k: (None if isinstance(v, float) and not math.isfinite(v) else v)
            for k, v in asdict(self).items()
        }


@dataclass
class PowerDiagnosis:
    design: str
    n_total: int
    n_per_arm: dict[str, int]
    simulations: int
    seed: int
    alpha: float
    correction: str
    outcome: str
    baseline: float
    effect: float
    heterogeneity: float
    main: list[PowerRow] = field(default_factory=list)
    interactions: list[PowerRow] = field(default_factory=list)
    analytic: SampleSize | None = None
    mde: dict[str, float] = field(default_factory=dict)
    inflation: float = 4.0
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict:
        d = {k: v for k, v in asdict(self).items() if k not in ("main", "interactions", "analytic")}
        d["main"] = [r.to_dict() for r in self.main]
        d["interactions"] = [r.to_dict() for r in self.interactions]
        d["analytic"] = self.analytic.to_dict() if self.analytic else None
        return d

    def to_text(self) -> str:
        pct = lambda x: "n/a" if not math.isfinite(x) else f"{100 * x:.1f}%"  # noqa: E731
        lines = [
            f"Design: {self.design}",
            f"Simulated {self.simulations} trials of {self.n_total} participants "
            f"({', '.join(f'{a} {n}' for a, n in self.n_per_arm.items())}), seed {self.seed}",
            f"Outcome {self.outcome}: control {self.baseline:g}, effect {self.effect:g} per "
            f"message arm; effect spread across moderator levels +/-{self.heterogeneity:g} "
            "x effect",
            f"alpha {self.alpha:g}, correction {self.correction}",
            "",
            "Main effect (power = share of trials with adjusted p <= alpha):",
        ]
        for r in self.main:
            lines.append(
                f"  {r.arm:<20} power {pct(r.power):>6} (+/- {pct(r.mc_error)})  "
                f"bias {r.bias:+.4f}  coverage {pct(r.coverage)}"
            )
        if self.interactions:
            lines.append(
                "Pre-registered interactions (Wald test that the effect is equal across levels):"
            )
            for r in self.interactions:
                lines.append(
                    f"  {r.target:<14} {r.arm:<20} power {pct(r.power):>6} (+/- {pct(r.mc_error)})"
                )
        if self.analytic:
            a = self.analytic
            lines += [
                "",
                f"Analytic: {a.n_per_arm} per arm ({a.n_total} in all) detect "
                f"{a.p_control:g} -> {a.p_treatment:g} with power {a.power:g} at "
                f"alpha {a.alpha_per_test:.4g} per comparison",
            ]
        for arm, m in self.mde.items():
            lines.append(f"  MDE for {arm} at this sample: {m:.4f}")
        lines.append(
            f"An interaction as large as the main effect (50/50 moderator) needs "
            f"{self.inflation:g} x the sample."
        )
        lines += [f"Note: {n}" for n in self.notes]
        return "\n".join(lines)


def _moderator_specs(design: CampaignDesign) -> list[BandSpec]:
    return [moderator_bands(design, name) for name in design.analysis.moderators]


def _population(rng: np.random.Generator, n: int) -> dict[str, np.ndarray]:
    items = np.clip(np.rint(rng.normal(3.0, 1.0, (n, 3))), 1, 5)
    return {
        "age": rng.integers(18, 86, n).astype(float),
        "self_efficacy": items.mean(axis=1),
        "gender": rng.integers(0, 2, n).astype(float),
        "individual_coproduction": (rng.random(n) < 0.6).astype(float),
        "country": rng.integers(0, 5, n).astype(float),
    }


def _levels(spec: BandSpec, values: np.ndarray) -> tuple[np.ndarray, int]:
    if spec.cuts is not None:
        return np.searchsorted(np.asarray(spec.cuts), values, side="right"), len(spec.cuts) + 1
    codes = values.astype(np.intp)
    return codes, int(codes.max()) + 1


def simulate_power(
    design: CampaignDesign,
    n_total: int | None = None,
    simulations: int = DEFAULT_SIMULATIONS,
    seed: int = 0,
    heterogeneity: float = 0.5,
    effect: float | None = None,
) -> PowerDiagnosis:
    """Diagnose a design by simulation; see the module docstring for the model.

    Each message arm raises the outcome by `effect` (the plan's minimum effect by default)
    on average; within each pre-registered moderator the effect runs linearly from
    (1 - heterogeneity) to (1 + heterogeneity) times that from the lowest to the highest
    level, so heterogeneity 0 gives no interaction to find.
    """
    plan = design.analysis
    arms = [a.key for a in design.arms]
    control = next(i for i, a in enumerate(design.arms) if a.control)
    order = [control] + [i for i in range(len(arms)) if i != control]
    arms = [arms[i] for i in order]
    weights = np.array([design.arms[i].weight for i in order], dtype=float)
    weights /= weights.sum()
    numeric = plan.primary_outcome == "self_efficacy_followup"
    baseline = 3.0 if numeric else plan.baseline_rate
    tau = plan.minimum_effect if effect is None else effect
    k = len(arms)
    analytic = None
    notes = []
    if not numeric and baseline + tau < 1:
        analytic = sample_size_two_proportions(
            baseline, baseline + tau, plan.alpha, plan.power, k, plan.correction
        )
    if n_total is None:
        n_total = design.planned_sample_size or (analytic.n_total if analytic else 1000)
    n_total = int(n_total)
    specs = _moderator_specs(design)
    strata_specs = [s for s in _moderator_specs_for_strata(design)]
    rng = np.random.default_rng(seed)
    cluster_size = CLUSTER_SIZES.get(design.randomization.cluster or "", 0)
    if cluster_size:
        notes.append(
            f"clusters of {cluster_size} with a cluster shock of sd 0.03 on the "
            "outcome; standard errors ignore clustering in this quick diagnosis, "
            "so power is optimistic"
        )
    est = np.full((simulations, k - 1), np.nan)
    se = np.full((simulations, k - 1), np.nan)
    p_main = np.full((simulations, k - 1), np.nan)
    p_int = np.full((simulations, len(specs), k - 1), np.nan)
    truth = np.zeros(k - 1)
    for s in range(simulations):
        pop = _population(rng, n_total)
        arm = _assign(rng, design, pop, strata_specs, weights, n_total, cluster_size)
        level_codes = [_levels(spec, pop[spec.column]) for spec in specs]
        shift = np.zeros(n_total)
        for codes, L in level_codes:
            if L > 1:
                shift += heterogeneity * (2 * codes / (L - 1) - 1)
        eff = tau * (1 + shift) * (arm > 0)
        per_arm = np.bincount(arm, weights=1 + shift, minlength=k) / np.bincount(arm, minlength=k)
        truth = tau * per_arm[1:]
        if numeric:
            y = pop["self_efficacy"] + eff + rng.normal(0, 0.7, n_total)
        else:
            p = baseline + eff
            if cluster_size:
                p = (
                    p
                    + rng.normal(0, 0.03, n_total // cluster_size + 1)[
                        np.arange(n_total) // cluster_size
                    ]
                )
            y = (rng.random(n_total) < np.clip(p, 0, 1)).astype(float)
        cells = grouped_stats(arm, y, k)
        for j in range(1, k):
            e = difference_in_means(cells[j], cells[0], plan.alpha)
            est[s, j - 1], se[s, j - 1], p_main[s, j - 1] = e.estimate, e.std_error, e.p_value
        p_main[s] = adjust(p_main[s], plan.correction)
        for m, (codes, L) in enumerate(level_codes):
            sub = grouped_stats(arm * L + codes, y, k * L)
            for j in range(1, k):
                d, v = [], []
                for lvl in range(L):
                    e = difference_in_means(sub[j * L + lvl], sub[lvl])
                    if e.error is None:
                        d.append(e.estimate)
                        v.append(e.std_error**2)
                if len(d) >= 2:
                    p_int[s, m, j - 1] = homogeneity_wald(d, v)[2]
        flat = p_int[s].ravel()
        p_int[s] = adjust(flat, plan.correction).reshape(p_int[s].shape)
    z = norm_isf(plan.alpha / 2)
    main = []
    for j in range(1, k):
        ok = ~np.isnan(p_main[:, j - 1])
        power = float(np.mean(p_main[ok, j - 1] <= plan.alpha)) if ok.any() else math.nan
        e, sd = est[ok, j - 1], se[ok, j - 1]
        cover = float(np.mean(np.abs(e - truth[j - 1]) <= z * sd)) if ok.any() else math.nan
        main.append(
            PowerRow(
                "main",
                arms[j],
                power,
                _mc(power, int(ok.sum())),
                float(e.mean()),
                float(truth[j - 1]),
                float(e.mean() - truth[j - 1]),
                float(np.sqrt(np.mean((e - truth[j - 1]) ** 2))),
                cover,
            )
        )
    inter = []
    for m, spec in enumerate(specs):
        for j in range(1, k):
            col = p_int[:, m, j - 1]
            ok = ~np.isnan(col)
            power = float(np.mean(col[ok] <= plan.alpha)) if ok.any() else math.nan
            inter.append(PowerRow(spec.column, arms[j], power, _mc(power, int(ok.sum()))))
    counts = np.round(weights * n_total).astype(int)
    mde = {}
    if not numeric:
        for j in range(1, k):
            mde[arms[j]] = minimum_detectable_effect(
                baseline,
                int(counts[j]),
                int(counts[0]),
                plan.alpha,
                plan.power,
                k - 1,
                plan.correction,
            )
    return PowerDiagnosis(
        design=design.name,
        n_total=n_total,
        n_per_arm={a: int(c) for a, c in zip(arms, counts, strict=True)},
        simulations=simulations,
        seed=seed,
        alpha=plan.alpha,
        correction=plan.correction,
        outcome=plan.primary_outcome,
        baseline=baseline,
        effect=tau,
        heterogeneity=heterogeneity,
        main=main,
        interactions=inter,
        analytic=analytic,
        mde=mde,
        inflation=interaction_inflation(),
        notes=notes,
    )


def _mc(power: float, sims: int) -> float:
    if not math.isfinite(power) or sims == 0:
        return math.nan
    return math.sqrt(power * (1 - power) / sims)


def _moderator_specs_for_strata(design: CampaignDesign) -> list[BandSpec]:
    out = []
    for s in design.randomization.strata:
        if s.cuts:
            out.append(BandSpec(s.moderator, tuple(s.cuts)))
        else:
            out.append(BandSpec(s.moderator))
    return out


def _assign(
    rng: np.random.Generator,
    design: CampaignDesign,
    pop: dict[str, np.ndarray],
    strata: list[BandSpec],
    weights: np.ndarray,
    n: int,
    cluster_size: int,
) -> np.ndarray:
    """Arm codes (0 = control) as the design randomizes: complete randomization within
    strata (blocked/complete), independent draws (simple), whole clusters if clustered."""
    k = len(weights)
    if cluster_size:
        g = n // cluster_size + 1
        arms_of = _complete_within(rng, np.zeros(g, dtype=np.int64), weights)
        return arms_of[np.arange(n) // cluster_size]
    if design.randomization.method == "simple":
        return rng.choice(k, n, p=weights)
    if not strata or design.randomization.method == "complete":
        return _complete_within(rng, np.zeros(n, dtype=np.int64), weights)
    key = np.zeros(n, dtype=np.int64)
    for spec in strata:
        codes, L = _levels(spec, pop.get(spec.column, np.zeros(n)))
        key = key * max(L, 1) + codes
    return _complete_within(rng, key, weights)


def _complete_within(rng: np.random.Generator, key: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Complete randomization inside every stratum at once: units in random order, then
    equally spaced positions (random start) cut by the cumulative weights, so each arm
    gets floor or ceil of n_s x p_arm units of stratum s."""
    n = len(key)
    order = np.lexsort((rng.random(n), key))
    sorted_key = key[order]
    starts = np.flatnonzero(np.r_[True, sorted_key[1:] != sorted_key[:-1]])
    sizes = np.diff(np.r_[starts, n])
    which = np.repeat(np.arange(len(starts)), sizes)
    rank = np.arange(n) - starts[which]
    pos = ((rank + rng.random(len(starts))[which]) / sizes[which]) % 1.0
    cuts = np.cumsum(weights)[:-1] / weights.sum()
    arm = np.empty(n, dtype=np.intp)
    arm[order] = np.searchsorted(cuts, pos, side="right")
    return arm
