"""General least squares and 2SLS with robust covariances, against statsmodels, linearmodels
and a test-side CR2 written from Bell and McCaffrey (2002) / Imbens and Kolesar (2016)."""

from __future__ import annotations

import numpy as np
import pytest
import statsmodels.api as sm
from linearmodels.iv import IV2SLS

from experiments.analysis.sandwich import (
    DegenerateDesign,
    cross_covariance,
    least_squares,
    two_stage,
)


def _data(n: int = 240, seed: int = 1):
    rng = np.random.default_rng(seed)
    t = (rng.random(n) < 0.5).astype(float)
    x = rng.normal(size=n)
    X = np.column_stack([np.ones(n), t, x, t * x])
    y = X @ [1.0, 0.5, 0.3, -0.2] + rng.normal(size=n) * (1 + t)
    clusters = np.repeat(np.arange(40), rng.integers(2, 10, 40))[:n]
    clusters = np.concatenate([clusters, np.full(n - len(clusters), 99)])
    return X, y, rng.uniform(0.5, 2.0, n), clusters


def _cr2_by_hand(X, y, w, clusters):
    """CR2 with full n x n matrices and the Bell-McCaffrey df of every coefficient from the
    n x G matrix G_g = (I - H)_{.g} A_g X_g M c (Imbens and Kolesar 2016, eq. 8)."""
    sw = np.sqrt(w)
    Xw, yw = X * sw[:, None], y * sw
    M = np.linalg.inv(Xw.T @ Xw)
    e = yw - Xw @ (M @ Xw.T @ yw)
    H = Xw @ M @ Xw.T
    IH = np.eye(len(y)) - H
    meat = np.zeros((X.shape[1], X.shape[1]))
    A = {}
    for g in np.unique(clusters):
        idx = np.flatnonzero(clusters == g)
        vals, vecs = np.linalg.eigh(IH[np.ix_(idx, idx)])
        A[g] = vecs @ np.diag(1 / np.sqrt(vals)) @ vecs.T
        s = Xw[idx].T @ A[g] @ e[idx]
        meat += np.outer(s, s)
    cov = M @ meat @ M
    dfs = []
    for j in range(X.shape[1]):
        c = np.zeros(X.shape[1])
        c[j] = 1
        cols = []
        for g in np.unique(clusters):
            idx = np.flatnonzero(clusters == g)
            cols.append(IH[:, idx] @ A[g] @ Xw[idx] @ M @ c)
        G = np.column_stack(cols)
        GG = G.T @ G
        dfs.append(np.trace(GG) ** 2 / np.trace(GG @ GG))
    return cov, dfs


def test_least_squares_is_statsmodels_hc2_weighted_or_not():
    X, y, w, _ = _data()
    for weights in (None, w):
        fit = least_squares(X, y, weights)
        ref = (sm.OLS(y, X) if weights is None else sm.WLS(y, X, weights=w)).fit(cov_type="HC2")
        np.testing.assert_allclose(fit.beta, ref.params, rtol=0, atol=1e-10)
        np.testing.assert_allclose(fit.cov, ref.cov_params(), rtol=0, atol=1e-12)
        assert fit.df_resid == len(y) - X.shape[1]
        c = fit.coefficient(1)
        assert c.std_error == pytest.approx(ref.bse[1], abs=1e-12)


def test_cr2_and_bell_mccaffrey_df_match_the_definitions():
    X, y, w, clusters = _data()
    for weights in (None, w):
        fit = least_squares(X, y, weights, clusters, df_for=range(X.shape[1]))
        cov, dfs = _cr2_by_hand(X, y, np.ones(len(y)) if weights is None else w, clusters)
        np.testing.assert_allclose(fit.cov, cov, rtol=1e-9, atol=1e-13)
        for j, df in enumerate(dfs):
            assert fit.df[j] == pytest.approx(df, rel=1e-8)
        assert fit.clusters == len(np.unique(clusters)) and fit.cov_type == "CR2"
        # df well below G - 1 for unequal clusters, and what coefficient() uses
        assert fit.coefficient(1).df == pytest.approx(dfs[1], rel=1e-8)
        assert dfs[1] < fit.clusters - 1


@pytest.mark.parametrize("clustered", [False, True])
@pytest.mark.parametrize("weighted", [False, True])
def test_two_stage_is_linearmodels_iv2sls(clustered, weighted):
    rng = np.random.default_rng(4)
    n = 500
    z = (rng.random(n) < 0.5).astype(float)
    u = rng.normal(size=n)
    d = z * (rng.random(n) < 0.4 + 0.2 * (u > 0))
    x = rng.normal(size=n)
    y = 1 + 0.7 * d + 0.3 * x + u
    exog = np.column_stack([np.ones(n), x])
    w = rng.uniform(0.5, 2, n) if weighted else None
    clusters = rng.integers(0, 35, n) if clustered else None
    fit = two_stage(y, exog, d, z, w, clusters)
    kw = {"clusters": clusters} if clustered else {}
    ref = IV2SLS(y, exog, d[:, None], z[:, None], weights=w).fit(
        cov_type="clustered" if clustered else "robust", debiased=True, **kw
    )
    np.testing.assert_allclose(fit.beta, ref.params.to_numpy(), rtol=0, atol=1e-10)
    np.testing.assert_allclose(fit.cov, ref.cov.to_numpy(), rtol=0, atol=1e-12)


def test_stacked_covariance_gives_the_variance_of_a_difference():
    """With the same regressors for both outcomes, b1 - b2 is the regression of y1 - y2,
    whose own HC2 (or CR2) variance must equal v1 + v2 - 2 cov from the stacked scores."""
    X, y1, _, clusters = _data()
    y2 = 0.5 * y1 + np.random.default_rng(9).normal(size=len(y1))
    for cl in (None, clusters):
        a, b = least_squares(X, y1, clusters=cl), least_squares(X, y2, clusters=cl)
        d = least_squares(X, y1 - y2, clusters=cl)
        cross = cross_covariance(a, b)
        var = np.diag(a.cov) + np.diag(b.cov) - 2 * np.diag(cross)
        np.testing.assert_allclose(var, np.diag(d.cov), rtol=1e-10)
    ref = sm.OLS(y1 - y2, X).fit(cov_type="HC2")
    a, b = least_squares(X, y1), least_squares(X, y2)
    var = np.diag(a.cov) + np.diag(b.cov) - 2 * np.diag(cross_covariance(a, b))
    np.testing.assert_allclose(var, np.diag(ref.cov_params()), rtol=1e-10)


def test_stacked_covariance_uses_only_the_people_both_fits_share():
    X, y, _, _ = _data()
    a = least_squares(X, y)
    b = least_squares(X[:100], y[:100], units=np.arange(100))
    cross = cross_covariance(a, b)
    np.testing.assert_allclose(cross, a.scores[:100].T @ b.scores)
    with pytest.raises(ValueError, match="both fits must be clustered"):
        cross_covariance(a, least_squares(X, y, clusters=np.arange(len(y)) % 7))


def test_degenerate_designs_are_named():
    X, y, _, _ = _data(20)
    with pytest.raises(DegenerateDesign, match="collinear"):
        least_squares(np.column_stack([X, X[:, 1]]), y)
    with pytest.raises(DegenerateDesign, match="too few"):
        least_squares(X[:3], y[:3])
    with pytest.raises(DegenerateDesign, match="two clusters"):
        least_squares(X, y, clusters=np.zeros(len(y)))
    with pytest.raises(DegenerateDesign, match="weights"):
        least_squares(X, y, weights=-np.ones(len(y)))
    with pytest.raises(DegenerateDesign, match="fewer instruments"):
        two_stage(y, X[:, :1], X[:, 1:3], X[:, 3], None)
