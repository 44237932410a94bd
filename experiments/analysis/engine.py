"""One entry point from a participant frame to a typed analysis result.

`analyze` takes one row per randomized participant (arm, outcome, baseline moderators and
covariates, optional block and cluster), drops rows with a missing outcome, moderator,
covariate, block or cluster (and counts them), and returns effects per arm, subgroup
effects and homogeneity tests per moderator, multiplicity-adjusted p-values, the sample
ratio test, the balance table, flow counts and warnings. Everything is vectorised
(np.bincount over cell codes), so a million rows take well under a second.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Literal

import numpy as np
import pandas as pd

from experiments.analysis.cells import CellStats, grouped_stats
from experiments.analysis.dist import norm_isf
from experiments.analysis.estimators import (
    REFERENCES,
    Effect,
    blocked_difference_in_means,
    cluster_robust,
    difference_in_means,
    lin_adjusted,
)
from experiments.analysis.heterogeneity import (
    Family,
    Interaction,
    PostTreatmentModerator,
    Slope,
    SubgroupEffect,
    check_moderator,
    clustered_subgroups,
    interaction_slopes,
    interactions,
    subgroup_effects,
)
from experiments.analysis.multiplicity import Correction, adjust
from experiments.bands import BandSpec, BandSpecError, sort_levels
from experiments.design import POST_TREATMENT
from experiments.diagnostics import (
    BALANCE_NOTE,
    Attrition,
    FlowRow,
    SRMResult,
    StandardizedDifference,
    attrition_from_counts,
    srm,
)

SMALL_SUBGROUP = 30
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
]


class AnalysisInputError(ValueError):
    """Input that cannot be analysed; the message names the column, value or row."""


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

    @property
    def estimator(self) -> str:
        return self.effects[0].method if self.effects else "difference_in_means"

    @property
    def reference_distribution(self) -> str:
        return REFERENCES[self.estimator]


def _f(x: float) -> float | None:
    return float(x) if x is not None and math.isfinite(x) else None


def _text_of(v: object) -> str:
    if isinstance(v, float | np.floating) and float(v).is_integer():
        return str(int(v))
    return str(v)


def _factorize_text(values: pd.Series) -> tuple[np.ndarray, list[str]]:
    """Codes (-1 = missing) and the distinct values as the text they had in the file
    (a 1.0 read as a number gives '1'). Factorizes first, so only distinct values are
    converted: a million rows cost one vectorised pass."""
    codes, uniques = pd.factorize(values, use_na_sentinel=True)
    texts = [_text_of(u) for u in uniques]
    distinct = list(dict.fromkeys(texts))
    if len(distinct) != len(texts):  # e.g. 1 and "1" in one object column
        remap = np.array([distinct.index(t) for t in texts] + [-1], dtype=np.intp)
        codes = remap[codes]
    return np.asarray(codes, dtype=np.intp), distinct


def _numeric(frame: pd.DataFrame, col: str, what: str) -> np.ndarray:
    s = frame[col]
    if pd.api.types.is_bool_dtype(s):
        return s.to_numpy(dtype=float)
    if pd.api.types.is_numeric_dtype(s):
        return s.to_numpy(dtype=float)
    text = s.astype(object)
    lowered = text.map(lambda v: v.strip().lower() if isinstance(v, str) else v)
    mapped = lowered.replace({"true": 1.0, "false": 0.0, "": np.nan})
    numeric = pd.to_numeric(mapped, errors="coerce")
    bad = numeric.isna() & mapped.notna()
    if bad.any():
        pos = int(np.flatnonzero(bad.to_numpy())[0])
        raise AnalysisInputError(
            f"{what} column {col!r} is not numeric: value {s.iloc[pos]!r} at data row {pos + 1}"
        )
    return numeric.to_numpy(dtype=float)


@dataclass
class _Moderator:
    spec: BandSpec
    levels: list[str]
    codes: np.ndarray  # -1 = missing
    values: np.ndarray | None  # the numeric values (banded moderators)


def _moderator(frame: pd.DataFrame, spec: BandSpec) -> _Moderator:
    col = spec.column
    try:
        check_moderator(col)
    except PostTreatmentModerator as exc:
        raise AnalysisInputError(str(exc)) from None
    if spec.cuts is not None:
        try:
            values = _numeric(frame, col, "moderator")
        except AnalysisInputError as exc:
            raise AnalysisInputError(f"{exc} (cut points need numbers)") from None
        codes = np.searchsorted(np.asarray(spec.cuts), values, side="right").astype(np.intp)
        codes[np.isnan(values)] = -1
        levels = list(spec.levels or [])
        return _Moderator(spec, levels, codes, values)
    codes, uniques = _factorize_text(frame[col])
    levels = sort_levels(uniques)
    remap = np.array([levels.index(u) for u in uniques] + [-1], dtype=np.intp)
    return _Moderator(spec, levels, remap[codes], None)


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
    alpha: float = 0.05,
    correction: Correction = "holm",
    preregistered: Sequence[str] = (),
    weights: Mapping[str, float] | None = None,
    minimum_effect: float | None = None,
    flow_columns: bool = True,
) -> AnalysisResult:
    """Analyse a trial: one row per randomized participant, everyone in their assigned arm.

    Raises AnalysisInputError (one clear sentence) for a missing column, a control value
    absent from the data, a non-numeric outcome, an arm with fewer than two analysable
    rows, an all-missing or post-treatment moderator.
    """
    if not 0 < alpha < 1:
        raise AnalysisInputError(f"alpha must be between 0 and 1, got {alpha}")
    if correction not in ("holm", "bh", "none"):
        raise AnalysisInputError(f"unknown correction {correction!r}: use holm, bh or none")
    needed = [arm, outcome, *[m.column for m in moderators], *covariates]
    needed += [c for c in (block, cluster) if c]
    missing = [c for c in dict.fromkeys(needed) if c not in frame.columns]
    if missing:
        have = ", ".join(map(str, frame.columns[:20]))
        raise AnalysisInputError(f"no column {missing[0]!r} in the data (columns: {have})")
    mod_cols = [m.column for m in moderators]
    twice = next((c for c in mod_cols if mod_cols.count(c) > 1), None)
    if twice:
        raise AnalysisInputError(f"moderator {twice!r} is given twice: give it once")
    if arm in mod_cols or arm == outcome or arm in covariates:
        raise AnalysisInputError(
            f"the arm column {arm!r} cannot also be an outcome, moderator or covariate"
        )
    if outcome in [m.column for m in moderators]:
        raise AnalysisInputError(f"{outcome!r} cannot be both the outcome and a moderator")
    for cov in covariates:
        if cov in POST_TREATMENT or cov == outcome:
            raise AnalysisInputError(
                f"covariate {cov!r} is measured after the message: adjusting for it biases "
                "the estimate"
            )
    control = str(control)
    n_rows = len(frame)
    arm_codes_all, arm_uniques = _factorize_text(frame[arm])
    if control not in arm_uniques:
        shown = ", ".join(repr(a) for a in arm_uniques[:10])
        raise AnalysisInputError(
            f"control value {control!r} does not occur in column {arm!r} (values: {shown})"
        )
    arms = [control] + [a for a in arm_uniques if a != control]
    order = np.array([arms.index(a) for a in arm_uniques] + [-1], dtype=np.intp)
    arm_codes_all = order[arm_codes_all]
    has_arm = arm_codes_all >= 0

    y_all = _numeric(frame, outcome, "outcome")
    mods = [_moderator(frame, spec) for spec in moderators]
    for m in mods:
        if not np.any(m.codes >= 0):
            raise AnalysisInputError(f"moderator {m.spec.column!r} is missing on every row")
    cov_values = [_numeric(frame, c, "covariate") for c in covariates]

    # Sample ratio: every allocated row counts, whatever happened to its outcome.
    alloc = np.bincount(arm_codes_all[has_arm], minlength=len(arms))
    w = dict(weights) if weights else {a: 1.0 for a in arms}
    srm_result = srm({a: int(alloc[i]) for i, a in enumerate(arms)}, w)

    keep = has_arm & ~np.isnan(y_all)
    dropped: dict = {
        "missing_arm": int((~has_arm).sum()),
        "missing_outcome": int((has_arm & np.isnan(y_all)).sum()),
    }
    dropped["missing_moderator"] = {}
    for m in mods:
        dropped["missing_moderator"][m.spec.column] = int((keep & (m.codes < 0)).sum())
    dropped["missing_covariate"] = {}
    for c, v in zip(covariates, cov_values, strict=True):
        dropped["missing_covariate"][c] = int((keep & np.isnan(v)).sum())
    for m in mods:
        keep &= m.codes >= 0
    for v in cov_values:
        keep &= ~np.isnan(v)
    extra = {}
    for name, col in (("block", block), ("cluster", cluster)):
        if col:
            present = frame[col].notna().to_numpy()
            extra[name] = int((keep & ~present).sum())
            keep &= present
    dropped.update({f"missing_{k}": v for k, v in extra.items()})
    dropped["total"] = int(n_rows - keep.sum())

    y = y_all[keep]
    codes = arm_codes_all[keep]
    cells = grouped_stats(codes, y, len(arms))
    for a, cell in zip(arms, cells, strict=True):
        if cell.n < 2:
            raise AnalysisInputError(
                f"arm {a!r} has {cell.n} row(s) with an outcome to analyse: at least two are needed"
            )
    finite = y[np.isfinite(y)]
    binary = bool(len(finite) and np.all((finite == 0) | (finite == 1)))
    arm_rows = [
        ArmSummary(a, c.n, c.mean, math.sqrt(c.variance), i == 0)
        for i, (a, c) in enumerate(zip(arms, cells, strict=True))
    ]

    clusters = frame[cluster].to_numpy()[keep] if cluster else None
    if clusters is not None:
        effects = cluster_robust(y, codes, arms, 0, clusters, alpha)
    notes: list[ReportWarning] = []
    if clusters is None and block:
        effects = _blocked(frame[block].to_numpy()[keep], codes, y, arms, alpha)
        small = next((e for e in effects if e.error == "small_block"), None)
        if small is not None:
            notes.append(
                ReportWarning(
                    "estimation",
                    (
                        f"The blocked estimator needs two participants per arm in every block "
                        f"({small.message}); the effects are unblocked differences in means."
                    ),
                )
            )
    if clusters is None and not (block and not notes):
        effects = [
            difference_in_means(cells[i], cells[0], alpha, arms[i], control)
            for i in range(1, len(arms))
        ]
    effects = _adjusted(effects, correction)
    adjusted: list[Effect] = []
    if covariates:
        Z = np.column_stack([v[keep] for v in cov_values])
        adjusted = _adjusted(lin_adjusted(y, codes, arms, 0, Z, alpha, clusters), correction)

    confirmatory = set(preregistered)
    subgroups: list[SubgroupEffect] = []
    tests: list[Interaction] = []
    slopes: list[Slope] = []
    mod_info = []
    for m in mods:
        name = m.spec.column
        family: Family = "confirmatory" if name in confirmatory else "exploratory"
        level_codes = m.codes[keep]
        L = max(len(m.levels), 1)
        cell_list = grouped_stats(codes * L + level_codes, y, len(arms) * L)
        cell_map = {
            (arms[i], m.levels[j]): cell_list[i * L + j]
            for i in range(len(arms))
            for j in range(len(m.levels))
        }
        if clusters is not None:
            subs, inter = clustered_subgroups(
                y, codes, level_codes, clusters, arms, 0, m.levels, name, family, alpha
            )
        else:
            subs = subgroup_effects(cell_map, name, m.levels, arms, control, family, alpha)
            inter = interactions(subs, arms, control)
        subgroups.extend(subs)
        tests.extend(inter)
        if m.values is not None:
            slopes.extend(
                interaction_slopes(y, codes, arms, 0, m.values[keep], name, family, alpha, clusters)
            )
        mod_info.append(
            {
                "moderator": name,
                "levels": m.levels,
                "cuts": list(m.spec.cuts) if m.spec.cuts else None,
                "family": family,
            }
        )
    subgroups, tests = _adjust_families(subgroups, tests, correction)

    balance_cols = list(dict.fromkeys([m.spec.column for m in mods] + list(covariates)))
    balance = _balance(frame, arm_codes_all, arms, balance_cols)
    flow = _flow(frame, arm_codes_all, arms, keep) if flow_columns else []
    attr = None
    if dropped["missing_outcome"] > 0:
        attr = _attrition(outcome, arm_codes_all, arms, ~np.isnan(y_all))

    result = AnalysisResult(
        outcome=outcome,
        arm_column=arm,
        control=control,
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
        n_rows=n_rows,
        n_analysed=int(keep.sum()),
        dropped=dropped,
        moderators=mod_info,
        covariates=list(covariates),
        block=block if (block and clusters is None and not notes) else None,
        cluster=cluster,
        minimum_effect=minimum_effect,
    )
    result.warnings = notes + _warnings(result)
    return result


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
            lc, levels = _factorize_text(s)
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


def _blocked(
    blocks: np.ndarray, codes: np.ndarray, y: np.ndarray, arms: list[str], alpha: float
) -> list[Effect]:
    block_codes, block_names = pd.factorize(pd.Series(blocks).astype(str))
    B = len(block_names)
    cells = grouped_stats(codes * B + block_codes, y, len(arms) * B)
    out = []
    for i in range(1, len(arms)):
        per_block = {str(block_names[b]): (cells[i * B + b], cells[b]) for b in range(B)}
        out.append(blocked_difference_in_means(per_block, alpha, arms[i], arms[0]))
    return out


def _adjusted(effects: list[Effect], correction: Correction) -> list[Effect]:
    p = adjust([e.p_value for e in effects], correction)
    return [replace(e, p_adjusted=float(q)) for e, q in zip(effects, p, strict=True)]


def _adjust_families(
    subgroups: list[SubgroupEffect], tests: list[Interaction], correction: Correction
):
    """Confirmatory family: the campaign's correction (Holm by default); exploratory:
    Benjamini-Hochberg. Subgroup effects and homogeneity tests are separate families."""

    def method(family: str) -> Correction:
        if correction == "none":
            return "none"
        return correction if family == "confirmatory" else "bh"

    def run(rows):
        out = list(rows)
        for family in ("confirmatory", "exploratory"):
            idx = [i for i, r in enumerate(out) if r.family == family]
            adj = adjust([out[i].p_value for i in idx], method(family))
            for i, q in zip(idx, adj, strict=True):
                out[i] = replace(out[i], p_adjusted=float(q))
        return out

    return run(subgroups), run(tests)


def _warnings(r: AnalysisResult) -> list[ReportWarning]:
    out: list[ReportWarning] = []
    if r.srm.flagged:
        out.append(
            ReportWarning(
                "srm",
                (
                    f"Sample ratio mismatch: the arm sizes differ from the design weights by more "
                    f"than chance allows (chi-square {r.srm.statistic:.1f}, df {r.srm.df}, "
                    f"p = {r.srm.p_value:.2g}). Check the assignment and data pipeline before "
                    "trusting any effect."
                ),
            )
        )
    if r.dropped["total"]:
        out.append(
            ReportWarning(
                "dropped_rows",
                (
                    f"{r.dropped['total']} of {r.n_rows} rows were left out (missing outcome "
                    f"{r.dropped['missing_outcome']}, missing moderator or covariate values)"
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
    z = norm_isf(r.alpha / 2) + norm_isf(0.2)
    if r.minimum_effect:
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
    explo = [
        t
        for t in r.interactions
        if t.family == "exploratory" and math.isfinite(t.p_value) and t.p_value < r.alpha
    ]
    explo_sub = [
        s
        for s in r.subgroups
        if s.family == "exploratory" and math.isfinite(s.p_value) and s.p_value < r.alpha
    ]
    if explo or explo_sub:
        out.append(
            ReportWarning(
                "exploratory",
                (
                    "Exploratory results: moderators not pre-registered in the analysis plan "
                    "(" + ", ".join(sorted({x.moderator for x in explo + explo_sub})) + ") show "
                    "p-values below alpha. Treat them as hypotheses for a new trial, not findings; "
                    "their p-values are adjusted by Benjamini-Hochberg."
                ),
            )
        )
    if r.cluster:
        out.append(
            ReportWarning(
                "clusters",
                (
                    "Clusters were randomized: every standard error is CR1 cluster-robust "
                    "(t with G - 1 df); with few clusters these intervals are too narrow, "
                    "so read them with care."
                ),
            )
        )
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
                    f"Response to {r.outcome} differs between arms (chi-square p = "
                    f"{r.attrition.p_value:.2g}): the effect on this outcome may be biased."
                ),
            )
        )
    return out


# Used by the report: the family-wise / FDR method applied to each family.
def family_method(correction: Correction, family: str) -> str:
    if correction == "none":
        return "none"
    return correction if family == "confirmatory" else "bh"


__all__ = [
    "AnalysisInputError",
    "AnalysisResult",
    "ArmSummary",
    "ReportWarning",
    "analyze",
    "BandSpecError",
    "CellStats",
]
