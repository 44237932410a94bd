"""The analysable trial and its design, as the arrays every estimator reads.

`prepare` turns a participant frame (one row per randomized participant) into a `Trial`
(outcome, arm codes with control first, covariates, the moderators) and a `Design` (how the
rows were randomized: strata, clusters, recorded assignment probabilities; the alpha asked
for), checking every input and counting the rows it cannot use. Estimators take
`(trial, design)`; a subgroup estimator gets the trial restricted to the rows that have its
moderator (`Trial.for_moderator`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace

import numpy as np
import pandas as pd

from experiments import baseline
from experiments.analysis.results import Family
from experiments.analysis.strata import PooledStrata, pool_strata
from experiments.bands import BandSpec, sort_levels
from experiments.design import POST_TREATMENT


class AnalysisInputError(ValueError):
    """Input that cannot be analysed; the message names the column, value or row."""


@dataclass(frozen=True)
class Moderator:
    """A baseline characteristic by which effects may differ, coded per trial row."""

    name: str
    levels: list[str]
    codes: np.ndarray  # level per row, -1 = missing
    values: np.ndarray | None  # the numbers, for a banded (numeric) moderator
    family: Family
    cuts: tuple[float, ...] | None = None
    default_bands: bool = False  # no cut points were given: the campaign's defaults

    def subset(self, mask: np.ndarray) -> Moderator:
        values = None if self.values is None else self.values[mask]
        return replace(self, codes=self.codes[mask], values=values)


@dataclass(frozen=True)
class Trial:
    """The rows an estimate uses: outcome, arm (0 = control), covariates."""

    y: np.ndarray
    arm: np.ndarray
    arms: tuple[str, ...]
    covariates: np.ndarray  # (n, p): imputed values, then missingness indicators
    covariate_names: tuple[str, ...] = ()
    moderator: Moderator | None = None

    @property
    def n(self) -> int:
        return len(self.y)

    @property
    def control(self) -> str:
        return self.arms[0]

    def subset(self, mask: np.ndarray) -> Trial:
        return replace(
            self,
            y=self.y[mask],
            arm=self.arm[mask],
            covariates=self.covariates[mask],
            moderator=None if self.moderator is None else self.moderator.subset(mask),
        )

    def for_moderator(self, moderator: Moderator) -> tuple[Trial, np.ndarray]:
        """The trial restricted to rows that have the moderator, and that row mask."""
        mask = moderator.codes >= 0
        return replace(self, moderator=moderator).subset(mask), mask


@dataclass(frozen=True)
class Design:
    """How the trial's rows were randomized, and the inference asked for.

    `strata` codes the stratum (block) of each row; `pooled` is the headline's strata
    after tiny strata were pooled (strata.py). `clusters` codes the randomized cluster.
    `probability` is the recorded probability of each row's own arm; `weighted` says the
    estimates weight rows by its inverse (probabilities differ within an arm and there
    are no strata to compare within). `arm_weights` are the design's allocation weights.
    """

    alpha: float = 0.05
    strata: np.ndarray | None = None
    stratum_labels: tuple[str, ...] = ()
    clusters: np.ndarray | None = None
    probability: np.ndarray | None = None
    weighted: bool = False
    arm_weights: tuple[float, ...] = ()
    pooled: PooledStrata | None = None
    # Always-valid monitoring (--sequential COL): each row's look (0, 1, ... in time
    # order; -1 = no time), the column's value at each look, the units at which the
    # confidence sequence is tightest (0: all the units at the last look).
    looks: np.ndarray | None = None
    look_values: tuple = ()
    sequential_n: float = 0.0
    saturation: np.ndarray | None = None  # a saturation design: each row's cluster's share

    @property
    def stratified(self) -> bool:
        return self.strata is not None

    @property
    def clustered(self) -> bool:
        return self.clusters is not None

    @property
    def n_clusters(self) -> int:
        return 0 if self.clusters is None else len(np.unique(self.clusters))

    def subset(self, mask: np.ndarray) -> Design:
        def cut(a):
            return None if a is None else a[mask]

        return replace(
            self,
            strata=cut(self.strata),
            clusters=cut(self.clusters),
            probability=cut(self.probability),
            saturation=cut(self.saturation),
            looks=cut(self.looks),
            pooled=None,
        )


def text_of(v: object) -> str:
    if isinstance(v, float | np.floating) and float(v).is_integer():
        return str(int(v))
    return str(v)


def factorize_text(values: pd.Series) -> tuple[np.ndarray, list[str]]:
    """Codes (-1 = missing) and the distinct values as the text they had in the file
    (a 1.0 read as a number gives '1'). Factorizes first, so only distinct values are
    converted: a million rows cost one vectorised pass."""
    codes, uniques = pd.factorize(values, use_na_sentinel=True)
    texts = [text_of(u) for u in uniques]
    distinct = list(dict.fromkeys(texts))
    if len(distinct) != len(texts):  # e.g. 1 and "1" in one object column
        remap = np.array([distinct.index(t) for t in texts] + [-1], dtype=np.intp)
        codes = remap[codes]
    return np.asarray(codes, dtype=np.intp), distinct


def numeric(frame: pd.DataFrame, col: str, what: str) -> np.ndarray:
    s = frame[col]
    if pd.api.types.is_bool_dtype(s) or pd.api.types.is_numeric_dtype(s):
        return s.to_numpy(dtype=float)
    text = s.astype(object)
    lowered = text.map(lambda v: v.strip().lower() if isinstance(v, str) else v)
    mapped = lowered.replace({"true": 1.0, "false": 0.0, "": np.nan})
    values = pd.to_numeric(mapped, errors="coerce")
    bad = values.isna() & mapped.notna()
    if bad.any():
        pos = int(np.flatnonzero(bad.to_numpy())[0])
        raise AnalysisInputError(
            f"{what} column {col!r} is not numeric: value {s.iloc[pos]!r} at data row {pos + 1}"
        )
    return values.to_numpy(dtype=float)


def check_moderator(name: str) -> None:
    """Refuse a moderator measured after treatment (an outcome, not a baseline trait)."""
    if name in POST_TREATMENT:
        raise AnalysisInputError(
            f"{name!r} is measured after the message, so it cannot be a moderator "
            "(a post-treatment moderator biases the estimate); use its baseline measure"
        )


# A numeric moderator with more distinct values than this needs cut points: level by
# level it would make one subgroup per value.
MAX_LEVELS = 12


def declared_bands(name: str) -> BandSpec | None:
    """The default bands the baseline-variable registry declares for `name` (age and
    self-efficacy have them), if any."""
    return next((v.bands for v in baseline.variables() if v.name == name and v.bands), None)


def code_moderator(frame: pd.DataFrame, spec: BandSpec, family: Family) -> Moderator:
    """The moderator's level per row. A numeric column given without cut points and with
    more than MAX_LEVELS values gets its declared default bands (age, self-efficacy) or is
    refused with the cut points to give."""
    col = spec.column
    check_moderator(col)
    if spec.cuts is None:
        values = frame[col].dropna().unique()
        numbers = pd.to_numeric(pd.Series(values, dtype=object), errors="coerce")
        if len(values) > MAX_LEVELS and numbers.notna().all():
            bands = declared_bands(col)
            if bands is not None:
                return replace(code_moderator(frame, bands, family), default_bands=True)
            lo, hi = numbers.quantile([1 / 3, 2 / 3])
            raise AnalysisInputError(
                f"moderator {col!r} is numeric with {len(values)} distinct values: give cut "
                f"points to band it (for example {col}:{lo:g},{hi:g}), or it would make one "
                "subgroup per value"
            )
    if spec.cuts is not None:
        try:
            values = numeric(frame, col, "moderator")
        except AnalysisInputError as exc:
            raise AnalysisInputError(f"{exc} (cut points need numbers)") from None
        codes = np.searchsorted(np.asarray(spec.cuts), values, side="right").astype(np.intp)
        codes[np.isnan(values)] = -1
        return Moderator(col, list(spec.levels or []), codes, values, family, tuple(spec.cuts))
    codes, uniques = factorize_text(frame[col])
    levels = sort_levels(uniques)
    remap = np.array([levels.index(u) for u in uniques] + [-1], dtype=np.intp)
    return Moderator(col, levels, remap[codes], None, family)


@dataclass
class Prepared:
    """What `prepare` found: the trial and design, and the counts the report shows."""

    trial: Trial
    design: Design
    moderators: list[Moderator]
    arm_codes_all: np.ndarray  # arm per input row (-1 = missing), for SRM, balance, flow
    keep: np.ndarray  # input rows in the trial
    answered: np.ndarray  # input rows with an outcome
    n_rows: int
    dropped: dict
    imputed: dict  # covariate -> rows whose missing value was imputed


def prepare(
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
    preregistered: Sequence[str] = (),
    weights: Mapping[str, float] | None = None,
    alpha: float = 0.05,
    sequential: str | None = None,
    sequential_n: float = 0.0,
) -> Prepared:
    """Check the inputs and build the trial and its design (AnalysisInputError names
    the column, value or row of the first problem)."""
    if not 0 < alpha < 1:
        raise AnalysisInputError(f"alpha must be between 0 and 1, got {alpha}")
    needed = [arm, outcome, *[m.column for m in moderators], *covariates]
    needed += [c for c in (block, cluster, probability, sequential) if c]
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
    if outcome in mod_cols:
        raise AnalysisInputError(f"{outcome!r} cannot be both the outcome and a moderator")
    for cov in covariates:
        if cov in POST_TREATMENT or cov == outcome:
            raise AnalysisInputError(
                f"covariate {cov!r} is measured after the message: adjusting for it biases "
                "the estimate"
            )
    unknown = [p for p in preregistered if p not in mod_cols]
    if unknown:
        shown = ", ".join(mod_cols) or "none"
        raise AnalysisInputError(
            f"pre-registered moderator {unknown[0]!r} is not a moderator of this analysis "
            f"(moderators: {shown}): give it as a moderator too, or check its spelling"
        )
    control = str(control)
    n_rows = len(frame)
    arm_codes_all, arm_uniques = factorize_text(frame[arm])
    if control not in arm_uniques:
        shown = ", ".join(repr(a) for a in arm_uniques[:10])
        raise AnalysisInputError(
            f"control value {control!r} does not occur in column {arm!r} (values: {shown})"
        )
    arms = [control] + [a for a in arm_uniques if a != control]
    order = np.array([arms.index(a) for a in arm_uniques] + [-1], dtype=np.intp)
    arm_codes_all = order[arm_codes_all]
    has_arm = arm_codes_all >= 0

    y_all = numeric(frame, outcome, "outcome")
    confirmatory = set(preregistered)
    mods = [
        code_moderator(frame, s, "confirmatory" if s.column in confirmatory else "exploratory")
        for s in moderators
    ]
    for m in mods:
        if not np.any(m.codes >= 0):
            raise AnalysisInputError(f"moderator {m.name!r} is missing on every row")
    cov_values = [numeric(frame, c, "covariate") for c in covariates]
    prob_all = None
    if probability:
        prob_all = numeric(frame, probability, "probability")
        bad = ~np.isnan(prob_all) & ~((prob_all > 0) & (prob_all <= 1))
        if bad.any():
            pos = int(np.flatnonzero(bad)[0])
            raise AnalysisInputError(
                f"probability column {probability!r} holds {prob_all[pos]!r} at data row "
                f"{pos + 1}: a probability of the row's own arm must be above 0 and at most 1"
            )

    answered = ~np.isnan(y_all)
    keep = has_arm & answered
    dropped: dict = {
        "missing_arm": int((~has_arm).sum()),
        "missing_outcome": int((has_arm & ~answered).sum()),
    }
    for name, col in (("cluster", cluster),):
        if col:
            present = frame[col].notna().to_numpy()
            dropped[f"missing_{name}"] = int((keep & ~present).sum())
            keep &= present
    if prob_all is not None:
        dropped["missing_probability"] = int((keep & np.isnan(prob_all)).sum())
        keep &= ~np.isnan(prob_all)
    # Rows missing a moderator leave only that moderator's subgroups; a missing covariate
    # is imputed (below): neither drops a row from the headline or Lin estimates.
    dropped["missing_moderator"] = {m.name: int((keep & (m.codes < 0)).sum()) for m in mods}
    dropped["missing_covariate"] = {c: 0 for c in covariates}
    dropped["total"] = int(n_rows - keep.sum())

    codes = arm_codes_all[keep]
    counts = np.bincount(codes, minlength=len(arms))
    for a, n in zip(arms, counts, strict=True):
        if n < 2:
            raise AnalysisInputError(
                f"arm {a!r} has {n} row(s) with an outcome to analyse: at least two are needed"
            )
    Z, names, imputed = _impute([v[keep] for v in cov_values], list(covariates), int(keep.sum()))
    trial = Trial(y_all[keep], codes, tuple(arms), Z, tuple(names))
    strata = labels = None
    if block:
        strata, labels = factorize_text(frame[block].iloc[np.flatnonzero(keep)])
        if (strata < 0).any():  # a missing stratum is a stratum of its own, as randomize writes
            strata = np.where(strata < 0, len(labels), strata)
            labels = [*labels, "NA"]
    clusters = None
    if cluster:
        clusters, _ = factorize_text(frame[cluster].iloc[np.flatnonzero(keep)])
    prob = None if prob_all is None else prob_all[keep]
    arm_w = tuple(float((weights or {}).get(a, 1.0)) for a in arms)
    design = Design(
        alpha=alpha,
        strata=strata,
        stratum_labels=tuple(labels or ()),
        clusters=clusters,
        probability=prob,
        weighted=strata is None and _varies_within_arm(prob, codes, len(arms)),
        arm_weights=arm_w,
    )
    if strata is not None:
        design = replace(design, pooled=pool_strata(trial, design))
    if sequential:
        codes_t, values_t = look_codes(frame[sequential].iloc[np.flatnonzero(keep)], sequential)
        design = replace(
            design, looks=codes_t, look_values=values_t, sequential_n=float(sequential_n)
        )
    return Prepared(
        trial,
        design,
        [m.subset(keep) for m in mods],
        arm_codes_all,
        keep,
        answered,
        n_rows,
        dropped,
        imputed,
    )


def look_codes(values: pd.Series, column: str) -> tuple[np.ndarray, tuple]:
    """Each row's look, in time order, and the column's value at each look: numbers in
    numeric order, otherwise dates (ISO 8601, e.g. 2026-11-30 or 2026-11-30T09:00) in
    time order. A missing value leaves the row out of the looks (-1)."""
    present = values.notna().to_numpy()
    if not present.any():
        raise AnalysisInputError(f"sequential column {column!r} is empty on every row")
    number = pd.to_numeric(values, errors="coerce").to_numpy(dtype=float)
    if np.isnan(number[present]).any():
        text = values.astype(str).str.strip()
        when = pd.to_datetime(text.where(present), errors="coerce", format="ISO8601", utc=True)
        bad = present & when.isna().to_numpy()
        if bad.any():
            pos = int(np.flatnonzero(bad)[0])
            raise AnalysisInputError(
                f"sequential column {column!r} holds {values.iloc[pos]!r} at data row "
                f"{pos + 1}: it must order the rows in time, with numbers or dates "
                "(2026-11-30)"
            )
        key = when.dt.tz_localize(None).to_numpy()[present]
        shown = text.to_numpy()[present]
    else:
        key = number[present]
        shown = [int(v) if float(v).is_integer() else float(v) for v in key]
    _, first, codes = np.unique(key, return_index=True, return_inverse=True)
    out = np.full(len(values), -1, dtype=np.intp)
    out[present] = codes
    return out, tuple(shown[i] for i in first)


def _varies_within_arm(prob: np.ndarray | None, arm: np.ndarray, k: int) -> bool:
    if prob is None or not len(prob):
        return False
    lo = np.full(k, np.inf)
    hi = np.full(k, -np.inf)
    np.minimum.at(lo, arm, prob)
    np.maximum.at(hi, arm, prob)
    return bool(np.any(hi - lo > 1e-9))


def _impute(
    columns: list[np.ndarray], names: list[str], n: int
) -> tuple[np.ndarray, list[str], dict]:
    """Covariates with a missing value entered at the mean of the others, plus an indicator
    of missingness per covariate that has any (Lin's adjustment then uses every row)."""
    values, out_names, extra, extra_names, imputed = [], [], [], [], {}
    for name, v in zip(names, columns, strict=True):
        miss = np.isnan(v)
        imputed[name] = int(miss.sum())
        if miss.all():
            raise AnalysisInputError(f"covariate {name!r} is missing on every row")
        if miss.any():
            v = np.where(miss, v[~miss].mean(), v)
            extra.append(miss.astype(float))
            extra_names.append(f"{name} missing")
        values.append(v)
        out_names.append(name)
    cols = values + extra
    Z = np.column_stack(cols) if cols else np.empty((n, 0))
    return Z, out_names + extra_names, imputed


def saturation_column(
    frame: pd.DataFrame, col: str, keep: np.ndarray, clusters: np.ndarray | None
) -> np.ndarray:
    """Each analysed row's cluster saturation (a share in [0, 1], one per cluster);
    AnalysisInputError names the row of a blank, a non-number or a second value."""
    if clusters is None:
        raise AnalysisInputError(
            "a saturation column needs the cluster column it was randomized by (--cluster)"
        )
    if col not in frame.columns:
        have = ", ".join(map(str, frame.columns[:20]))
        raise AnalysisInputError(f"no column {col!r} in the data (columns: {have})")
    values = numeric(frame, col, "saturation")
    rows = np.flatnonzero(keep)
    sat = values[rows]
    bad = np.isnan(sat) | (sat < 0) | (sat > 1)
    if bad.any():
        pos = int(rows[np.flatnonzero(bad)[0]])
        shown = "an empty cell" if np.isnan(values[pos]) else f"{values[pos]:g}"
        raise AnalysisInputError(
            f"saturation column {col!r} holds {shown} at data row {pos + 1}: "
            "a saturation is a share between 0 and 1"
        )
    sat = np.round(sat, 6)
    first = np.full(int(clusters.max()) + 1, np.nan)
    first[clusters[::-1]] = sat[::-1]
    differs = sat != first[clusters]
    if differs.any():
        pos = int(rows[np.flatnonzero(differs)[0]])
        raise AnalysisInputError(
            f"saturation column {col!r}: data row {pos + 1} has {sat[differs][0]:g} but its "
            f"cluster has {first[clusters][differs][0]:g} elsewhere: one saturation per cluster"
        )
    return sat
