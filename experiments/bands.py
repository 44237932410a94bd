"""Bands: ordered levels cut from a numeric moderator, intervals closed on the left.

`age:35,55` means three bands: under 35, 35 to 54, 55 and over. The same parser and
labels serve randomization strata (`nudge randomize --strata`) and analysis moderators
(`nudge analyze --moderator`), so a stratum and a subgroup with the same spec agree.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:  # imported where used: `nudge randomize` never needs pandas
    import pandas as pd

MISSING_LEVEL = None


class BandSpecError(ValueError):
    """A `COL[:CUTS]` spec that cannot be read."""


@dataclass(frozen=True)
class BandSpec:
    """A column and, for a numeric column, the cut points that split it into bands.

    `cuts` is None for a column used level by level. `labels`, when given, names the
    bands (one more label than cuts).
    """

    column: str
    cuts: tuple[float, ...] | None = None
    labels: tuple[str, ...] | None = None

    def __post_init__(self) -> None:
        if not self.column:
            raise BandSpecError("a column name is required")
        if self.cuts is not None:
            if len(self.cuts) == 0:
                raise BandSpecError(f"{self.column}: give at least one cut point")
            if any(not math.isfinite(c) for c in self.cuts):
                raise BandSpecError(f"{self.column}: cut points must be finite numbers")
            if list(self.cuts) != sorted(set(self.cuts)):
                raise BandSpecError(f"{self.column}: cut points must be strictly increasing")
            if self.labels is not None and len(self.labels) != len(self.cuts) + 1:
                raise BandSpecError(
                    f"{self.column}: {len(self.cuts)} cut points need "
                    f"{len(self.cuts) + 1} labels, got {len(self.labels)}"
                )

    @property
    def levels(self) -> list[str] | None:
        """Band labels in ascending order (None for a column used level by level)."""
        if self.cuts is None:
            return None
        return list(self.labels) if self.labels else default_band_labels(self.cuts)

    def assign(self, values: pd.Series | Sequence) -> pd.Series:
        """Return each value's level as a string (None where the value is missing).

        For a banded column, values are converted to numbers; a value that is not a
        number raises BandSpecError naming the first offending row (0-based position).
        """
        import pandas as pd

        series = pd.Series(values) if not isinstance(values, pd.Series) else values
        if self.cuts is None:
            levels = [None if pd.isna(v) else _level_text(v) for v in series.tolist()]
            return pd.Series(levels, index=series.index, dtype=object)
        numeric = pd.to_numeric(series, errors="coerce")
        bad = numeric.isna() & series.notna() & (series.astype(str).str.strip() != "")
        if bad.any():
            pos = int(np.flatnonzero(bad.to_numpy())[0])
            raise BandSpecError(
                f"column {self.column!r}: value {series.iloc[pos]!r} at row {pos + 1} "
                "is not a number"
            )
        codes = np.searchsorted(np.asarray(self.cuts, dtype=float), numeric.to_numpy(), "right")
        labels = np.asarray(self.levels, dtype=object)
        out = labels[np.clip(codes, 0, len(labels) - 1)]
        out[numeric.isna().to_numpy()] = None
        return pd.Series(out, index=series.index, dtype=object)


def _fmt(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else f"{x:g}"


def _level_text(v: object) -> str:
    if isinstance(v, float) and v.is_integer():
        return str(int(v))
    return str(v)


def default_band_labels(cuts: Sequence[float]) -> list[str]:
    """Readable labels: integer cuts give `<35`, `35-54`, `55+`; others `<2.5`, `2.5-<3.5`, `>=3.5`."""
    integer = all(float(c).is_integer() for c in cuts)
    labels = [f"<{_fmt(cuts[0])}"]
    for lo, hi in zip(cuts[:-1], cuts[1:], strict=True):
        if integer:
            labels.append(f"{_fmt(lo)}-{_fmt(hi - 1)}")
        else:
            labels.append(f"{_fmt(lo)}-<{_fmt(hi)}")
    labels.append(f"{_fmt(cuts[-1])}+" if integer else f">={_fmt(cuts[-1])}")
    return labels


def parse_band_spec(text: str) -> BandSpec:
    """Parse `COL` or `COL:CUT,CUT,...` as given on the command line."""
    column, sep, rest = text.partition(":")
    column = column.strip()
    if not column:
        raise BandSpecError(f"{text!r}: a column name is required before ':'")
    if not sep:
        return BandSpec(column)
    try:
        cuts = tuple(float(part) for part in rest.split(","))
    except ValueError:
        raise BandSpecError(
            f"{text!r}: cut points must be comma-separated numbers, e.g. age:35,55"
        ) from None
    return BandSpec(column, cuts)


def sort_levels(levels: Sequence[object]) -> list[str]:
    """Levels of a categorical column in ascending order: numerically if all are numbers."""
    texts = [str(level) for level in levels]
    try:
        return sorted(texts, key=float)
    except ValueError:
        return sorted(texts)


# The campaign defaults the research suggests: three age bands crossed with three
# self-efficacy bands (mean of three 1-5 items).
DEFAULT_AGE_BANDS = BandSpec("age", (35.0, 55.0), ("18-34", "35-54", "55+"))
DEFAULT_SELF_EFFICACY_BANDS = BandSpec("self_efficacy", (2.5, 3.5), ("low", "middle", "high"))


def stratum_label(levels: dict[str, str | None]) -> str:
    """One stratum's name, e.g. `age=18-34|self_efficacy=low` (empty for no strata)."""
    return "|".join(f"{k}={'NA' if v is None else v}" for k, v in levels.items())


def stratum_order(labels: Sequence[str], specs: Sequence[BandSpec]) -> list[str]:
    """Stratum labels (`age=18-34|self_efficacy=low`) in the bands' own order, moderator by
    moderator: low, middle, high rather than the alphabet's high, low, middle. Levels a
    spec does not list (unbanded columns) follow in `sort_levels` order, missing last."""
    order: dict[str, dict[str, int]] = {}
    for spec in specs:
        if spec.levels is not None:
            order[spec.column] = {level: i for i, level in enumerate(spec.levels)}

    def key(label: str) -> tuple:
        parts = []
        for part in label.split("|") if label else []:
            column, _, level = part.partition("=")
            known = order.get(column, {})
            if level == "NA":
                parts.append((2, 0, 0.0, ""))
            elif level in known:
                parts.append((0, known[level], 0.0, ""))
            else:
                try:
                    parts.append((1, 0, float(level), ""))
                except ValueError:
                    parts.append((1, 1, 0.0, level))
        return tuple(parts)

    return sorted(labels, key=key)
