"""The pieces of CR2 (Bell and McCaffrey 2002) that the arm-saturated fit
(`experiments.analysis.linear`) and the general least squares
(`experiments.analysis.sandwich`) share: the error of a design that cannot be fitted, the
adjustment A_g = (I - H_gg)^(-1/2) taken from the eigenvalues of I - H_gg (symmetric root,
pseudo-inverse of zero eigenvalues, as estimatr and clubSandwich), and the
Bell-McCaffrey degrees of freedom of a contrast (Imbens and Kolesar 2016).

Each module keeps its own way to the per-cluster pieces (the saturated fit never builds a
design matrix); both hand them here in one form: for a contrast c, D_g = |u_g|^2 with
u_g = A_g X_g M c, and R_g = L' X_g' u_g (L L' = M), so that G'G = diag(D) - R R'.
"""

from __future__ import annotations

import math

import numpy as np

SINGULAR = 1e-12


class DegenerateDesign(ValueError):
    """The regression cannot be fitted (an empty cell, collinear columns, too few rows,
    leverage 1)."""


def inverse_sqrt(eigenvalues: np.ndarray) -> np.ndarray:
    """1 / sqrt(lambda) of the eigenvalues of I - H_gg; 0 where lambda is (near) zero."""
    return np.where(
        eigenvalues > SINGULAR, 1.0 / np.sqrt(np.clip(eigenvalues, SINGULAR, None)), 0.0
    )


def trace_product(d1, R1, R2, d3, R3, R4) -> float:
    """tr[(diag d1 - R1 R2')(diag d3 - R3 R4')] without forming the G x G matrices."""
    return float(
        np.sum(d1 * d3)
        - np.sum(d1 * np.einsum("gk,gk->g", R3, R4))
        - np.sum(d3 * np.einsum("gk,gk->g", R1, R2))
        + np.sum((R2.T @ R3) * (R1.T @ R4))
    )


def bell_mccaffrey_df(d: np.ndarray, R: np.ndarray) -> float:
    """(tr G'G)^2 / tr((G'G)^2) for G'G = diag(d) - R R' (d: G, R: G x k); NaN when the
    denominator is not positive."""
    trace = d.sum() - np.sum(R * R)
    trace_sq = trace_product(d, R, R, d, R, R)
    return float(trace * trace / trace_sq) if trace_sq > 0 else math.nan
