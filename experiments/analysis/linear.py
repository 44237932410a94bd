"""Weighted least squares of the arm-saturated model, fitted one arm at a time, with HC2
and CR2 covariances, Bell-McCaffrey degrees of freedom and the HTZ Wald test.

Every estimator of the report is a linear combination of the coefficients of a model
saturated in the arm: each arm has its own cell intercepts (one per stratum, or per stratum
x level) and its own slopes on dense centred columns (covariates, a moderator). Such a
model is block-diagonal by arm, so it splits into one regression per arm with the same
coefficients, residuals and leverages as the full model (and, since clusters are whole
blocks of rows, the same CR2 adjustment matrices). Cell intercepts are handled by
within-cell (weighted) demeaning, so a million rows in fifty strata cost a few bincounts
and small dense solves, and the full model's design matrix is never built.

Coefficients are kept in the orthogonal form (cell means of the demeaned model, then
slopes); a *target* is a row over the coefficients of all arms, in the natural form:
cell intercepts at the centred columns' zero, then slopes. Variances:

- HC2: sum_i a_i^2 e_i^2 / (1 - h_ii), a the target's influence on each row;
- CR2 (Bell and McCaffrey 2002): sum_g (a_g' A_g e_g)^2, A_g = (I - H_gg)^(-1/2) by the
  symmetric square root, pseudo-inverse for zero eigenvalues (as estimatr and clubSandwich);
  weighted rows enter the whitened regression (working covariance W^-1);
- Bell-McCaffrey df of a target c: (tr G'G)^2 / tr((G'G)^2) with G'G = D - R R', D_gg =
  |u_g|^2, u_g = A_g X_g M c, R_g = L' X_g' u_g (L L' = M): the same as the n x G matrix
  G_g = (I - H)_{.g} A_g X_g M c of Imbens and Kolesar (2016), without building it;
- HTZ (Pustejovsky and Tipton 2018; clubSandwich `Wald_test(test = "HTZ")`): Hotelling's
  T^2 with the degrees of freedom that match the total variance of the CR2 estimate of the
  constraints' covariance under the working model.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from experiments.analysis.cluster_robust import (
    SINGULAR,
    DegenerateDesign,
    bell_mccaffrey_df,
    inverse_sqrt,
    trace_product,
)
from experiments.analysis.dist import f_sf


@dataclass(frozen=True)
class Block:
    """One arm's rows of the saturated model: `rows` index the outcome vector, `cell` is
    each row's cell (0..n_cells-1), `dense` its centred columns (n x p), `weight` its
    regression weight (None: 1)."""

    rows: np.ndarray
    cell: np.ndarray
    n_cells: int
    dense: np.ndarray
    weight: np.ndarray | None = None

    @property
    def k(self) -> int:
        return self.n_cells + self.dense.shape[1]


class _BlockFit:
    """The weighted regression of one block on its cell indicators and dense columns."""

    def __init__(self, block: Block, y: np.ndarray):
        self.block = block
        cell, C = block.cell, block.n_cells
        X = np.asarray(block.dense, dtype=float)
        yb = y[block.rows]
        w = np.ones(len(yb)) if block.weight is None else np.asarray(block.weight, float)
        self.w = w
        sw = np.bincount(cell, weights=w, minlength=C)
        if np.any(sw <= 0):
            raise DegenerateDesign("a cell has no rows in an arm")
        self.sw = sw
        ybar = np.bincount(cell, weights=w * yb, minlength=C) / sw
        p = X.shape[1]
        if p:
            xbar = (
                np.column_stack(
                    [np.bincount(cell, weights=w * X[:, j], minlength=C) for j in range(p)]
                )
                / sw[:, None]
            )
            Xd = X - xbar[cell]
            S = (Xd * w[:, None]).T @ Xd
            scale = np.sqrt(np.clip(np.diag(S), 1e-300, None))
            if np.linalg.matrix_rank(S / np.outer(scale, scale), tol=1e-10) < p:
                raise DegenerateDesign(
                    "the covariates are collinear (or constant) within the cells of an arm"
                )
            Sinv = np.linalg.inv(S)
            beta = Sinv @ (Xd * w[:, None]).T @ (yb - ybar[cell])
            fitted_d = Xd @ beta
        else:
            xbar = np.zeros((C, 0))
            Xd = X
            Sinv = np.zeros((0, 0))
            beta = np.zeros(0)
            fitted_d = 0.0
        self.xbar, self.Xd, self.Sinv = xbar, Xd, Sinv
        self.ybar = ybar  # coefficients of the orthogonal form
        self.beta = beta
        self.alpha = ybar - xbar @ beta  # cell intercepts at the dense columns' zero
        self.e = yb - ybar[cell] - fitted_d
        quad = np.einsum("ij,jk,ik->i", Xd, Sinv, Xd) if p else 0.0
        self.h = w * (1.0 / sw[cell] + quad)

    @property
    def theta(self) -> np.ndarray:
        return np.concatenate([self.alpha, self.beta])

    def influence(self, g: np.ndarray) -> np.ndarray:
        """a (n x T): target t's estimate is sum_i a_it y_i (g: k x T, natural form)."""
        C = self.block.n_cells
        ga, gb = g[:C], g[C:]
        a = ga[self.block.cell] / self.sw[self.block.cell, None]
        if gb.shape[0]:
            a = a + self.Xd @ (self.Sinv @ (gb - self.xbar.T @ ga))
        return a * self.w[:, None]


class Fit:
    """The saturated model over all blocks; targets are rows over `k` coefficients."""

    def __init__(self, y: np.ndarray, blocks: list[Block]):
        self.y = np.asarray(y, dtype=float)
        self.fits = [_BlockFit(b, self.y) for b in blocks]
        self.offsets = np.cumsum([0] + [b.k for b in blocks])
        self.k = int(self.offsets[-1])
        self.n = sum(len(b.rows) for b in blocks)

    @property
    def df_resid(self) -> int:
        return self.n - self.k

    @property
    def theta(self) -> np.ndarray:
        return np.concatenate([f.theta for f in self.fits])

    def _parts(self, targets: np.ndarray):
        G = np.atleast_2d(targets)
        for i, f in enumerate(self.fits):
            g = G[:, self.offsets[i] : self.offsets[i + 1]].T
            if np.any(g != 0):
                yield f, g

    def estimates(self, targets: np.ndarray) -> np.ndarray:
        return np.atleast_2d(targets) @ self.theta

    def hc2(self, targets: np.ndarray) -> np.ndarray:
        """HC2 covariance of the targets' estimates (T x T)."""
        T = np.atleast_2d(targets).shape[0]
        out = np.zeros((T, T))
        for f, g in self._parts(targets):
            if np.any(f.h >= 1 - SINGULAR):
                raise DegenerateDesign(
                    "a cell has a single observation (leverage 1): its variance cannot be estimated"
                )
            a = f.influence(g)
            s = a * (f.e / np.sqrt(1.0 - f.h))[:, None]
            out += s.T @ s
        return out

    def cr2(self, targets: np.ndarray, clusters: np.ndarray) -> CR2:
        """CR2 scores and the pieces of the Bell-McCaffrey df and the HTZ test."""
        return _cr2(self, np.atleast_2d(targets), clusters)


@dataclass(frozen=True)
class CR2:
    """Per cluster g and target t: the score s_gt = u_gt' e*_g, D_g = u_g' u_g (T x T), and
    R_t (G x k) with rows r_gt = L' X*_g' u_gt, so that G'G for targets s, t is
    diag(D_g[s, t]) - R_s R_t'."""

    scores: np.ndarray  # (G, T)
    D: np.ndarray  # (G, T, T)
    R: np.ndarray  # (T, G, k)

    @property
    def covariance(self) -> np.ndarray:
        return self.scores.T @ self.scores

    def df(self) -> np.ndarray:
        """Bell-McCaffrey degrees of freedom of each target."""
        T = self.scores.shape[1]
        return np.array([bell_mccaffrey_df(self.D[:, t, t], self.R[t]) for t in range(T)])

    def htz(self, estimates: np.ndarray) -> tuple[float, int, float, float]:
        """HTZ test that all targets are zero: (F, q, denominator df, p-value)."""
        q = self.scores.shape[1]
        V = self.covariance
        try:
            Q = float(estimates @ np.linalg.solve(V, estimates))
        except np.linalg.LinAlgError:
            return math.nan, q, math.nan, math.nan
        omega = np.einsum("gst->st", self.D) - np.einsum("sgk,tgk->st", self.R, self.R)
        vals, vecs = np.linalg.eigh(omega)
        if np.any(vals <= 0):
            return math.nan, q, math.nan, math.nan
        half = vecs @ np.diag(vals**-0.5) @ vecs.T  # Omega^(-1/2)
        D = np.einsum("si,gij,tj->gst", half, self.D, half)
        R = np.einsum("si,igk->sgk", half, self.R)
        total = 0.0
        for s in range(q):
            for t in range(q):
                total += trace_product(D[:, s, t], R[s], R[t], D[:, t, s], R[t], R[s])
                total += trace_product(D[:, s, s], R[s], R[s], D[:, t, t], R[t], R[t])
        nu = q * (q + 1) / total
        df2 = nu - q + 1
        if not df2 > 0:
            return math.nan, q, df2, math.nan
        F = df2 / (nu * q) * Q
        return F, q, df2, f_sf(F, q, df2)


def _cr2(fit: Fit, targets: np.ndarray, clusters: np.ndarray) -> CR2:
    _, codes = np.unique(np.asarray(clusters), return_inverse=True)
    n_g = int(codes.max()) + 1
    if n_g < 2:
        raise DegenerateDesign("cluster-robust errors need at least two clusters")
    T = targets.shape[0]
    scores = np.zeros((n_g, T))
    D = np.zeros((n_g, T, T))
    R = np.zeros((T, n_g, fit.k))
    for i, f in enumerate(fit.fits):
        g = targets[:, fit.offsets[i] : fit.offsets[i + 1]].T
        b = f.block
        C = b.n_cells
        sqrt_w = np.sqrt(f.w)
        a_star = f.influence(g) / sqrt_w[:, None]  # whitened influence X* M c
        e_star = f.e * sqrt_w
        if not f.Sinv.size:
            _cell_means_cr2(f, codes, a_star, e_star, fit.offsets[i], scores, D, R)
            continue
        L = np.linalg.cholesky(f.Sinv) if f.Sinv.size else np.zeros((0, 0))
        XL = f.Xd @ L if L.size else np.zeros((len(b.rows), 0))
        cl = codes[b.rows]
        order = np.argsort(cl, kind="stable")
        bounds = np.flatnonzero(np.diff(cl[order])) + 1
        for idx in np.split(order, bounds):
            if not len(idx):
                continue
            cluster = int(cl[idx[0]])
            cells, local = np.unique(b.cell[idx], return_inverse=True)
            onehot = np.zeros((len(idx), len(cells)))
            onehot[np.arange(len(idx)), local] = 1.0 / np.sqrt(f.sw[cells])[local]
            F = np.hstack([onehot, XL[idx]]) * sqrt_w[idx, None]
            U, sv, _ = np.linalg.svd(F, full_matrices=False)
            ev = 1.0 - sv * sv  # eigenvalues of I - H_gg in U's directions
            shrink = inverse_sqrt(ev)
            u = a_star[idx] + U @ ((shrink - 1.0)[:, None] * (U.T @ a_star[idx]))
            scores[cluster] += u.T @ e_star[idx]
            D[cluster] += u.T @ u
            r = F.T @ u  # (cells touched + p) x T
            cols = np.concatenate([cells, C + np.arange(XL.shape[1])]) + fit.offsets[i]
            R[:, cluster, cols] += r.T
    return CR2(scores, D, R)


def _cell_means_cr2(f: _BlockFit, codes, a_star, e_star, offset, scores, D, R) -> None:
    """CR2 pieces of a block without dense columns, for all clusters at once: H_gg is then
    block-diagonal by cell, each block v v' of rank one (v_i = sqrt(w_i / sw_cell)), so
    A_g = I + (1 / sqrt(1 - |v|^2) - 1) v v' / |v|^2 on each (cluster, cell) group."""
    b = f.block
    n_g = scores.shape[0]
    cl = codes[b.rows]
    group = np.unique(cl * b.n_cells + b.cell, return_inverse=True)[1]
    G = int(group.max()) + 1
    v = np.sqrt(f.w / f.sw[b.cell])
    vv = np.bincount(group, weights=v * v, minlength=G)
    ev = 1.0 - vv
    factor = inverse_sqrt(ev) - 1.0
    T = a_star.shape[1]
    va = np.column_stack(
        [np.bincount(group, weights=v * a_star[:, t], minlength=G) for t in range(T)]
    )
    u = a_star + (factor / vv)[group, None] * v[:, None] * va[group]
    group_cluster = np.zeros(G, dtype=np.intp)
    group_cluster[group] = cl
    group_cell = np.zeros(G, dtype=np.intp)
    group_cell[group] = b.cell
    for t in range(T):
        scores[:, t] += np.bincount(cl, weights=u[:, t] * e_star, minlength=n_g)
        for s in range(t, T):
            uu = np.bincount(cl, weights=u[:, t] * u[:, s], minlength=n_g)
            D[:, t, s] += uu
            if s != t:
                D[:, s, t] += uu
        r = np.bincount(group, weights=v * u[:, t], minlength=G)
        np.add.at(R[t], (group_cluster, offset + group_cell), r)
