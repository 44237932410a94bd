"""Least squares and two-stage least squares on any design matrix, with robust covariances
kept as per-unit scores so that estimates from several regressions on the same people can
be combined (a stacked regression's joint covariance).

The arm-saturated models of the headline report have their own fast path; this module
serves the secondary analyses whose regressors are not saturated in the arm (a mediator
model, an outcome model with a mediator, an instrumental-variable model, two outcomes
side by side). Weights enter by whitening the rows (sqrt(w) X, sqrt(w) y).

Covariances (M = (X'WX)^-1, e the whitened residuals):
- least squares, no clusters: HC2, sum_i s_i s_i' with s_i = M x_i e_i / sqrt(1 - h_ii);
  t reference with N - K df;
- least squares, clusters: CR2 (Bell and McCaffrey 2002), s_g = M X_g' A_g e_g with
  A_g = (I - H_gg)^(-1/2) (symmetric root, pseudo-inverse of zero eigenvalues, as estimatr
  and clubSandwich); Bell-McCaffrey df for each contrast asked for (Imbens and Kolesar
  2016), G - 1 otherwise;
- two-stage least squares: HC1, s_i = (X^'X^)^-1 x^_i e_i sqrt(N/(N-K)), or CR1 with
  Stata's factor G/(G-1) (N-1)/(N-K): linearmodels' `IV2SLS(...).fit(cov_type="robust"
  | "clustered", debiased=True)`; t reference with N - K (G - 1 with clusters) df.
The joint covariance of two fits is sum over shared units of s_a s_b' (rows are people,
or clusters when clustered), so the covariance of a difference of effects across two
outcomes comes out of the same scores.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from experiments.analysis.cluster_robust import DegenerateDesign, bell_mccaffrey_df, inverse_sqrt
from experiments.analysis.dist import norm_isf, norm_sf, t_isf, t_sf


@dataclass(frozen=True)
class Contrast:
    """A linear combination of coefficients with its two-sided test of zero."""

    estimate: float
    std_error: float
    df: float
    statistic: float
    p_value: float
    ci_low: float
    ci_high: float

    @classmethod
    def of(cls, estimate: float, std_error: float, df: float, alpha: float) -> Contrast:
        """t(df) reference (df = inf: normal); NaN throughout without a standard error."""
        if not (math.isfinite(estimate) and math.isfinite(std_error)) or std_error <= 0:
            nan = math.nan
            return cls(estimate, std_error, df, nan, nan, nan, nan)
        z = estimate / std_error
        if math.isinf(df):
            p, q = 2 * norm_sf(abs(z)), norm_isf(alpha / 2)
        else:
            p, q = 2 * t_sf(abs(z), df), t_isf(alpha / 2, df)
        return cls(
            estimate, std_error, df, z, p, estimate - q * std_error, estimate + q * std_error
        )


@dataclass(frozen=True)
class LinearFit:
    """Coefficients, their robust covariance and the per-unit scores it is built from.

    `scores[u] @ scores[u]'` summed over units is `cov`; `units` names each score's unit
    (a row label, or a cluster label when clustered). `df` holds Bell-McCaffrey degrees
    of freedom for the contrasts given to the fit (keyed by their index), CR2 only.
    """

    beta: np.ndarray
    cov: np.ndarray
    scores: np.ndarray
    units: np.ndarray
    n: int
    k: int
    df_resid: float
    cov_type: str
    clusters: int | None = None
    df: dict[int, float] = field(default_factory=dict)

    @property
    def std_errors(self) -> np.ndarray:
        # a variance that rounding pushed a hair below zero is zero (reported as no SE)
        return np.sqrt(np.clip(np.diag(self.cov), 0.0, None))

    def contrast(self, c: np.ndarray, alpha: float = 0.05, df: float | None = None) -> Contrast:
        c = np.asarray(c, dtype=float)
        var = float(c @ self.cov @ c)
        se = math.sqrt(var) if var > 0 else math.nan
        return Contrast.of(float(c @ self.beta), se, self.df_resid if df is None else df, alpha)

    def coefficient(self, j: int, alpha: float = 0.05) -> Contrast:
        c = np.zeros(self.k)
        c[j] = 1.0
        return self.contrast(c, alpha, self.df.get(j))


def _whiten(
    X: np.ndarray, y: np.ndarray, weights: np.ndarray | None
) -> tuple[np.ndarray, np.ndarray]:
    X = np.asarray(X, dtype=float)
    y = np.asarray(y, dtype=float)
    if weights is None:
        return X, y
    w = np.asarray(weights, dtype=float)
    if np.any(~np.isfinite(w)) or np.any(w <= 0):
        raise DegenerateDesign("weights must be positive and finite")
    sw = np.sqrt(w)
    return X * sw[:, None], y * sw


def _bread(X: np.ndarray) -> np.ndarray:
    n, k = X.shape
    if n <= k:
        raise DegenerateDesign(f"{n} rows are too few for {k} coefficients")
    xtx = X.T @ X
    if np.linalg.matrix_rank(xtx) < k:
        raise DegenerateDesign("the design matrix is collinear (an empty or constant cell)")
    return np.linalg.inv(xtx)


def _units(units: np.ndarray | None, n: int) -> np.ndarray:
    return np.arange(n) if units is None else np.asarray(units)


def least_squares(
    X: np.ndarray,
    y: np.ndarray,
    weights: np.ndarray | None = None,
    clusters: np.ndarray | None = None,
    units: np.ndarray | None = None,
    df_for: Sequence[int] = (),
) -> LinearFit:
    """(Weighted) least squares with HC2, or CR2 when `clusters` are given.

    `units` labels the rows (default 0..n-1) so scores of fits on the same people line up;
    `df_for` lists coefficients whose Bell-McCaffrey df a CR2 fit should compute.
    """
    Xw, yw = _whiten(X, y, weights)
    n, k = Xw.shape
    M = _bread(Xw)
    beta = M @ (Xw.T @ yw)
    e = yw - Xw @ beta
    if clusters is None:
        h = ((Xw @ M) * Xw).sum(axis=1)
        if np.any(h >= 1 - 1e-10):
            raise DegenerateDesign(
                "a cell has a single observation (leverage 1): its variance cannot be estimated"
            )
        scores = (Xw * (e / np.sqrt(1.0 - h))[:, None]) @ M
        return LinearFit(beta, scores.T @ scores, scores, _units(units, n), n, k, n - k, "HC2")
    labels, codes = np.unique(np.asarray(clusters), return_inverse=True)
    G = len(labels)
    if G < 2:
        raise DegenerateDesign("cluster-robust errors need at least two clusters")
    scores, df = _cr2(Xw, e, M, codes, G, df_for)
    return LinearFit(beta, scores.T @ scores, scores, labels, n, k, G - 1, "CR2", G, df)


def _cluster_batches(codes: np.ndarray, G: int):
    """Rows of every cluster, grouped by cluster size: (cluster ids, rows as (G_m, m))."""
    order = np.argsort(codes, kind="stable")
    sizes = np.bincount(codes, minlength=G)
    starts = np.concatenate([[0], np.cumsum(sizes)[:-1]])
    for m in np.unique(sizes):
        ids = np.flatnonzero(sizes == m)
        rows = order[starts[ids][:, None] + np.arange(m)[None, :]]
        yield ids, rows


def _inverse_root(B: np.ndarray) -> np.ndarray:
    """(I - H_gg)^(-1/2) for a batch of symmetric matrices I - H_gg, pseudo-inverse root."""
    vals, vecs = np.linalg.eigh(B)
    inv_root = inverse_sqrt(vals)
    return (vecs * inv_root[:, None, :]) @ np.swapaxes(vecs, 1, 2)


def _cr2(
    X: np.ndarray, e: np.ndarray, M: np.ndarray, codes: np.ndarray, G: int, df_for: Sequence[int]
) -> tuple[np.ndarray, dict[int, float]]:
    k = X.shape[1]
    scores = np.empty((G, k))
    targets = list(df_for)
    C = np.zeros((k, len(targets)))
    C[targets, np.arange(len(targets))] = 1.0
    L = np.linalg.cholesky(M)
    D = np.zeros((G, len(targets)))
    R = np.zeros((G, k, len(targets)))
    for ids, rows in _cluster_batches(codes, G):
        Xg = X[rows]  # (G_m, m, k)
        H = Xg @ M @ np.swapaxes(Xg, 1, 2)
        A = _inverse_root(np.eye(rows.shape[1])[None] - H)
        Ae = (A @ e[rows][:, :, None])[:, :, 0]
        scores[ids] = np.einsum("gmk,gm->gk", Xg, Ae) @ M
        if targets:
            U = A @ (Xg @ (M @ C))  # (G_m, m, t): u_g = A_g X_g M c
            D[ids] = (U * U).sum(axis=1)
            R[ids] = L.T @ (np.swapaxes(Xg, 1, 2) @ U)
    df = {j: bell_mccaffrey_df(D[:, t], R[:, :, t]) for t, j in enumerate(targets)}
    return scores, df


def two_stage(
    y: np.ndarray,
    exog: np.ndarray,
    endog: np.ndarray,
    instruments: np.ndarray,
    weights: np.ndarray | None = None,
    clusters: np.ndarray | None = None,
    units: np.ndarray | None = None,
) -> LinearFit:
    """Two-stage least squares of y on [exog, endog] with instruments [exog, instruments].

    Coefficients come in the order exog then endog. HC1 covariance, or CR1 with clusters
    (linearmodels' debiased robust / clustered covariance).
    """
    exog = np.atleast_2d(np.asarray(exog, float).T).T
    endog = np.atleast_2d(np.asarray(endog, float).T).T
    instruments = np.atleast_2d(np.asarray(instruments, float).T).T
    if instruments.shape[1] < endog.shape[1]:
        raise DegenerateDesign("fewer instruments than endogenous regressors")
    X, yw = _whiten(np.hstack([exog, endog]), y, weights)
    Z, _ = _whiten(np.hstack([exog, instruments]), y, weights)
    n, k = X.shape
    Xhat = Z @ (_bread(Z) @ (Z.T @ X))
    M = _bread(Xhat)
    beta = np.linalg.solve(Xhat.T @ X, Xhat.T @ yw)
    e = yw - X @ beta
    raw = (Xhat * e[:, None]) @ M
    if clusters is None:
        scores = raw * math.sqrt(n / (n - k))
        return LinearFit(beta, scores.T @ scores, scores, _units(units, n), n, k, n - k, "HC1")
    labels, codes = np.unique(np.asarray(clusters), return_inverse=True)
    G = len(labels)
    if G < 2:
        raise DegenerateDesign("cluster-robust errors need at least two clusters")
    summed = np.zeros((G, k))
    np.add.at(summed, codes, raw)
    scores = summed * math.sqrt(G / (G - 1) * (n - 1) / (n - k))
    return LinearFit(beta, scores.T @ scores, scores, labels, n, k, G - 1, "CR1", G)


def cross_covariance(a: LinearFit, b: LinearFit) -> np.ndarray:
    """Covariance of fit a's coefficients with fit b's (k_a x k_b), from the scores of the
    units both fits share (same people, or same clusters)."""
    if (a.clusters is None) != (b.clusters is None):
        raise ValueError("both fits must be clustered, or neither")
    shared, ia, ib = np.intersect1d(a.units, b.units, assume_unique=True, return_indices=True)
    if len(shared) == 0:
        return np.zeros((a.k, b.k))
    return a.scores[ia].T @ b.scores[ib]
