"""Trial diagnostics: sample ratio mismatch, baseline balance, CONSORT flow and attrition.

These checks say whether the comparison an effect report makes can be trusted: arm sizes
that match the design weights (SRM, flagged at p < 0.001), baseline characteristics that
look alike across arms (standardized differences, no significance tests: CONSORT item 15),
and how many participants each arm lost on the way from allocation to analysis.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np
from scipy import special

if TYPE_CHECKING:  # pandas is loaded by the functions that take frames, not on import
    import pandas as pd

SRM_THRESHOLD = 0.001
BALANCE_NOTE = 0.1


@dataclass(frozen=True)
class SRMResult:
    """Pearson chi-square of the arm counts against the design weights (df = arms - 1), or
    its stratified form (experiments/analysis/srm.py) over the randomized units.

    `flagged` is True when p < `threshold` (0.001, as GrowthBook, Eppo and Optimizely do).
    On unusable input (no participants, a weight missing) `error` holds a code and
    `message` a readable sentence; the numbers are then NaN and nothing is flagged.
    """

    statistic: float
    df: int
    p_value: float
    flagged: bool
    observed: dict[str, int]
    expected: dict[str, float]
    threshold: float = SRM_THRESHOLD
    error: str | None = None
    message: str = ""
    unit: str = "participants"  # what was counted: participants, or clusters
    strata: int = 1  # strata whose own probabilities gave the expected counts

    def to_dict(self) -> dict:
        return {
            "unit": self.unit,
            "strata": self.strata,
            "statistic": _finite_or_none(self.statistic),
            "df": self.df,
            "p_value": _finite_or_none(self.p_value),
            "flagged": self.flagged,
            "threshold": self.threshold,
            "observed": dict(self.observed),
            "expected": {k: _finite_or_none(v) for k, v in self.expected.items()},
            "error": self.error,
            "message": self.message,
        }


def _finite_or_none(x: float) -> float | None:
    return float(x) if x is not None and math.isfinite(x) else None


def srm(
    counts: Mapping[str, int],
    weights: Mapping[str, float],
    threshold: float = SRM_THRESHOLD,
) -> SRMResult:
    """Sample ratio mismatch test of observed arm `counts` against design `weights`.

    Weights need not sum to one (1:1:2 is fine). Every arm in `weights` is tested; an arm
    with participants but no weight is an error (it cannot have been allocated by design).
    """
    arms = list(weights)
    observed = {str(a): int(counts.get(a, 0)) for a in arms}
    extra = [str(a) for a in counts if a not in weights and int(counts[a]) > 0]

    def fail(code: str, message: str) -> SRMResult:
        return SRMResult(
            math.nan, max(len(arms) - 1, 0), math.nan, False, observed, {}, threshold, code, message
        )

    if extra:
        return fail(
            "unknown_arm", f"arm(s) {', '.join(extra)} have participants but no design weight"
        )
    if len(arms) < 2:
        return fail("too_few_arms", "the sample ratio test needs at least two arms")
    w = np.array([float(weights[a]) for a in arms])
    if not np.all(np.isfinite(w)) or np.any(w < 0) or w.sum() <= 0:
        return fail("bad_weights", "design weights must be non-negative numbers, not all zero")
    obs = np.array([observed[str(a)] for a in arms], dtype=float)
    if np.any(obs < 0):
        return fail("bad_counts", "arm counts must not be negative")
    total = obs.sum()
    if total == 0:
        return fail("no_participants", "no participants yet: nothing to compare")
    exp = total * w / w.sum()
    zero = exp == 0
    if np.any(obs[zero] > 0):
        return fail("zero_weight_arm", "an arm with weight 0 has participants")
    keep = ~zero
    statistic = float(np.sum((obs[keep] - exp[keep]) ** 2 / exp[keep]))
    df = int(keep.sum()) - 1
    p_value = float(special.chdtrc(df, statistic)) if df > 0 else math.nan
    expected = {str(a): float(e) for a, e in zip(arms, exp, strict=True)}
    return SRMResult(
        statistic, df, p_value, bool(p_value < threshold), observed, expected, threshold
    )


@dataclass(frozen=True)
class StandardizedDifference:
    """Balance of one baseline characteristic (or one level of a categorical one).

    `difference` = (mean_T - mean_C) / sqrt((s_T^2 + s_C^2) / 2), sample variances (n-1);
    for a level of a categorical characteristic the means are proportions. |d| > 0.1 is
    worth a note (`note` is True); NaN when both variances are zero or an arm is empty.
    """

    covariate: str
    level: str | None
    arm: str
    mean_treatment: float
    mean_control: float
    sd_treatment: float
    sd_control: float
    n_treatment: int
    n_control: int
    difference: float
    note: bool

    def to_dict(self) -> dict:
        return {
            "covariate": self.covariate,
            "level": self.level,
            "arm": self.arm,
            "mean_treatment": _finite_or_none(self.mean_treatment),
            "mean_control": _finite_or_none(self.mean_control),
            "sd_treatment": _finite_or_none(self.sd_treatment),
            "sd_control": _finite_or_none(self.sd_control),
            "n_treatment": self.n_treatment,
            "n_control": self.n_control,
            "difference": _finite_or_none(self.difference),
            "note": self.note,
        }


def standardized_difference(treatment: Sequence[float], control: Sequence[float]) -> float:
    """(mean_T - mean_C) / sqrt((s_T^2 + s_C^2) / 2) over non-missing values (NaN if undefined)."""
    t = np.asarray(treatment, dtype=float)
    c = np.asarray(control, dtype=float)
    t = t[~np.isnan(t)]
    c = c[~np.isnan(c)]
    if len(t) < 2 or len(c) < 2:
        return math.nan
    pooled = math.sqrt((t.var(ddof=1) + c.var(ddof=1)) / 2)
    if pooled == 0:
        return 0.0 if t.mean() == c.mean() else math.nan
    return float((t.mean() - c.mean()) / pooled)


def standardized_differences(
    frame: pd.DataFrame,
    arm: str,
    control: str,
    covariates: Sequence[str],
    threshold: float = BALANCE_NOTE,
) -> list[StandardizedDifference]:
    """The balance table: each covariate (numeric, or each level of a categorical one) x arm.

    `arm` is the column holding the arm, `control` the control arm's value. A numeric
    column is compared on its mean; any other column level by level on proportions.
    Missing values are left out of both arms.
    """
    if arm not in frame.columns:
        raise KeyError(f"no column {arm!r}")
    arms = frame[arm].astype(str)
    control = str(control)
    others = [a for a in _ordered_unique(arms) if a != control]
    rows: list[StandardizedDifference] = []
    is_control = (arms == control).to_numpy()
    import pandas as pd

    for cov in covariates:
        if cov not in frame.columns:
            raise KeyError(f"no column {cov!r}")
        col = frame[cov]
        if pd.api.types.is_numeric_dtype(col) and not pd.api.types.is_bool_dtype(col):
            series = {None: col.to_numpy(dtype=float)}
        else:
            present = col.notna().to_numpy()
            text = col.astype(str).to_numpy()
            levels = sorted(set(text[present]))
            series = {}
            for level in levels:
                v = (text == level).astype(float)
                v[~present] = np.nan
                series[level] = v
        for level, values in series.items():
            c = values[is_control]
            for a in others:
                t = values[(arms == a).to_numpy()]
                rows.append(_balance_row(cov, level, a, t, c, threshold))
    return rows


def _balance_row(
    cov: str, level: str | None, arm: str, t: np.ndarray, c: np.ndarray, threshold: float
) -> StandardizedDifference:
    tt = t[~np.isnan(t)]
    cc = c[~np.isnan(c)]
    d = standardized_difference(tt, cc)
    return StandardizedDifference(
        covariate=cov,
        level=level,
        arm=arm,
        mean_treatment=float(tt.mean()) if len(tt) else math.nan,
        mean_control=float(cc.mean()) if len(cc) else math.nan,
        sd_treatment=float(tt.std(ddof=1)) if len(tt) > 1 else math.nan,
        sd_control=float(cc.std(ddof=1)) if len(cc) > 1 else math.nan,
        n_treatment=int(len(tt)),
        n_control=int(len(cc)),
        difference=d,
        note=bool(math.isfinite(d) and abs(d) > threshold),
    )


def _ordered_unique(values: pd.Series) -> list[str]:
    return list(dict.fromkeys(values.tolist()))


FLOW_STAGES = ("allocated", "delivered", "exposed", "analysed", "opted_out")


@dataclass(frozen=True)
class FlowRow:
    """CONSORT-style counts for one arm: allocated, message delivered, page seen, analysed,
    opted out; `lost` = allocated - analysed."""

    arm: str
    allocated: int
    delivered: int | None
    exposed: int | None
    analysed: int
    opted_out: int | None

    @property
    def lost(self) -> int:
        return self.allocated - self.analysed

    def to_dict(self) -> dict:
        return {
            "arm": self.arm,
            "allocated": self.allocated,
            "delivered": self.delivered,
            "exposed": self.exposed,
            "analysed": self.analysed,
            "opted_out": self.opted_out,
            "lost": self.lost,
        }


def consort_flow(
    frame: pd.DataFrame,
    arm: str,
    outcome: str,
    arms: Sequence[str] | None = None,
    delivered: str | None = "delivered",
    exposed: str | None = "exposed",
    opted_out: str | None = "opted_out",
) -> list[FlowRow]:
    """Flow counts per arm. A stage column that is absent gives None for that stage.

    Analysed = rows with a non-missing `outcome` (ITT: everyone allocated whose outcome
    is known, whatever happened to their message).
    """
    arm_values = frame[arm].astype(str)
    order = [str(a) for a in arms] if arms is not None else _ordered_unique(arm_values)
    out = []
    for a in order:
        mask = (arm_values == a).to_numpy()
        sub = frame.loc[mask]

        def count(col: str | None, sub: pd.DataFrame = sub) -> int | None:
            if col is None or col not in sub.columns:
                return None
            return int(_truthy(sub[col]).sum())

        analysed = int(sub[outcome].notna().sum()) if outcome in sub.columns else 0
        out.append(
            FlowRow(
                a, int(mask.sum()), count(delivered), count(exposed), analysed, count(opted_out)
            )
        )
    return out


def _truthy(col: pd.Series) -> np.ndarray:
    import pandas as pd

    if pd.api.types.is_bool_dtype(col):
        return col.fillna(False).to_numpy(dtype=bool)
    numeric = pd.to_numeric(col, errors="coerce")
    return numeric.fillna(0).to_numpy() != 0


@dataclass(frozen=True)
class AttritionRow:
    """Response to a survey outcome in one arm: `responded` of `allocated` (rate)."""

    arm: str
    allocated: int
    responded: int
    rate: float
    difference_from_control: float

    def to_dict(self) -> dict:
        return {
            "arm": self.arm,
            "allocated": self.allocated,
            "responded": self.responded,
            "rate": _finite_or_none(self.rate),
            "difference_from_control": _finite_or_none(self.difference_from_control),
        }


@dataclass(frozen=True)
class Attrition:
    """Attrition of a survey outcome per arm, with a chi-square test that response rates
    are equal across arms (differential attrition can bias the effect on that outcome)."""

    outcome: str
    rows: list[AttritionRow] = field(default_factory=list)
    statistic: float = math.nan
    df: int = 0
    p_value: float = math.nan

    def to_dict(self) -> dict:
        return {
            "outcome": self.outcome,
            "rows": [r.to_dict() for r in self.rows],
            "statistic": _finite_or_none(self.statistic),
            "df": self.df,
            "p_value": _finite_or_none(self.p_value),
        }


def attrition(
    frame: pd.DataFrame, arm: str, outcome: str, control: str, arms: Sequence[str] | None = None
) -> Attrition:
    """Response rate of a survey `outcome` per arm (NaN = did not answer)."""
    arm_values = frame[arm].astype(str)
    order = [str(a) for a in arms] if arms is not None else _ordered_unique(arm_values)
    answered = frame[outcome].notna().to_numpy()
    allocated, responded = [], []
    for a in order:
        mask = (arm_values == a).to_numpy()
        allocated.append(int(mask.sum()))
        responded.append(int(answered[mask].sum()))
    return attrition_from_counts(outcome, order, allocated, responded, control)


def attrition_from_counts(
    outcome: str,
    arms: Sequence[str],
    allocated: Sequence[int],
    responded: Sequence[int],
    control: str,
) -> Attrition:
    """Attrition from per-arm counts (e.g. computed in the database)."""
    counts = [(str(a), int(n), int(r)) for a, n, r in zip(arms, allocated, responded, strict=True)]
    rates = {a: (r / n if n else math.nan) for a, n, r in counts}
    base = rates.get(str(control), math.nan)
    rows = [AttritionRow(a, n, r, rates[a], rates[a] - base) for a, n, r in counts]
    table = np.array([[r, n - r] for _, n, r in counts if n > 0], dtype=float)
    statistic, df, p = math.nan, 0, math.nan
    if len(table) >= 2 and table[:, 0].sum() > 0 and table[:, 1].sum() > 0:
        expected = table.sum(1, keepdims=True) * table.sum(0, keepdims=True) / table.sum()
        statistic = float(((table - expected) ** 2 / expected).sum())
        df = len(table) - 1
        p = float(special.chdtrc(df, statistic))
    return Attrition(outcome, rows, statistic, df, p)
