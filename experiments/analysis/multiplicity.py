"""Multiple-comparison adjustments: Holm (family-wise error) and Benjamini-Hochberg (FDR).

Written out here rather than taken from statsmodels, whose `multipletests` defaults to
Holm-Sidak; missing p-values (NaN) are left out of the family and stay NaN.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import numpy as np

Correction = Literal["holm", "bh", "none"]


def holm(p_values: Sequence[float]) -> np.ndarray:
    """adjusted p_(i) = max over j <= i of min(1, (m - j + 1) p_(j)), p sorted ascending."""
    p = np.asarray(p_values, dtype=float)
    out = np.full(p.shape, np.nan)
    ok = np.flatnonzero(~np.isnan(p))
    m = len(ok)
    if m == 0:
        return out
    order = ok[np.argsort(p[ok], kind="stable")]
    scaled = np.minimum(1.0, (m - np.arange(m)) * p[order])
    out[order] = np.maximum.accumulate(scaled)
    return out


def benjamini_hochberg(p_values: Sequence[float]) -> np.ndarray:
    """adjusted p_(i) = min over j >= i of min(1, m p_(j) / j), p sorted ascending."""
    p = np.asarray(p_values, dtype=float)
    out = np.full(p.shape, np.nan)
    ok = np.flatnonzero(~np.isnan(p))
    m = len(ok)
    if m == 0:
        return out
    order = ok[np.argsort(p[ok], kind="stable")]
    scaled = np.minimum(1.0, m * p[order] / np.arange(1, m + 1))
    out[order] = np.minimum.accumulate(scaled[::-1])[::-1]
    return out


def adjust(p_values: Sequence[float], method: Correction) -> np.ndarray:
    """Adjusted p-values of one family by `method` ("none" returns them unchanged)."""
    if method == "holm":
        return holm(p_values)
    if method == "bh":
        return benjamini_hochberg(p_values)
    if method == "none":
        return np.asarray(p_values, dtype=float).copy()
    raise ValueError(f"unknown correction {method!r}: use holm, bh or none")
