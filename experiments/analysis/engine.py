"""One entry point from a participant frame to a typed analysis result.

`analyze` is a short pipeline: `prepare` checks the frame and builds the trial and its
design (trial.py); the registry (registry.py) picks, from the design, the estimator of
each role (headline effects, Lin-adjusted effects, subgroups and their homogeneity test
per moderator, slopes per numeric moderator; with `cells`, the two moderators' cell
table and targeting); optionally randomization inference re-runs the first four on
re-randomized arms; then multiplicity adjustment, the sample ratio test, balance, flow
and warnings. Rows need an arm and an outcome (and a cluster and probability when
those are given); a row missing a moderator leaves only that moderator's subgroups; a
missing covariate is imputed with an indicator. Everything is vectorised (bincounts over
cells), so a million rows take a few seconds.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Literal

import numpy as np
import pandas as pd

from experiments.analysis.cell_pooling import CellData
from experiments.analysis.cells import CellStats, grouped_stats
from experiments.analysis.dist import norm_isf
from experiments.analysis.estimates import estimate_all
from experiments.analysis.estimators.cells import CellAnalysis
from experiments.analysis.multiplicity import Correction, adjust
from experiments.analysis.randomization_inference import (
    randomization_inference as re_randomized,
)
from experiments.analysis.registry import choose
from experiments.analysis.results import Effect, Interaction, Slope, SubgroupEffect
from experiments.analysis.sequential import METHOD, SequentialArm
from experiments.analysis.spillover import SpilloverEffect
from experiments.analysis.srm import design_srm, saturation_srm
from experiments.analysis.strata import Pool
from experiments.analysis.trial import (
    AnalysisInputError,
    Design,
    Moderator,
    Prepared,
    factorize_text,
    numeric,
    prepare,
    saturation_column,
)
from experiments.bands import BandSpec, BandSpecError
from experiments.diagnostics import (
    BALANCE_NOTE,
    Attrition,
    FlowRow,
    SRMResult,
    StandardizedDifference,
    attrition_from_counts,
)
from experiments.p_values import p_text

SMALL_SUBGROUP = 30
FEW_CLUSTERS = 20
WarningCode = Literal[
    "srm",
    "small_subgroup",
    "underpowered",
    "exploratory",
    "estimation",
    "dropped_rows",
    "clusters",
    "balance",
    "attrition",
    "pooled_strata",
    "imputed_covariates",
    "default_bands",
    "cells",
]
Progress = Callable[[int, int], None]


@dataclass(frozen=True)
class ArmSummary:
    arm: str
    n: int
    mean: float
    std: float
    control: bool

    def to_dict(self) -> dict:
        return {
            "arm": self.arm,
            "n": self.n,
            "mean": _f(self.mean),
            "std": _f(self.std),
            "control": self.control,
        }


@dataclass(frozen=True)
class ReportWarning:
    code: WarningCode
    message: str

    def to_dict(self) -> dict:
        return {"code": self.code, "message": self.message}


@dataclass(frozen=True)
class DesignSummary:
    """How the estimates respected the design: strata (after pooling), clusters, recorded
    probabilities, and what randomization inference did."""

    strata: int = 0
    pools: tuple[Pool, ...] = ()
    clusters: int = 0
    probability: str | None = None
    weighted: bool = False
    randomization_inference: dict | None = None
    sequential: dict | None = None

    def to_dict(self) -> dict:
        return {
            "sequential": self.sequential,
            "strata": self.strata,
            "pooled_strata": [{"strata": list(p.members), "reason": p.reason} for p in self.pools],
            "clusters": self.clusters,
            "probability": self.probability,
            "inverse_probability_weights": self.weighted,
            "randomization_inference": self.randomization_inference,
        }


@dataclass
class AnalysisResult:
    outcome: str
    arm_column: str
    control: str
    alpha: float
    correction: Correction
    binary_outcome: bool
    arms: list[ArmSummary]
    effects: list[Effect]
    adjusted_effects: list[Effect]
    subgroups: list[SubgroupEffect]
    interactions: list[Interaction]
    slopes: list[Slope]
    srm: SRMResult
    balance: list[StandardizedDifference]
    flow: list[FlowRow]
    attrition: Attrition | None
    n_rows: int
    n_analysed: int
    dropped: dict
    moderators: list[dict]
    covariates: list[str]
    block: str | None
    cluster: str | None
    warnings: list[ReportWarning] = field(default_factory=list)
    minimum_effect: float | None = None
    design: DesignSummary = field(default_factory=DesignSummary)
    covariates_imputed: dict = field(default_factory=dict)
    saturation: str | None = None
    spillover: list[SpilloverEffect] = field(default_factory=list)
    cells: CellAnalysis | None = None
    sequential: list[SequentialArm] = field(default_factory=list)

    @property
    def estimator(self) -> str:
        return self.effects[0].method if self.effects else "difference_in_means"

    @property
    def reference_distribution(self) -> str:
        return self.effects[0].reference if self.effects else ""


def _f(x: float) -> float | None:
    return float(x) if x is not None and math.isfinite(x) else None


def analyze(
    frame: pd.DataFrame,
    *,
    arm: str,
    control: str,
    outcome: str,
    moderators: Sequence[BandSpec] = (),
    covariates: Sequence[str] = (),
    block: str | None = None,
    cluster: str | None = None,
    probability: str | None = None,
    alpha: float = 0.05,
    correction: Correction = "holm",
    preregistered: Sequence[str] = (),
    weights: Mapping[str, float] | None = None,
    minimum_effect: float | None = None,
    flow_columns: bool = True,
    randomization_inference: int = 0,
    seed: int = 0,
    progress: Progress | None = None,
    saturation: str | None = None,
    cells: Sequence[str] = (),
    sequential: str | None = None,
    sequential_n: float = 0.0,
) -> AnalysisResult:
    """Analyse a trial: one row per randomized participant, everyone in their assigned arm.

    Raises AnalysisInputError (one clear sentence) for a missing column, a control value
    absent from the data, a non-numeric outcome, an arm with fewer than two analysable
    rows, an all-missing or post-treatment moderator, a pre-registered moderator that is
    not a moderator of the analysis, a probability outside (0, 1], a saturation outside
    [0, 1] or differing within a cluster, `cells` that are not two banded moderators of
    the analysis, or `cells` with clusters. With `saturation` (a randomized saturation
    design) the result adds direct, spillover and total effects per saturation.

    `cells` (two moderator names, e.g. ("age", "self_efficacy")) adds the cell table:
    each arm's effect in every cell of the two, raw and partially pooled, the omnibus and
    trend tests, and the targeting table (`seed` seeds its folds, splits and draws).
    """
    if correction not in ("holm", "bh", "none"):
        raise AnalysisInputError(f"unknown correction {correction!r}: use holm, bh or none")
    if randomization_inference < 0:
        raise AnalysisInputError("randomization inference needs a positive number of draws")
    prep = prepare(
        frame,
        arm=arm,
        control=control,
        outcome=outcome,
        moderators=moderators,
        covariates=covariates,
        block=block,
        cluster=cluster,
        probability=probability,
        preregistered=preregistered,
        weights=weights,
        alpha=alpha,
        sequential=sequential,
        sequential_n=sequential_n,
    )
    trial, design = prep.trial, prep.design
    spillover: list[SpilloverEffect] = []
    if saturation:
        design = replace(
            design,
            saturation=saturation_column(frame, saturation, prep.keep, design.clusters),
        )
        try:
            spillover = choose("spillover", design)(trial, design)
        except ValueError as exc:  # DegenerateDesign: e.g. no pure-control clusters
            raise AnalysisInputError(f"saturation column {saturation!r}: {exc}") from None
    cell_input = _cell_input(prep, cells) if cells else None
    estimates = estimate_all(trial, design, prep.moderators)
    # Always-valid monitoring: each arm's confidence sequence over the looks of `sequential`.
    monitored = choose("sequential", design)(trial, design) if sequential else []
    ri_info = None
    if randomization_inference:
        estimates, ri_info = re_randomized(
            trial, design, prep.moderators, estimates, randomization_inference, seed, progress
        )
    effects = _adjusted(estimates.effects, correction)
    adjusted = _adjusted(estimates.adjusted, correction)
    subgroups, tests, slopes = _adjust_families(
        estimates.subgroups, estimates.interactions, estimates.slopes, correction
    )

    cells = grouped_stats(trial.arm, trial.y, len(trial.arms))
    finite = trial.y[np.isfinite(trial.y)]
    binary = bool(len(finite) and np.all((finite == 0) | (finite == 1)))
    arms = list(trial.arms)
    arm_rows = [
        ArmSummary(a, c.n, c.mean, math.sqrt(c.variance), i == 0)
        for i, (a, c) in enumerate(zip(arms, cells, strict=True))
    ]
    srm_result = _sample_ratio(frame, prep, arms, weights, block, cluster, probability, saturation)

    balance_cols = list(dict.fromkeys([m.column for m in moderators] + list(covariates)))
    balance = _balance(frame, prep.arm_codes_all, arms, balance_cols)
    flow = _flow(frame, prep.arm_codes_all, arms, prep.keep) if flow_columns else []
    attr = None
    if prep.dropped["missing_outcome"] > 0:
        attr = _attrition(outcome, prep.arm_codes_all, arms, prep.answered)
    pooled = design.pooled
    summary = DesignSummary(
        strata=pooled.count if pooled else 0,
        pools=pooled.pools if pooled else (),
        clusters=design.n_clusters,
        probability=probability,
        weighted=bool(design.weighted or (pooled and pooled.weighted)),
        randomization_inference=ri_info,
        sequential=_sequential_summary(design, sequential, monitored),
    )
    result = AnalysisResult(
        outcome=outcome,
        arm_column=arm,
        control=str(control),
        alpha=alpha,
        correction=correction,
        binary_outcome=binary,
        arms=arm_rows,
        effects=effects,
        adjusted_effects=adjusted,
        subgroups=subgroups,
        interactions=tests,
        slopes=slopes,
        srm=srm_result,
        balance=balance,
        flow=flow,
        attrition=attr,
        n_rows=prep.n_rows,
        n_analysed=trial.n,
        dropped=prep.dropped,
        moderators=[
            {
                "moderator": m.name,
                "levels": m.levels,
                "cuts": list(m.cuts) if m.cuts else None,
                "family": m.family,
                "default_bands": m.default_bands,
            }
            for m in prep.moderators
        ],
        covariates=list(covariates),
        block=block,
        cluster=cluster,
        minimum_effect=minimum_effect,
        design=summary,
        covariates_imputed=prep.imputed,
        sequential=monitored,
        saturation=saturation,
        spillover=spillover,
    )
    if cell_input is not None:
        data, left_out = cell_input
        run = choose("cells", design).run
        result.cells = run(data, design, left_out=left_out, seed=seed)
    result.warnings = _warnings(result)
    return result


def _cell_input(prep: Prepared, names: Sequence[str]) -> tuple[CellData, int]:
    """The rows of the trial that have both cell moderators, as the cell table reads them,
    and how many analysable rows were left out for missing one."""
    names = list(names)
    if len(names) != 2 or names[0] == names[1]:
        raise AnalysisInputError(
            f"cells need two different moderators (e.g. age,self_efficacy), got {','.join(names)}"
        )
    by_name = {m.name: m for m in prep.moderators}
    mods: list[Moderator] = []
    for name in names:
        m = by_name.get(name)
        if m is None:
            shown = ", ".join(by_name) or "none"
            raise AnalysisInputError(
                f"cell moderator {name!r} is not a moderator of this analysis (moderators: "
                f"{shown}): give it with --moderator {name}:CUTS too"
            )
        if m.values is None or m.cuts is None:
            raise AnalysisInputError(
                f"cell moderator {name!r} needs numbers and cut points (e.g. {name}:35,55): "
                "the pooled cells are smooth in its value"
            )
        mods.append(m)
    design: Design = prep.design
    if design.clustered:
        raise AnalysisInputError(
            "the cell table does not account for clusters yet: leave out the cells, or "
            "analyse without the cluster column"
        )
    first, second = mods
    both = (first.codes >= 0) & (second.codes >= 0)
    trial = prep.trial
    data = CellData(
        y=trial.y[both],
        arm=trial.arm[both],
        arms=trial.arms,
        row_values=np.asarray(first.values)[both],
        column_values=np.asarray(second.values)[both],
        row_spec=BandSpec(first.name, first.cuts, tuple(first.levels)),
        column_spec=BandSpec(second.name, second.cuts, tuple(second.levels)),
        strata=None if design.strata is None else design.strata[both],
        probability=None if design.probability is None else design.probability[both],
    )
    counts = np.bincount(data.arm, minlength=len(trial.arms))
    short = [a for a, n in zip(trial.arms, counts, strict=True) if n < 2]
    if short:
        raise AnalysisInputError(
            f"arm {short[0]!r} has fewer than two rows with both {first.name} and "
            f"{second.name}: the cell table cannot be formed"
        )
    return data, int((~both).sum())


def _sequential_summary(
    design: Design, column: str | None, monitored: list[SequentialArm]
) -> dict | None:
    """How the confidence sequences were formed: the time column, its looks, the units at
    which they are tightest, the estimator run at each look, rows without a time."""
    if not column or design.looks is None:
        return None
    return {
        "column": column,
        "method": METHOD,
        "looks": len(design.look_values),
        # the units at which the sequences are tightest (the last look's, unless planned)
        "tuned_for": design.sequential_n
        or (monitored[0].looks[-1].n if monitored and monitored[0].looks else None),
        "estimator": monitored[0].estimator if monitored else "",
        "rows_without_time": int((design.looks < 0).sum()),
        "alpha": design.alpha,
    }


def _sample_ratio(
    frame: pd.DataFrame,
    prep: Prepared,
    arms: list[str],
    weights: Mapping[str, float] | None,
    block: str | None,
    cluster: str | None,
    probability: str | None,
    saturation: str | None = None,
) -> SRMResult:
    """The sample ratio test over every allocated row, whatever happened to its outcome:
    clusters counted as units in a cluster design, arm counts compared within strata with
    the recorded probabilities (srm.py); in a saturation design, clusters per saturation
    and members offered at their cluster's share (`saturation_srm`)."""
    if saturation and cluster:
        clusters, cluster_labels = factorize_text(frame[cluster])
        return saturation_srm(
            prep.arm_codes_all,
            arms,
            clusters,
            numeric(frame, saturation, "saturation"),
            cluster_labels=cluster_labels,
        )
    strata = labels = clusters = prob = None
    if block:
        strata, labels = factorize_text(frame[block])
        strata = np.where(strata < 0, len(labels), strata)  # missing: a stratum of its own
        labels = [*labels, "NA"]
    cluster_labels: list[str] = []
    if cluster:
        clusters, cluster_labels = factorize_text(frame[cluster])
    if probability:
        prob = numeric(frame, probability, "probability")
    # An arm of the design with nobody in it is the plainest mismatch: keep it in the test.
    tested = arms + [str(a) for a in (weights or {}) if str(a) not in arms]
    return design_srm(
        prep.arm_codes_all,
        tested,
        weights,
        strata=strata,
        stratum_labels=labels or (),
        clusters=clusters,
        cluster_labels=cluster_labels,
        probability=prob,
    )


def _adjusted(effects: list[Effect], correction: Correction) -> list[Effect]:
    p = adjust([e.p_value for e in effects], correction)
    return [replace(e, p_adjusted=float(q)) for e, q in zip(effects, p, strict=True)]


def family_method(correction: Correction, family: str) -> Correction:
    """The adjustment of a family: the campaign's correction (Holm by default) for the
    confirmatory (pre-registered) family, Benjamini-Hochberg for the exploratory one."""
    if correction == "none":
        return "none"
    return correction if family == "confirmatory" else "bh"


def _adjust_families(
    subgroups: list[SubgroupEffect],
    tests: list[Interaction],
    slopes: list[Slope],
    correction: Correction,
):
    """Two questions, two sets of families: "does the effect differ from zero in this
    subgroup" (subgroup effects) and "do effects differ across subgroups" (homogeneity
    tests and slopes together, a slope being the linear form of the same question). Each
    is split into the confirmatory and the exploratory family."""

    def run(rows):
        out = list(rows)
        for family in ("confirmatory", "exploratory"):
            idx = [i for i, r in enumerate(out) if r.family == family]
            adj = adjust([out[i].p_value for i in idx], family_method(correction, family))
            for i, q in zip(idx, adj, strict=True):
                out[i] = replace(out[i], p_adjusted=float(q))
        return out

    differ = run([*tests, *slopes])
    return run(subgroups), differ[: len(tests)], differ[len(tests) :]


def _significant(rows, alpha: float) -> list:
    return [r for r in rows if math.isfinite(r.p_value) and r.p_value < alpha]


def _warnings(r: AnalysisResult) -> list[ReportWarning]:
    out: list[ReportWarning] = []
    if r.srm.flagged:
        out.append(
            ReportWarning(
                "srm",
                (
                    f"Sample ratio mismatch: the numbers of {r.srm.unit} in the arms differ "
                    "from what the design's probabilities give"
                    + (f" within its {r.srm.strata} strata" if r.srm.strata > 1 else "")
                    + f" by more than chance allows (chi-square {r.srm.statistic:.1f}, "
                    f"df {r.srm.df}, {p_text(r.srm.p_value)}). Check the assignment and data "
                    "pipeline before trusting any effect."
                ),
            )
        )
    d = r.dropped
    if d["total"]:
        parts = [f"missing outcome {d['missing_outcome']}", f"missing arm {d['missing_arm']}"]
        parts += [
            f"missing {k.removeprefix('missing_')} {d[k]}"
            for k in ("missing_cluster", "missing_probability")
            if d.get(k)
        ]
        out.append(
            ReportWarning(
                "dropped_rows",
                f"{d['total']} of {r.n_rows} rows were left out ({', '.join(parts)}).",
            )
        )
    missing_mod = {k: v for k, v in d["missing_moderator"].items() if v}
    if missing_mod:
        out.append(
            ReportWarning(
                "dropped_rows",
                "Rows missing a moderator are left out of that moderator's subgroups only "
                "(the overall estimates use them): "
                + ", ".join(f"{k} {v}" for k, v in missing_mod.items())
                + ".",
            )
        )
    for m in r.moderators:
        if m["default_bands"]:
            out.append(
                ReportWarning(
                    "default_bands",
                    f"{m['moderator']} was given without cut points: the campaign's default "
                    f"bands were used ({', '.join(m['levels'])}).",
                )
            )
    imputed = {k: v for k, v in r.covariates_imputed.items() if v}
    if imputed:
        out.append(
            ReportWarning(
                "imputed_covariates",
                "Missing covariate values were entered at the covariate's mean with a "
                "missingness indicator, so the adjusted estimate uses every row: "
                + ", ".join(f"{k} {v} row(s)" for k, v in imputed.items())
                + ".",
            )
        )
    if r.design.pools:
        out.append(
            ReportWarning(
                "pooled_strata",
                (
                    "Strata with fewer than two units in an arm were pooled with strata of the "
                    "same assignment probabilities (none is dropped): "
                    + "; ".join(" + ".join(p.members) for p in r.design.pools)
                    + "."
                    + (
                        " Inverse-probability weights were needed to pool strata whose "
                        "probabilities differ."
                        if r.design.weighted
                        else ""
                    )
                ),
            )
        )
    for e in r.effects + r.adjusted_effects:
        if e.error:
            out.append(ReportWarning("estimation", f"{e.arm}: {e.message}"))
    small = sorted(
        {
            (s.moderator, s.level)
            for s in r.subgroups
            if min(s.n_treatment, s.n_control) < SMALL_SUBGROUP
        }
    )
    if small:
        out.append(
            ReportWarning(
                "small_subgroup",
                (
                    "Small subgroups (fewer than 30 participants in an arm): "
                    + ", ".join(f"{m}={lvl}" for m, lvl in small)
                    + ". Their estimates are imprecise."
                ),
            )
        )
    out += _cell_warnings(r)
    out += _power_warnings(r)
    out += _exploratory_warnings(r)
    if r.cluster:
        out.append(ReportWarning("clusters", _cluster_message(r)))
    notes = [b for b in r.balance if b.note]
    if notes:
        out.append(
            ReportWarning(
                "balance",
                (
                    "Baseline differences above 0.1 standard deviations: "
                    + ", ".join(
                        f"{b.covariate}{'=' + b.level if b.level else ''} ({b.arm}: "
                        f"{b.difference:+.2f})"
                        for b in notes[:6]
                    )
                    + ". Consider the covariate-adjusted estimate."
                ),
            )
        )
    if r.attrition and math.isfinite(r.attrition.p_value) and r.attrition.p_value < 0.05:
        out.append(
            ReportWarning(
                "attrition",
                (
                    f"Response to {r.outcome} differs between arms (chi-square "
                    f"{p_text(r.attrition.p_value)}): the effect on this outcome may be biased."
                ),
            )
        )
    return out


def _cell_warnings(r: AnalysisResult) -> list[ReportWarning]:
    c = r.cells
    if c is None:
        return []
    out = []
    if c.left_out:
        out.append(
            ReportWarning(
                "cells",
                f"{c.left_out} row(s) missing {' or '.join(c.table.moderators)} are left out "
                "of the cell table (the other estimates use them).",
            )
        )
    if c.table.error:
        out.append(ReportWarning("cells", c.table.message))
    empty = [x for x in c.table.cells if x.error]
    if empty:
        out.append(
            ReportWarning(
                "cells",
                f"{len(empty)} arm x cell effect(s) could not be estimated (fewer than two "
                "participants, or no variation, in the arm or control there); targeting uses "
                "the smooth model's effect there.",
            )
        )
    return out


def _power_warnings(r: AnalysisResult) -> list[ReportWarning]:
    out: list[ReportWarning] = []
    if not r.minimum_effect:
        return out
    z = norm_isf(r.alpha / 2) + norm_isf(0.2)
    for e in r.effects:
        if math.isfinite(e.std_error) and z * e.std_error > r.minimum_effect:
            out.append(
                ReportWarning(
                    "underpowered",
                    (
                        f"{e.arm}: the smallest effect this sample detects with 80% power is "
                        f"{z * e.std_error:.3g}, larger than the planned minimum effect "
                        f"{r.minimum_effect:.3g}: a null result is weak evidence of no effect."
                    ),
                )
            )
    weak = [
        s
        for s in r.subgroups
        if s.family == "confirmatory"
        and math.isfinite(s.std_error)
        and z * s.std_error > r.minimum_effect
    ]
    if weak:
        out.append(
            ReportWarning(
                "underpowered",
                (
                    f"{len(weak)} of the pre-registered subgroup effects cannot detect the "
                    f"planned minimum effect {r.minimum_effect:.3g} with 80% power (their "
                    "smallest detectable effects are larger): read their nulls as "
                    "inconclusive. Interactions need about four times the sample of a main "
                    "effect of the same size."
                ),
            )
        )
    return out


def _exploratory_warnings(r: AnalysisResult) -> list[ReportWarning]:
    """Two different findings, said apart: an effect that differs from zero inside a
    subgroup, and effects that differ across subgroups (the interaction test)."""
    subs = [s for s in _significant(r.subgroups, r.alpha) if s.family == "exploratory"]
    differ = [
        t for t in _significant([*r.interactions, *r.slopes], r.alpha) if t.family == "exploratory"
    ]
    if not (subs or differ):
        return []
    names = sorted({x.moderator for x in subs + differ})
    parts = []
    if subs:
        parts.append(
            "the effect differs from zero in subgroup(s) "
            + ", ".join(f"{s.moderator}={s.level} ({s.arm})" for s in subs[:8])
            + ("..." if len(subs) > 8 else "")
            + " (this alone does not mean the effect differs across subgroups)"
        )
    if differ:
        parts.append(
            "effects differ across subgroups of "
            + ", ".join(sorted({f"{t.moderator} ({t.arm})" for t in differ}))
            + " (interaction test or slope)"
        )
    else:
        parts.append("no interaction test says effects differ across subgroups")
    return [
        ReportWarning(
            "exploratory",
            (
                "Exploratory results for moderators not pre-registered in the analysis plan ("
                + ", ".join(names)
                + "): "
                + "; ".join(parts)
                + ". Treat them as hypotheses for a new trial, not findings; their p-values "
                "are adjusted by Benjamini-Hochberg."
            ),
        )
    ]


def _cluster_message(r: AnalysisResult) -> str:
    g = r.design.clusters
    text = (
        f"{g} clusters were randomized: standard errors are CR2 cluster-robust with "
        "Bell-McCaffrey degrees of freedom (as estimatr and clubSandwich), and the tests "
        "that effects differ across subgroups are HTZ F tests (Pustejovsky and Tipton 2018)."
    )
    if g < FEW_CLUSTERS:
        ri = r.design.randomization_inference
        text += f" With fewer than {FEW_CLUSTERS} clusters even these rest on approximations; " + (
            f"the randomization-inference p-values ({ri['draws']} re-randomizations) "
            "are exact and do not depend on them."
            if ri
            else "randomization inference (`--randomization-inference 2000`) gives "
            "p-values that are exact under the design's own randomization."
        )
    return text


def _balance(
    frame: pd.DataFrame, codes: np.ndarray, arms: list[str], columns: Sequence[str]
) -> list[StandardizedDifference]:
    """The balance table over every allocated row, vectorised over arm codes (the same
    figures as `diagnostics.standardized_differences`)."""
    rows = []
    has_arm = codes >= 0
    for col in columns:
        s = frame[col]
        if pd.api.types.is_numeric_dtype(s) and not pd.api.types.is_bool_dtype(s):
            series = {None: s.to_numpy(dtype=float)}
        else:
            lc, levels = factorize_text(s)
            present = lc >= 0
            series = {}
            for j, level in sorted(enumerate(levels), key=lambda x: x[1]):
                v = (lc == j).astype(float)
                v[~present] = np.nan
                series[level] = v
        for level, v in series.items():
            ok = has_arm & ~np.isnan(v)
            cells = grouped_stats(codes[ok], v[ok], len(arms))
            c = cells[0]
            for i in range(1, len(arms)):
                t = cells[i]
                sd_t, sd_c = math.sqrt(t.variance), math.sqrt(c.variance)
                pooled = math.sqrt((t.variance + c.variance) / 2)
                if t.n < 2 or c.n < 2:
                    d = math.nan
                elif pooled == 0:
                    d = 0.0 if t.mean == c.mean else math.nan
                else:
                    d = (t.mean - c.mean) / pooled
                rows.append(
                    StandardizedDifference(
                        col,
                        level,
                        arms[i],
                        t.mean,
                        c.mean,
                        sd_t,
                        sd_c,
                        t.n,
                        c.n,
                        d,
                        bool(math.isfinite(d) and abs(d) > BALANCE_NOTE),
                    )
                )
    return rows


def _count(codes: np.ndarray, mask: np.ndarray, size: int) -> np.ndarray:
    ok = (codes >= 0) & mask
    return np.bincount(codes[ok], minlength=size)


def _flow(
    frame: pd.DataFrame, codes: np.ndarray, arms: list[str], analysed: np.ndarray
) -> list[FlowRow]:
    size = len(arms)
    allocated = _count(codes, np.ones(len(codes), bool), size)
    stages = {}
    for stage in ("delivered", "exposed", "opted_out"):
        if stage in frame.columns:
            v = pd.to_numeric(frame[stage], errors="coerce").fillna(0).to_numpy() != 0
            stages[stage] = _count(codes, v, size)
    done = _count(codes, analysed, size)
    return [
        FlowRow(
            a,
            int(allocated[i]),
            *(int(stages[k][i]) if k in stages else None for k in ("delivered", "exposed")),
            int(done[i]),
            int(stages["opted_out"][i]) if "opted_out" in stages else None,
        )
        for i, a in enumerate(arms)
    ]


def _attrition(outcome: str, codes: np.ndarray, arms: list[str], answered: np.ndarray) -> Attrition:
    size = len(arms)
    n = _count(codes, np.ones(len(codes), bool), size)
    r = _count(codes, answered, size)
    return attrition_from_counts(outcome, arms, n.tolist(), r.tolist(), arms[0])


__all__ = [
    "AnalysisInputError",
    "AnalysisResult",
    "ArmSummary",
    "BandSpecError",
    "CellStats",
    "Prepared",
    "ReportWarning",
    "analyze",
    "family_method",
]
