"""Tail probabilities and quantiles of the reference distributions (normal, t, chi-square).

Taken from scipy.special, which imports in a fraction of scipy.stats' time: `nudge
analyze` pays the import on every run.
"""

from __future__ import annotations

import math

from scipy import special


def norm_sf(x: float) -> float:
    return float(special.ndtr(-x))


def norm_isf(q: float) -> float:
    return float(-special.ndtri(q))


def t_sf(x: float, df: float) -> float:
    if math.isinf(df):
        return norm_sf(x)
    return float(special.stdtr(df, -x))


def t_isf(q: float, df: float) -> float:
    if math.isinf(df):
        return norm_isf(q)
    return float(-special.stdtrit(df, q))


def chi2_sf(x: float, df: float) -> float:
    return float(special.chdtrc(df, x))


def f_sf(x: float, df1: float, df2: float) -> float:
    return float(special.fdtrc(df1, df2, x))
