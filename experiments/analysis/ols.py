"""Least squares with heteroskedasticity-robust (HC2) or cluster-robust (CR1) covariance.

Used where a regression is the estimator (Lin's covariate adjustment, the linear
interaction slope, clustered designs). Plain numpy, one pass over the rows.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np

CovType = Literal["HC2", "CR1"]


class DegenerateDesign(ValueError):
    """The regression cannot be fitted (collinear columns, too few rows or clusters)."""


@dataclass(frozen=True)
class OLSFit:
    beta: np.ndarray
    cov: np.ndarray
    n: int
    k: int
    df_resid: int
    cov_type: CovType
    clusters: int | None = None

    @property
    def std_errors(self) -> np.ndarray:
        # a variance that rounding pushed a hair below zero is zero (reported as no SE)
        return np.sqrt(np.clip(np.diag(self.cov), 0.0, None))


def ols(
    X: np.ndarray, y: np.ndarray, cov_type: CovType = "HC2", clusters: np.ndarray | None = None
) -> OLSFit:
    """OLS of y on X with HC2, or CR1 (Stata's small-sample factor
    G/(G-1) * (N-1)/(N-K), as statsmodels' cov_type="cluster") when clusters are given."""
    X = np.asarray(X, dtype=float)
    y = np.asarray(y, dtype=float)
    n, k = X.shape
    if n <= k:
        raise DegenerateDesign(f"{n} rows are too few for {k} coefficients")
    xtx = X.T @ X
    if np.linalg.matrix_rank(xtx) < k:
        raise DegenerateDesign("the design matrix is collinear (an empty or constant cell)")
    xtx_inv = np.linalg.inv(xtx)
    beta = xtx_inv @ (X.T @ y)
    e = y - X @ beta
    if cov_type == "HC2":
        h = ((X @ xtx_inv) * X).sum(axis=1)
        if np.any(h >= 1 - 1e-12):
            raise DegenerateDesign(
                "a cell has a single observation (leverage 1): its variance cannot be estimated"
            )
        w = e * e / (1.0 - h)
        meat = (X * w[:, None]).T @ X
        cov = xtx_inv @ meat @ xtx_inv
        return OLSFit(beta, cov, n, k, n - k, "HC2")
    if clusters is None:
        raise ValueError("CR1 needs cluster ids")
    _, codes = np.unique(np.asarray(clusters), return_inverse=True)
    g = int(codes.max()) + 1
    if g < 2:
        raise DegenerateDesign("cluster-robust errors need at least two clusters")
    xe = X * e[:, None]
    scores = np.empty((g, k))
    for j in range(k):
        scores[:, j] = np.bincount(codes, weights=xe[:, j], minlength=g)
    meat = scores.T @ scores
    factor = g / (g - 1) * (n - 1) / (n - k)
    cov = factor * (xtx_inv @ meat @ xtx_inv)
    return OLSFit(beta, cov, n, k, g - 1, "CR1", clusters=g)
