"""Cluster-robust inference against the published formulas, written out here by brute force
on the full design matrix (n x n hat matrix, explicit n x G matrices):

- CR2, Bell and McCaffrey (2002): V = M [sum_g X_g' A_g e_g e_g' A_g X_g] M,
  A_g = (I - H_gg)^(-1/2), symmetric square root, zero eigenvalues left out;
- their degrees of freedom for a contrast c: G_g = (I - H)_{.g} A_g X_g M c,
  df = (tr G'G)^2 / tr((G'G)^2) (Imbens and Kolesar 2016);
- the HTZ test of q constraints, Pustejovsky and Tipton (2018): P_st = G_s' G_t,
  Omega = [tr P_st], B = Omega^(-1/2) P Omega^(-1/2), nu = q (q + 1) / sum_st
  (tr(B_st B_ts) + tr(B_ss B_tt)), F = (nu - q + 1) / (nu q) Q on (q, nu - q + 1) df.

Point estimates are checked against statsmodels OLS of the same specification.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import statsmodels.formula.api as smf
from scipy import stats

from experiments.analysis import analyze
from experiments.bands import BandSpec

TOL = dict(rel=1e-8, abs=1e-10)


def inv_sqrt_psd(m: np.ndarray) -> np.ndarray:
    vals, vecs = np.linalg.eigh(m)
    inv = np.where(vals > 1e-12, 1 / np.sqrt(np.clip(vals, 1e-300, None)), 0.0)
    return vecs @ np.diag(inv) @ vecs.T


class CR2Reference:
    """Bell-McCaffrey CR2 on an explicit design matrix (weights: the whitened regression)."""

    def __init__(self, X, y, clusters, w=None):
        w = np.ones(len(y)) if w is None else np.asarray(w, float)
        sw = np.sqrt(w)
        self.X = X * sw[:, None]
        self.y = y * sw
        self.M = np.linalg.inv(self.X.T @ self.X)
        self.beta = self.M @ self.X.T @ self.y
        self.e = self.y - self.X @ self.beta
        self.H = self.X @ self.M @ self.X.T
        self.groups = [np.flatnonzero(clusters == g) for g in np.unique(clusters)]
        self.A = [inv_sqrt_psd(np.eye(len(g)) - self.H[np.ix_(g, g)]) for g in self.groups]
        meat = np.zeros_like(self.M)
        for g, A in zip(self.groups, self.A, strict=True):
            v = self.X[g].T @ A @ self.e[g]
            meat += np.outer(v, v)
        self.V = self.M @ meat @ self.M

    def G(self, c: np.ndarray) -> np.ndarray:
        """The n x G matrix of Bell and McCaffrey's df for contrast c."""
        n = len(self.y)
        IH = np.eye(n) - self.H
        cols = [
            IH[:, g] @ A @ self.X[g] @ self.M @ c for g, A in zip(self.groups, self.A, strict=True)
        ]
        return np.column_stack(cols)

    def df(self, c: np.ndarray) -> float:
        GtG = self.G(c).T @ self.G(c)
        return np.trace(GtG) ** 2 / np.trace(GtG @ GtG)

    def htz(self, C: np.ndarray) -> tuple[float, float, float]:
        q = C.shape[0]
        Gs = [self.G(c) for c in C]
        P = [[Gs[s].T @ Gs[t] for t in range(q)] for s in range(q)]
        omega = np.array([[np.trace(P[s][t]) for t in range(q)] for s in range(q)])
        half = inv_sqrt_psd(omega)
        B = [
            [
                sum(half[s, i] * half[t, j] * P[i][j] for i in range(q) for j in range(q))
                for t in range(q)
            ]
            for s in range(q)
        ]
        total = sum(
            np.trace(B[s][t] @ B[t][s]) + np.trace(B[s][s] @ B[t][t])
            for s in range(q)
            for t in range(q)
        )
        nu = q * (q + 1) / total
        Cb = C @ self.beta
        Q = Cb @ np.linalg.solve(C @ self.V @ C.T, Cb)
        F = (nu - q + 1) / (nu * q) * Q
        return F, nu - q + 1, stats.f.sf(F, q, nu - q + 1)


def clustered_trial(n_clusters: int, n_arms: int = 2, seed: int = 0, strata: bool = False):
    rng = np.random.default_rng(seed)
    sizes = rng.integers(2, 14, n_clusters)  # unequal sizes
    cl = np.repeat(np.arange(n_clusters), sizes)
    names = np.array(["control"] + [f"arm{i}" for i in range(1, n_arms)])
    arm_of = np.resize(np.arange(n_arms), n_clusters)
    rng.shuffle(arm_of)
    df = pd.DataFrame({"cluster": cl, "arm": names[arm_of[cl]]})
    df["age"] = rng.integers(18, 85, len(df)).astype(float)
    df["x"] = rng.normal(0, 1, len(df))
    df["stratum"] = np.where(np.arange(n_clusters) % 2 == 0, "a", "b")[cl] if strata else "a"
    shock = rng.normal(0, 0.5, n_clusters)[cl]
    df["y"] = 0.2 * (df.arm != "control") + 0.3 * df.x + shock + rng.normal(0, 1, len(df))
    return df


def arm_term(a: str) -> str:
    return f"C(arm, Treatment('control'))[T.{a}]"


@pytest.mark.parametrize("n_clusters, n_arms", [(10, 2), (13, 3), (20, 2)])
def test_cr2_and_bell_mccaffrey_df_equal_the_published_formulas(n_clusters, n_arms):
    df = clustered_trial(n_clusters, n_arms, seed=n_clusters)
    res = analyze(df, arm="arm", control="control", outcome="y", cluster="cluster")
    fit = smf.ols("y ~ C(arm, Treatment('control'))", df).fit()
    ref = CR2Reference(fit.model.exog, df.y.to_numpy(), df.cluster.to_numpy())
    names = list(fit.params.index)
    for e in res.effects:
        c = np.zeros(len(names))
        c[names.index(arm_term(e.arm))] = 1
        assert e.method == "cluster_robust"
        assert e.estimate == pytest.approx(fit.params[arm_term(e.arm)], **TOL)
        assert e.std_error == pytest.approx(np.sqrt(c @ ref.V @ c), **TOL)
        assert e.df == pytest.approx(ref.df(c), rel=1e-8)
        assert e.df < n_clusters - 1  # unequal clusters: far below G - 1
        assert "CR2" in e.reference and "Bell-McCaffrey" in e.reference
        assert e.p_value == pytest.approx(2 * stats.t.sf(abs(e.statistic), ref.df(c)), rel=1e-8)


def test_lin_with_clusters_and_strata_equals_the_reference():
    df = clustered_trial(16, 2, seed=5, strata=True)
    res = analyze(
        df,
        arm="arm",
        control="control",
        outcome="y",
        cluster="cluster",
        block="stratum",
        covariates=["x"],
    )
    df["x_c"] = df.x - df.x.mean()
    df["b_c"] = (df.stratum == "b") - (df.stratum == "b").mean()
    fit = smf.ols("y ~ C(arm, Treatment('control')) * (b_c + x_c)", df).fit()
    ref = CR2Reference(fit.model.exog, df.y.to_numpy(), df.cluster.to_numpy())
    c = (np.array(fit.params.index) == arm_term("arm1")).astype(float)
    (e,) = res.adjusted_effects
    assert e.method == "lin_cluster_robust"
    assert e.estimate == pytest.approx(fit.params[arm_term("arm1")], **TOL)
    assert e.std_error == pytest.approx(np.sqrt(c @ ref.V @ c), **TOL)
    assert e.df == pytest.approx(ref.df(c), rel=1e-8)
    (h,) = res.effects
    fit = smf.ols("y ~ C(arm, Treatment('control')) * b_c", df).fit()
    ref = CR2Reference(fit.model.exog, df.y.to_numpy(), df.cluster.to_numpy())
    c = (np.array(fit.params.index) == arm_term("arm1")).astype(float)
    assert h.estimate == pytest.approx(fit.params[arm_term("arm1")], **TOL)
    assert h.std_error == pytest.approx(np.sqrt(c @ ref.V @ c), **TOL)


def test_weighted_cr2_is_the_whitened_regression():
    df = clustered_trial(12, 2, seed=8)
    rng = np.random.default_rng(8)
    p_cluster = rng.choice([0.3, 0.5, 0.7], 12)
    p_t = p_cluster[df.cluster]
    df["p"] = np.where(df.arm == "control", 1 - p_t, p_t)
    res = analyze(df, arm="arm", control="control", outcome="y", cluster="cluster", probability="p")
    fit = smf.wls("y ~ C(arm, Treatment('control'))", df, weights=1 / df.p).fit()
    ref = CR2Reference(fit.model.exog, df.y.to_numpy(), df.cluster.to_numpy(), 1 / df.p)
    c = (np.array(fit.params.index) == arm_term("arm1")).astype(float)
    (e,) = res.effects
    assert e.estimate == pytest.approx(fit.params[arm_term("arm1")], **TOL)
    assert e.std_error == pytest.approx(np.sqrt(c @ ref.V @ c), **TOL)
    assert e.df == pytest.approx(ref.df(c), rel=1e-8)


@pytest.mark.parametrize("n_arms", [2, 3])
def test_clustered_subgroups_cr2_and_htz_equal_the_published_formulas(n_arms):
    df = clustered_trial(14, n_arms, seed=20 + n_arms)
    spec = BandSpec("age", (35.0, 55.0))
    res = analyze(
        df, arm="arm", control="control", outcome="y", moderators=[spec], cluster="cluster"
    )
    df["band"] = spec.assign(df["age"])
    fit = smf.ols("y ~ C(arm, Treatment('control')) * C(band, Treatment('<35'))", df).fit()
    ref = CR2Reference(fit.model.exog, df.y.to_numpy(), df.cluster.to_numpy())
    names = list(fit.params.index)

    def inter(arm, level):
        return names.index(f"{arm_term(arm)}:C(band, Treatment('<35'))[T.{level}]")

    for s in res.subgroups:
        c = np.zeros(len(names))
        c[names.index(arm_term(s.arm))] = 1
        if s.level != "<35":
            c[inter(s.arm, s.level)] = 1
        assert s.estimate == pytest.approx(c @ fit.params.to_numpy(), **TOL)
        assert s.std_error == pytest.approx(np.sqrt(c @ ref.V @ c), **TOL)
        assert s.df == pytest.approx(ref.df(c), rel=1e-8)
    assert len(res.interactions) == n_arms - 1
    for t in res.interactions:
        C = np.zeros((2, len(names)))
        C[0, inter(t.arm, "35-54")] = 1
        C[1, inter(t.arm, "55+")] = 1
        F, df2, p = ref.htz(C)
        assert t.test == "htz_f" and t.df == 2
        assert t.statistic == pytest.approx(F, rel=1e-8)
        assert t.df_denominator == pytest.approx(df2, rel=1e-8)
        assert t.p_value == pytest.approx(p, rel=1e-7)


def test_clustered_slope_equals_the_reference():
    df = clustered_trial(18, 2, seed=31)
    res = analyze(
        df,
        arm="arm",
        control="control",
        outcome="y",
        cluster="cluster",
        moderators=[BandSpec("age", (35.0, 55.0))],
    )
    df["age_c"] = df.age - df.age.mean()
    fit = smf.ols("y ~ C(arm, Treatment('control')) * age_c", df).fit()
    ref = CR2Reference(fit.model.exog, df.y.to_numpy(), df.cluster.to_numpy())
    name = f"{arm_term('arm1')}:age_c"
    c = (np.array(fit.params.index) == name).astype(float)
    (s,) = res.slopes
    assert s.estimate == pytest.approx(fit.params[name], **TOL)
    assert s.std_error == pytest.approx(np.sqrt(c @ ref.V @ c), **TOL)
    assert s.df == pytest.approx(ref.df(c), rel=1e-8)


def test_the_cluster_warning_offers_randomization_inference_under_20_clusters():
    df = clustered_trial(12, 2, seed=3)
    res = analyze(df, arm="arm", control="control", outcome="y", cluster="cluster")
    (w,) = [w for w in res.warnings if w.code == "clusters"]
    assert "12 clusters" in w.message and "CR2" in w.message
    assert "--randomization-inference" in w.message
    df = clustered_trial(40, 2, seed=3)
    res = analyze(df, arm="arm", control="control", outcome="y", cluster="cluster")
    (w,) = [w for w in res.warnings if w.code == "clusters"]
    assert "randomization inference" not in w.message
