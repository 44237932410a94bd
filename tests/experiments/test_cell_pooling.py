"""Age x self-efficacy cells: raw effects against statsmodels (OLS HC2, WLS) and test-side
blocked formulas; the empirical-Bayes pooling against metafor's published BLUPs and a
test-side quadrature; the omnibus test against statsmodels' Wald test."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import statsmodels.formula.api as smf
from scipy import integrate, optimize, stats

from experiments.analysis.cell_pooling import (
    CellData,
    CellInputError,
    arm_cell_means,
    cell_table,
    omnibus_wald,
    pool_cells,
)
from experiments.analysis.empirical_bayes import PoolingError, pool, posterior_on_grid
from experiments.bands import DEFAULT_AGE_BANDS as AGE
from experiments.bands import DEFAULT_SELF_EFFICACY_BANDS as SE
from experiments.bands import BandSpec

FIXTURES = Path(__file__).parent / "fixtures"
TOL = dict(rel=1e-9, abs=1e-12)


def make_frame(n=5400, arms=("control", "peer", "efficacy"), seed=3, effects=(0.0, 0.05, 0.02)):
    rng = np.random.default_rng(seed)
    age = rng.integers(18, 86, n).astype(float)
    se = np.round(np.clip(rng.normal(3, 0.9, n), 1, 5), 2)
    arm = rng.integers(0, len(arms), n)
    p = 0.1 + np.asarray(effects)[arm] * (1 + (age < 35)) + 0.02 * (se - 3)
    y = (rng.random(n) < np.clip(p, 0.01, 0.99)).astype(float)
    return pd.DataFrame(
        {"arm": np.asarray(arms)[arm], "joined": y, "age": age, "self_efficacy": se}
    )


def cell_of(frame):
    return pd.Series(
        AGE.assign(frame["age"]).astype(str) + "|" + SE.assign(frame["self_efficacy"]).astype(str),
        index=frame.index,
    )


def means_of(frame, strata=None, probability=None):
    arms = ["control", "peer", "efficacy"]
    codes = pd.Categorical(frame["arm"], categories=arms).codes
    data = CellData(
        frame["joined"].to_numpy(float),
        np.asarray(codes, np.intp),
        tuple(arms),
        frame["age"].to_numpy(float),
        frame["self_efficacy"].to_numpy(float),
        AGE,
        SE,
        None if strata is None else frame[strata].to_numpy(),
        None if probability is None else frame[probability].to_numpy(float),
    )
    return arm_cell_means(data)


# --- raw cell effects ----------------------------------------------------------------------


def test_raw_cells_equal_ols_hc2_within_each_cell():
    frame = make_frame()
    means = means_of(frame)
    est, se = means.effects()
    cells = cell_of(frame)
    for c, levels in enumerate(means.cells):
        sub = frame[cells == f"{levels['age']}|{levels['self_efficacy']}"]
        fit = smf.ols("joined ~ C(arm, Treatment('control'))", sub).fit(cov_type="HC2")
        names = {a: f"C(arm, Treatment('control'))[T.{a}]" for a in ("peer", "efficacy")}
        for a, arm in enumerate(("peer", "efficacy")):
            assert est[a, c] == pytest.approx(fit.params[names[arm]], **TOL)
            assert se[a, c] == pytest.approx(fit.bse[names[arm]], **TOL)
        # two arms of one cell share its control mean: their covariance is its variance
        cov = fit.cov_params().loc[names["peer"], names["efficacy"]]
        assert means.variance[0, c] == pytest.approx(cov, **TOL)
        assert means.x[c, 0] == pytest.approx(sub["age"].mean())
        assert means.n[:, c].sum() == len(sub)


def test_raw_cells_within_strata_are_the_blocked_difference():
    frame = make_frame(seed=4)
    frame["stratum"] = np.where(frame["age"] % 2 == 0, "even", "odd")
    means = means_of(frame, strata="stratum")
    est, se = means.effects()
    cells = cell_of(frame)
    for c, levels in enumerate(means.cells):
        sub = frame[cells == f"{levels['age']}|{levels['self_efficacy']}"]
        tau = var = 0.0
        for _, block in sub.groupby("stratum"):
            share = len(block) / len(sub)
            t, k = block[block.arm == "peer"].joined, block[block.arm == "control"].joined
            tau += share * (t.mean() - k.mean())
            var += share**2 * (t.var() / len(t) + k.var() / len(k))
        assert est[0, c] == pytest.approx(tau, **TOL)
        assert se[0, c] == pytest.approx(math.sqrt(var), **TOL)


def test_recorded_probabilities_give_the_weighted_difference():
    frame = make_frame(seed=5)
    rng = np.random.default_rng(0)
    frame["probability"] = rng.choice([0.2, 0.4], len(frame))
    means = means_of(frame, probability="probability")
    est, se = means.effects()
    cells = cell_of(frame)
    levels = means.cells[4]
    sub = frame[cells == f"{levels['age']}|{levels['self_efficacy']}"]
    sub = sub[sub.arm.isin(["control", "peer"])]
    w = 1 / sub["probability"]
    fit = smf.wls("joined ~ C(arm, Treatment('control'))", sub, weights=w).fit(cov_type="HC2")
    assert est[0, 4] == pytest.approx(fit.params.iloc[1], **TOL)
    assert se[0, 4] == pytest.approx(fit.bse.iloc[1], **TOL)
    # equal probabilities: the weighted estimate is the difference in means, Neyman SE
    frame["probability"] = 1 / 3
    same = means_of(frame, probability="probability").effects()
    plain = means_of(frame).effects()
    np.testing.assert_allclose(same, plain, rtol=1e-10)


def test_a_short_block_is_pooled_with_the_cells_other_short_blocks():
    frame = make_frame(seed=6)
    frame["stratum"] = "main"
    cells = cell_of(frame)
    target = cells == "18-34|middle"
    rows = frame.index[target]
    # two tiny blocks (one control each, one with one peer) and a large one
    frame.loc[rows[frame.loc[rows, "arm"].eq("control")][:1], "stratum"] = "tiny1"
    frame.loc[rows[frame.loc[rows, "arm"].eq("control")][1:2], "stratum"] = "tiny2"
    frame.loc[rows[frame.loc[rows, "arm"].eq("peer")][:1], "stratum"] = "tiny2"
    means = means_of(frame, strata="stratum")
    merged = frame.copy()
    merged.loc[merged.stratum.str.startswith("tiny"), "stratum"] = "tiny"
    # still short after pooling (one peer, two controls, no efficacy): joins the large block
    merged.loc[merged.stratum == "tiny", "stratum"] = "main"
    np.testing.assert_allclose(means.effects(), means_of(merged, strata="stratum").effects())
    assert np.isfinite(means.effects()[0]).all()


# --- the pooling model ---------------------------------------------------------------------


def test_given_tau2_the_posterior_is_metafors_blup():
    d = pd.read_csv(FIXTURES / "dat_raudenbush1985.csv", comment="#")
    y, S, X = d.yi.to_numpy(), np.diag(d.vi.to_numpy()), np.ones((19, 1))
    pooled = pool(y, S, X)
    post = posterior_on_grid(y, S, X, [pooled.tau2])
    sd = np.sqrt(np.diag(post.cov[0]))
    # metafor's tests (test_analysis_example_raudenbush1985.r): blup(rma(yi, vi))
    pred = [
        0.0543,
        0.1006,
        -0.0064,
        0.2144,
        0.1051,
        -0.0082,
        0.0174,
        -0.0293,
        0.1604,
        0.2485,
        0.1618,
        0.1102,
        0.0646,
        0.1105,
        -0.0288,
        0.0258,
        0.1905,
        0.0744,
        0.0248,
    ]
    lower = [-0.1324, -0.1033, -0.2228, -0.0533, -0.1622, -0.1737, -0.1481, -0.2689, -0.0543,
             0, -0.097, -0.1303, -0.192, -0.1463, -0.2405, -0.1906, -0.0076, -0.0808, -0.1954]  # fmt: skip
    np.testing.assert_allclose(post.mean[0], pred, atol=1.5e-4)
    np.testing.assert_allclose(post.mean[0] - stats.norm.ppf(0.975) * sd, lower, atol=1.5e-4)
    assert pooled.tau2 == pytest.approx(0.0188, abs=5e-5)


def restricted_loglik(d, S, X, tau2):
    """Written from the formula with plain inverses (no rotation)."""
    V = S + tau2 * np.eye(len(d))
    Vi = np.linalg.inv(V)
    XtViX = X.T @ Vi @ X
    beta = np.linalg.solve(XtViX, X.T @ Vi @ d)
    r = d - X @ beta
    return -0.5 * (np.linalg.slogdet(V)[1] + np.linalg.slogdet(XtViX)[1] + r @ Vi @ r)


def conditional(d, S, X, tau2):
    V = S + tau2 * np.eye(len(d))
    Vi = np.linalg.inv(V)
    P = Vi - Vi @ X @ np.linalg.solve(X.T @ Vi @ X, X.T @ Vi)
    return d - S @ P @ d, S - S @ P @ S


@pytest.fixture(scope="module")
def two_arm_cells():
    means = means_of(make_frame(n=2700, seed=8))
    table = pool_cells(means)
    return means, table


def stacked(table):
    means = table.means
    est, _ = means.effects()
    idx = table.index
    d = np.array([est[a, c] for a, c in idx])
    S = np.array(
        [
            [
                (means.variance[0, c] if c == c2 else 0.0)
                + (means.variance[a + 1, c] if (a, c) == (b, c2) else 0.0)
                for b, c2 in idx
            ]
            for a, c in idx
        ]
    )
    centre = np.average(means.x, axis=0, weights=means.n.sum(axis=0))
    X = np.zeros((len(idx), 6))
    for i, (a, c) in enumerate(idx):
        X[i, 3 * a : 3 * a + 3] = (1, *(means.x[c] - centre))
    return d, S, X


def test_pooled_cells_equal_a_test_side_quadrature(two_arm_cells):
    _, table = two_arm_cells
    d, S, X = stacked(table)
    assert len(table.index) == len(table.cells) == 18
    assert not np.allclose(S, np.diag(np.diag(S)))  # the shared control correlates arms

    # tau^2 by REML: maximise the test-side restricted likelihood
    res = optimize.minimize_scalar(
        lambda t: -restricted_loglik(d, S, X, t), bounds=(0, 1), method="bounded",
        options={"xatol": 1e-14},
    )  # fmt: skip
    tau2 = 0.0 if restricted_loglik(d, S, X, 0) >= -res.fun else res.x
    assert table.tau2 == pytest.approx(tau2, rel=1e-5, abs=1e-9)

    # posterior moments under a flat prior on tau: density in tau^2 is L_R / tau
    top = restricted_loglik(d, S, X, tau2)

    def density(t2):
        return math.exp(restricted_loglik(d, S, X, t2) - top) / math.sqrt(t2)

    upper = 200 * np.mean(np.diag(S))
    opts = dict(limit=400, epsabs=0, epsrel=1e-10, points=[1e-6, 1e-5, 1e-4, 1e-3])
    total = integrate.quad(density, 0, upper, **opts)[0]

    def moment(i, second):
        def f(t):
            mean, cov = conditional(d, S, X, t)
            return density(t) * (cov[i, i] + mean[i] ** 2 if second else mean[i])

        return integrate.quad(f, 0, upper, **opts)[0] / total

    for i in (0, 5, 13):
        mean, second = moment(i, False), moment(i, True)
        cell = table.cells[i]  # every cell is estimable: rows and cells align
        assert table.pooled.mean[i] == pytest.approx(mean, rel=1e-6)
        assert table.pooled.std_error[i] == pytest.approx(math.sqrt(second - mean**2), rel=1e-5)
        assert cell.pooled_estimate == pytest.approx(table.pooled.mean[i])


def test_trends_are_the_gls_slopes_at_the_reml_tau2(two_arm_cells):
    _, table = two_arm_cells
    d, S, X = stacked(table)
    Vi = np.linalg.inv(S + table.tau2 * np.eye(len(d)))
    cov = np.linalg.inv(X.T @ Vi @ X)
    beta = cov @ X.T @ Vi @ d
    got = {(t.arm, t.moderator): t for t in table.trends}
    for k, arm in enumerate(("peer", "efficacy")):
        for j, mod in enumerate(("age", "self_efficacy"), start=1):
            t = got[(arm, mod)]
            assert t.slope == pytest.approx(beta[3 * k + j], rel=1e-7)
            assert t.std_error == pytest.approx(math.sqrt(cov[3 * k + j, 3 * k + j]), rel=1e-7)
            assert t.p_value == pytest.approx(2 * stats.norm.sf(abs(t.slope / t.std_error)))


def test_posterior_draws_follow_the_mixture(two_arm_cells):
    _, table = two_arm_cells
    draws = table.pooled.draws(np.random.default_rng(0), 40_000)
    sd = table.pooled.std_error
    np.testing.assert_allclose(draws.mean(axis=0), table.pooled.mean, atol=4 * sd.max() / 200)
    np.testing.assert_allclose(draws.std(axis=0), sd, rtol=0.03)


def test_omnibus_equals_statsmodels_wald_on_the_saturated_model():
    frame = make_frame(n=3600, seed=9)
    frame["cell"] = cell_of(frame)
    table = cell_table(frame, arm="arm", control="control", outcome="joined")
    fit = smf.ols("joined ~ C(arm, Treatment('control')) * C(cell)", frame).fit(cov_type="HC2")
    inter = [i for i, name in enumerate(fit.params.index) if ":" in name]
    R = np.zeros((len(inter), len(fit.params)))
    R[np.arange(len(inter)), inter] = 1
    wald = fit.wald_test(R, use_f=False, scalar=True)
    assert table.omnibus_df == len(inter) == 16
    assert table.omnibus_statistic == pytest.approx(float(wald.statistic), rel=1e-8)
    assert table.omnibus_p_value == pytest.approx(float(wald.pvalue), rel=1e-6)


def test_omnibus_of_independent_estimates_is_cochrans_q():
    d = np.array([0.1, 0.3, 0.2, 0.05])
    v = np.array([0.01, 0.02, 0.015, 0.01])
    w = 1 / v
    q = np.sum(w * (d - np.sum(w * d) / np.sum(w)) ** 2)
    stat, df, p = omnibus_wald(d, np.diag(v), np.zeros(4, int))
    assert (stat, df) == (pytest.approx(q), 3) and p == pytest.approx(stats.chi2.sf(q, 3))


# --- the frame-level table -----------------------------------------------------------------


def test_table_shape_is_the_interface():
    frame = make_frame(n=3600, seed=10)
    out = cell_table(frame, arm="arm", control="control", outcome="joined").to_dict()
    assert set(out) == {"cells", "heterogeneity"}
    assert set(out["heterogeneity"]) == {"omnibus_p_value", "tau2"}
    assert len(out["cells"]) == 2 * 9
    first = out["cells"][0]
    assert list(first) == [
        "arm", "levels", "n", "estimate", "std_error", "pooled_estimate", "pooled_ci_low",
        "pooled_ci_high",
    ]  # fmt: skip
    assert first["arm"] == "efficacy" and first["levels"] == {
        "age": "18-34",
        "self_efficacy": "low",
    }
    assert first["pooled_ci_low"] < first["pooled_estimate"] < first["pooled_ci_high"]


def test_pooling_shrinks_toward_the_smooth_model():
    frame = make_frame(n=3600, seed=10)
    table = cell_table(frame, arm="arm", control="control", outcome="joined")
    for cell in table.cells:
        assert 0 < cell.shrinkage <= 1
        assert cell.pooled_std_error < cell.std_error


def test_a_cell_without_participants_is_named_and_the_rest_pooled():
    frame = make_frame(n=3600, seed=11)
    cells = cell_of(frame)
    frame = frame[~((cells == "55+|high") & (frame.arm == "peer"))]
    table = cell_table(frame, arm="arm", control="control", outcome="joined")
    empty = next(
        c
        for c in table.cells
        if c.arm == "peer" and c.levels["age"] == "55+" and c.levels["self_efficacy"] == "high"
    )
    assert empty.error == "too_few_rows" and math.isnan(empty.estimate)
    assert empty.to_dict()["pooled_estimate"] is None
    assert table.error is None and math.isfinite(table.tau2) and table.omnibus_df == 15
    # targeting reads the smooth model there: peer's intercept and slopes at the cell's means
    model = table.model_effects()
    centre = np.average(table.means.x, axis=0, weights=table.means.n.sum(axis=0))
    peer = table.means.arms.index("peer") - 1
    beta = table.pooled.beta[3 * peer : 3 * peer + 3]
    expected = beta[0] + (table.means.x[8] - centre) @ beta[1:]
    assert model[peer, 8] == pytest.approx(expected)


def test_too_few_cells_to_pool_is_a_message_not_a_crash():
    frame = make_frame(n=1200, seed=12, arms=("control", "peer"), effects=(0, 0.05))
    bands = (BandSpec("age", (50.0,)), BandSpec("self_efficacy", (3.0,)))
    table = cell_table(frame, arm="arm", control="control", outcome="joined", moderators=bands)
    assert table.error == "pooling" and "at least three more estimates" in table.message
    assert all(math.isfinite(c.estimate) and math.isnan(c.pooled_estimate) for c in table.cells)
    assert math.isfinite(table.omnibus_p_value)
    with pytest.raises(PoolingError, match="no estimates"):
        pool([], np.zeros((0, 0)), np.zeros((0, 3)))


@pytest.mark.parametrize(
    ("change", "kwargs", "message"),
    [
        (lambda f: f.drop(columns="age"), {}, "no column 'age'"),
        (lambda f: f, {"control": "nobody"}, "control value 'nobody' does not occur"),
        (lambda f: f.assign(age=f.age.astype(object).where(f.index != 7, "old")), {}, "'old' at data row 8 is not a number"),
        (lambda f: f.assign(p=0.5).assign(p=lambda g: g.p.where(g.index != 3, 1.5)), {"probability": "p"}, "1.5 at data row 4 is not a probability"),
        (lambda f: f, {"moderators": (BandSpec("age"), SE)}, "'age' needs cut points"),
    ],
)  # fmt: skip
def test_bad_input_is_named(change, kwargs, message):
    frame = change(make_frame(n=900, seed=13))
    args = dict(arm="arm", control="control", outcome="joined") | kwargs
    with pytest.raises(CellInputError, match=message):
        cell_table(frame, **args)
