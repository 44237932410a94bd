"""Summary statistics of one cell (an arm, or an arm within a subgroup) that add together.

`CellStats(n, sum, sum_squares)` is all a difference in means needs, so the same estimator
runs on a participant frame or on per-cell sums computed in the database; two partial
summaries of the same cell add (gbstats-style).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class CellStats:
    """n, sum and sum of squares of an outcome in one cell."""

    n: int
    sum: float
    sum_squares: float

    def __add__(self, other: CellStats) -> CellStats:
        return CellStats(
            self.n + other.n, self.sum + other.sum, self.sum_squares + other.sum_squares
        )

    @classmethod
    def of(cls, values) -> CellStats:
        v = np.asarray(values, dtype=float)
        return cls(int(v.size), float(v.sum()), float((v * v).sum()))

    @property
    def mean(self) -> float:
        return self.sum / self.n if self.n > 0 else math.nan

    @property
    def variance(self) -> float:
        """Sample variance (n - 1 denominator); NaN below two observations."""
        if self.n < 2:
            return math.nan
        # sum of squared deviations; clipped at 0 against rounding on constant outcomes
        ss = self.sum_squares - self.sum * self.sum / self.n
        return max(ss, 0.0) / (self.n - 1)


def grouped_stats(codes: np.ndarray, y: np.ndarray, size: int) -> list[CellStats]:
    """CellStats for every code 0..size-1 in one vectorised pass (np.bincount).

    The sums of squares are taken around each cell's mean (two passes) so a large mean
    does not cost precision; the returned `sum_squares` is the raw sum of squares.
    """
    codes = np.asarray(codes, dtype=np.intp)
    y = np.asarray(y, dtype=float)
    n = np.bincount(codes, minlength=size)
    s = np.bincount(codes, weights=y, minlength=size)
    mean = np.divide(s, n, out=np.zeros(size), where=n > 0)
    dev = y - mean[codes]
    ss_dev = np.bincount(codes, weights=dev * dev, minlength=size)
    # raw sum of squares = ss around the mean + n mean^2 (exact, but better conditioned)
    sq = ss_dev + n * mean * mean
    return [CellStats(int(n[i]), float(s[i]), float(sq[i])) for i in range(size)]
