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
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace

import numpy as np
from scipy import optimize, stats

from experiments.analysis.dist import norm_isf
from experiments.analysis.engine import family_method
from experiments.analysis.estimates import estimate_all
from experiments.analysis.multiplicity import adjust
from experiments.analysis.strata import pool_strata
from experiments.analysis.trial import Design, Moderator, Trial
from experiments.bands import BandSpec
from experiments.design import CampaignDesign, moderator_bands

DEFAULT_SIMULATIONS = 500
CLUSTER_SIZES = {"household": 2, "neighbourhood": 40, "cluster": 20}
DEFAULT_ICC = 0.05


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


def design_effect(icc: float, cluster_size: float, cv: float = 0.0) -> float:
    """Variance inflation of a cluster-randomized comparison: 1 + (m - 1) rho for clusters
    of m, 1 + ((cv^2 + 1) m - 1) rho when sizes vary with coefficient of variation cv
    (Eldridge, Ashby and Kerry 2006)."""
    if not 0 <= icc < 1 or cluster_size < 1:
        raise ValueError("the ICC must lie in [0, 1) and clusters hold at least one person")
    return 1.0 + ((cv * cv + 1.0) * cluster_size - 1.0) * icc


def analytic_power(
    effect: float,
    sd_treatment: float,
    sd_control: float,
    n_treatment: float,
    n_control: float,
    alpha: float = 0.05,
    design_eff: float = 1.0,
    df: float = math.inf,
) -> float:
    """Power of the two-sided test of a difference in means as the report makes it: the
    unpooled (Neyman) standard error sqrt(DE (s_T^2/n_T + s_C^2/n_C)), inflated by the
    design effect, read against t(df) (the noncentral t; df = inf: the normal). With clusters,
    df = clusters in the two arms - 2."""
    se = math.sqrt(design_eff * (sd_treatment**2 / n_treatment + sd_control**2 / n_control))
    ncp = abs(effect) / se
    if math.isinf(df):
        z = stats.norm.isf(alpha / 2)
        return float(stats.norm.sf(z - ncp) + stats.norm.cdf(-z - ncp))
    crit = stats.t.isf(alpha / 2, df)
    return float(stats.nct.sf(crit, df, ncp) + stats.nct.cdf(-crit, df, ncp))


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
    analytic: float = math.nan  # the formula's power (main effects)

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
    icc: float = 0.0
    cluster_size: int = 0
    clusters: int = 0
    design_effect: float = 1.0
    estimator: str = ""
    interaction_test: str = ""

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
        ]
        if self.clusters:
            lines.append(
                f"Clusters: {self.clusters} of {self.cluster_size}, ICC {self.icc:g}, design "
                f"effect {self.design_effect:.3g}"
            )
        lines += [
            f"Outcome {self.outcome}: control {self.baseline:g}, effect {self.effect:g} per "
            f"message arm on average; effect spread across moderator levels +/-"
            f"{self.heterogeneity:g} x effect (centred: the average stays {self.effect:g})",
            f"alpha {self.alpha:g}, correction {self.correction}; analysed as the report "
            f"does: {self.estimator}",
            "",
            "Main effect (power = share of trials with adjusted p <= alpha; analytic = "
            "the formula, design effect included):",
        ]
        for r in self.main:
            lines.append(
                f"  {r.arm:<20} power {pct(r.power):>6} (+/- {pct(r.mc_error)})  "
                f"analytic {pct(r.analytic):>6}  bias {r.bias:+.4f}  coverage {pct(r.coverage)}"
            )
        if self.interactions:
            lines.append(
                "Pre-registered interactions (test that the effect is equal across levels: "
                f"{self.interaction_test}):"
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
                f"alpha {a.alpha_per_test:.4g} per comparison"
                + (
                    f", before the design effect ({self.design_effect:.3g} x with clusters)"
                    if self.clusters
                    else ""
                ),
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


def _self_efficacy_variance() -> float:
    """Variance of the simulated self-efficacy score: the mean of three items, each a
    standard normal around 3 rounded and clipped to 1..5."""
    edges = np.array([-np.inf, -1.5, -0.5, 0.5, 1.5, np.inf])
    p = np.diff(stats.norm.cdf(edges))
    k = np.arange(1, 6) - 3.0
    return float((p * k * k).sum() / 3)


NUMERIC_NOISE_SD = 0.7


def _values(pop: dict[str, np.ndarray], name: str, rng: np.random.Generator, n: int):
    """A moderator's simulated values (three levels at random for a variable the simulated
    population does not model)."""
    if name not in pop:
        pop[name] = rng.integers(0, 3, n).astype(float)
    return pop[name]


def _levels(spec: BandSpec, values: np.ndarray) -> tuple[np.ndarray, int]:
    if spec.cuts is not None:
        return np.searchsorted(np.asarray(spec.cuts), values, side="right"), len(spec.cuts) + 1
    codes = values.astype(np.intp)
    return codes, int(codes.max()) + 1


Progress = Callable[[int, int], None]


def simulate_power(
    design: CampaignDesign,
    n_total: int | None = None,
    simulations: int = DEFAULT_SIMULATIONS,
    seed: int = 0,
    heterogeneity: float = 0.5,
    effect: float | None = None,
    icc: float | None = None,
    cluster_size: int | None = None,
    progress: Progress | None = None,
) -> PowerDiagnosis:
    """Diagnose a design by simulation; see the module docstring for the model.

    Each message arm raises the outcome by `effect` (the plan's minimum effect by default)
    on average. Within each pre-registered moderator the effect runs linearly from
    (1 - heterogeneity) to (1 + heterogeneity) times that from the lowest to the highest
    level, then the spread is centred on the simulated residents so that the average
    effect is exactly `effect` whatever the moderator's distribution (heterogeneity 0 gives
    no interaction to find).

    Cluster designs (the design's cluster, or `cluster_size` given) randomize whole
    clusters of `cluster_size` people whose outcomes share a cluster component with
    intra-cluster correlation `icc` (binary: cluster rates drawn from a beta distribution
    with that ICC; numeric: a normal cluster effect). Every simulated trial is analysed by
    the estimators the report would choose for the design (estimator registry): blocked
    within strata, CR2 with Bell-McCaffrey df for clusters, and the test that effects
    differ across levels of each pre-registered moderator (Wald, or HTZ with clusters).
    `progress(done, total)` is called after each simulated trial.
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
    notes: list[str] = []
    clustered = bool(design.randomization.cluster) or cluster_size is not None
    if icc is not None and not clustered:
        raise ValueError(
            "--icc needs --cluster-size: this design randomizes individuals (give the size "
            "of the clusters you would randomize)"
        )
    m = 0
    rho = 0.0
    if clustered:
        m = int(cluster_size or CLUSTER_SIZES.get(design.randomization.cluster or "", 20))
        if m < 2:
            raise ValueError("a cluster needs at least two people (--cluster-size 2 or more)")
        if icc is None:
            rho = DEFAULT_ICC
            notes.append(
                f"no ICC given: {DEFAULT_ICC:g} assumed (give --icc from a similar campaign "
                "or the literature)"
            )
        else:
            rho = float(icc)
        if not 0 <= rho < 1:
            raise ValueError(f"the ICC must lie in [0, 1), got {rho:g}")
    deff = design_effect(rho, m) if clustered else 1.0
    analytic = None
    if not numeric and not 0 < baseline + tau < 1:
        raise ValueError(
            f"control rate {baseline:g} plus effect {tau:g} is not a proportion between 0 and 1"
        )
    if not numeric:
        analytic = sample_size_two_proportions(
            baseline, baseline + tau, plan.alpha, plan.power, k, plan.correction
        )
    if n_total is None:
        planned = design.planned_sample_size
        n_total = planned or (math.ceil(analytic.n_total * deff) if analytic else 1000)
    n_total = int(n_total)
    n_clusters = 0
    if clustered:
        n_clusters = max(math.ceil(n_total / m), 2 * k)
        if n_clusters * m != n_total:
            notes.append(
                f"{n_clusters} whole clusters of {m}: {n_clusters * m} participants "
                f"rather than {n_total}"
            )
        n_total = n_clusters * m
    specs = _moderator_specs(design)
    strata_specs = [] if clustered else _moderator_specs_for_strata(design)
    rng = np.random.default_rng(seed)
    var_se = _self_efficacy_variance()
    sims = int(simulations)
    est = np.full((sims, k - 1), np.nan)
    se = np.full((sims, k - 1), np.nan)
    p_main = np.full((sims, k - 1), np.nan)
    p_int = np.full((sims, len(specs), k - 1), np.nan)
    truth = np.full((sims, k - 1), np.nan)
    method = test_method = ""
    family = family_method(plan.correction, "confirmatory")
    for s in range(sims):
        pop = _population(rng, n_total)
        cluster_of = np.arange(n_total) // m if clustered else None
        arm = _assign(rng, design, pop, strata_specs, weights, n_total, m if clustered else 0)
        moderators = []
        shift = np.zeros(n_total)
        for spec in specs:
            codes, L = _levels(spec, _values(pop, spec.column, rng, n_total))
            if L > 1:
                shift += heterogeneity * (2 * codes / (L - 1) - 1)
            moderators.append(
                Moderator(
                    spec.column,
                    [str(x) for x in range(L)],
                    codes.astype(np.intp),
                    None,
                    "confirmatory",
                )
            )
        shift -= shift.mean()  # the average effect is the stated one
        eff = tau * (1 + shift) * (arm > 0)
        truth[s] = (np.bincount(arm, weights=eff, minlength=k) / np.bincount(arm, minlength=k))[1:]
        y = _outcome(
            rng, numeric, baseline, tau, arm, eff, pop, cluster_of, n_clusters, rho, var_se
        )
        trial, sim_design = _trial(y, arm, arms, pop, strata_specs, cluster_of, plan.alpha)
        found = estimate_all(trial, sim_design, moderators, frozenset({"effects", "subgroups"}))
        method = method or f"{found.effects[0].method}: {found.effects[0].reference}"
        for j, e in enumerate(found.effects):
            est[s, j], se[s, j], p_main[s, j] = e.estimate, e.std_error, e.p_value
        p_main[s] = adjust(p_main[s], plan.correction)
        index = {(t.moderator, t.arm): t for t in found.interactions}
        for mi, spec in enumerate(specs):
            for j in range(1, k):
                t = index.get((spec.column, arms[j]))
                if t is not None:
                    p_int[s, mi, j - 1] = t.p_value
                    test_method = test_method or t.test
        flat = p_int[s].ravel()
        ok = ~np.isnan(flat)
        flat[ok] = adjust(flat[ok], family)
        p_int[s] = flat.reshape(p_int[s].shape)
        if progress:
            progress(s + 1, sims)
    counts = np.round(weights * n_total).astype(int)
    sd_c = math.sqrt(var_se + NUMERIC_NOISE_SD**2) if numeric else 0.0
    main = []
    for j in range(1, k):
        ok = ~np.isnan(p_main[:, j - 1])
        power = float(np.mean(p_main[ok, j - 1] <= plan.alpha)) if ok.any() else math.nan
        e, sd, tr = est[ok, j - 1], se[ok, j - 1], truth[ok, j - 1]
        q = stats.t.isf(plan.alpha / 2, n_clusters - 2) if clustered else norm_isf(plan.alpha / 2)
        cover = float(np.mean(np.abs(e - tr) <= q * sd)) if ok.any() else math.nan
        if numeric:
            sd_t = sd_c = math.sqrt((var_se + NUMERIC_NOISE_SD**2) / (1 - rho))
        else:
            p1, p2 = baseline, baseline + tau
            sd_c, sd_t = math.sqrt(p1 * (1 - p1)), math.sqrt(p2 * (1 - p2))
        a = _per_test_alpha(plan.alpha, k - 1, plan.correction)
        df = math.inf
        if clustered:
            df = max(round(n_clusters * (weights[0] + weights[j])) - 2, 1)
        power_formula = analytic_power(
            tau, sd_t, sd_c, counts[j], counts[0], a, deff if clustered else 1.0, df
        )
        main.append(
            PowerRow(
                "main",
                arms[j],
                power,
                _mc(power, int(ok.sum())),
                float(e.mean()),
                float(tr.mean()),
                float((e - tr).mean()),
                float(np.sqrt(np.mean((e - tr) ** 2))),
                cover,
                power_formula,
            )
        )
    inter = []
    for mi, spec in enumerate(specs):
        for j in range(1, k):
            col = p_int[:, mi, j - 1]
            ok = ~np.isnan(col)
            power = float(np.mean(col[ok] <= plan.alpha)) if ok.any() else math.nan
            inter.append(PowerRow(spec.column, arms[j], power, _mc(power, int(ok.sum()))))
    mde = {}
    if not numeric:
        for j in range(1, k):
            mde[arms[j]] = minimum_detectable_effect(
                baseline,
                max(int(counts[j] / deff), 1),
                max(int(counts[0] / deff), 1),
                plan.alpha,
                plan.power,
                k - 1,
                plan.correction,
            )
    return PowerDiagnosis(
        design=design.name,
        n_total=n_total,
        n_per_arm={a: int(c) for a, c in zip(arms, counts, strict=True)},
        simulations=sims,
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
        icc=rho,
        cluster_size=m,
        clusters=n_clusters,
        design_effect=deff,
        estimator=method,
        interaction_test=test_method,
    )


def _outcome(
    rng: np.random.Generator,
    numeric: bool,
    baseline: float,
    tau: float,
    arm: np.ndarray,
    eff: np.ndarray,
    pop: dict[str, np.ndarray],
    cluster_of: np.ndarray | None,
    n_clusters: int,
    rho: float,
    var_se: float,
) -> np.ndarray:
    """The simulated outcome: a numeric score (self-efficacy plus noise) or a 0/1 outcome
    at the control rate, plus the effect; with clusters, a shared cluster component with
    intra-cluster correlation rho."""
    n = len(eff)
    if numeric:
        y = pop["self_efficacy"] + eff + rng.normal(0, NUMERIC_NOISE_SD, n)
        if cluster_of is not None and rho > 0:
            sd = math.sqrt(rho / (1 - rho) * (var_se + NUMERIC_NOISE_SD**2))
            y = y + rng.normal(0, sd, n_clusters)[cluster_of]
        return y
    if cluster_of is None or rho == 0:
        return (rng.random(n) < np.clip(baseline + eff, 0, 1)).astype(float)
    # Each cluster's rate is drawn from a beta distribution with its arm's mean rate mu
    # (control rate, plus the average effect if treated) and ICC rho (a + b = 1/rho - 1),
    # so the ICC is rho in every arm; members add their own departure from the average
    # effect (the heterogeneity across moderator levels).
    treated = np.zeros(n_clusters, dtype=bool)
    treated[cluster_of[arm > 0]] = True
    mu = baseline + tau * treated
    rate = rng.beta(mu * (1 - rho) / rho, (1 - mu) * (1 - rho) / rho)
    p = rate[cluster_of] + eff - tau * (arm > 0)
    return (rng.random(n) < np.clip(p, 0, 1)).astype(float)


def _trial(
    y: np.ndarray,
    arm: np.ndarray,
    arms: list[str],
    pop: dict[str, np.ndarray],
    strata_specs: list[BandSpec],
    cluster_of: np.ndarray | None,
    alpha: float,
) -> tuple[Trial, Design]:
    """The simulated rows as the report's estimators read them (trial.py)."""
    n = len(y)
    trial = Trial(y, arm.astype(np.intp), tuple(arms), np.empty((n, 0)))
    strata = None
    if strata_specs:
        key = np.zeros(n, dtype=np.intp)
        for spec in strata_specs:
            codes, L = _levels(spec, pop.get(spec.column, np.zeros(n)))
            key = key * max(L, 1) + codes
        strata = np.unique(key, return_inverse=True)[1].astype(np.intp)
    design = Design(alpha=alpha, strata=strata, clusters=cluster_of)
    if strata is not None:
        design = replace(design, pooled=pool_strata(trial, design))
    return trial, design


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
        g = -(-n // cluster_size)
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
