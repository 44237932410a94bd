"""Random-effects meta-analysis against statsmodels' combine_effects (DerSimonian-Laird), a
test-side REML / Hartung-Knapp / prediction-interval implementation, and the published
results of three classic data sets (fixtures in tests/experiments/fixtures, sources cited)."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import optimize, stats
from statsmodels.stats.meta_analysis import combine_effects

from experiments.evidence.meta import MetaAnalysisInputError, pool_by, random_effects

FIXTURES = Path(__file__).parent / "fixtures"
TOL = dict(rel=1e-6, abs=1e-6)


def bcg() -> tuple[np.ndarray, np.ndarray]:
    """Log risk ratios and their variances (metafor's escalc(measure="RR"))."""
    d = pd.read_csv(FIXTURES / "dat_bcg.csv", comment="#")
    a, b, c, e = (d[k].to_numpy(float) for k in ("tpos", "tneg", "cpos", "cneg"))
    y = np.log(a / (a + b)) - np.log(c / (c + e))
    v = 1 / a - 1 / (a + b) + 1 / c - 1 / (c + e)
    return y, v


def yi_vi(name: str) -> tuple[np.ndarray, np.ndarray]:
    d = pd.read_csv(FIXTURES / name, comment="#")
    return d["yi"].to_numpy(float), d["vi"].to_numpy(float)


DATASETS = {
    "bcg": bcg,
    "raudenbush1985": lambda: yi_vi("dat_raudenbush1985.csv"),
    "normand1999": lambda: yi_vi("dat_normand1999.csv"),
}


# --- the test-side implementation, written from the published formulas --------------------


def reml_tau2(y, v) -> float:
    """Maximise the restricted log-likelihood directly (Viechtbauer 2005, eq. 8)."""

    def negative_loglik(tau2):
        w = 1 / (v + tau2)
        mu = np.sum(w * y) / np.sum(w)
        return 0.5 * (np.sum(np.log(v + tau2)) + np.log(np.sum(w)) + np.sum(w * (y - mu) ** 2))

    upper = 10 * (np.var(y) + v.max())
    res = optimize.minimize_scalar(
        negative_loglik, bounds=(0, upper), method="bounded", options={"xatol": 1e-13}
    )
    return 0.0 if negative_loglik(0.0) <= res.fun else float(res.x)


def pooled(y, v, tau2, hartung_knapp: bool, alpha=0.05):
    w = 1 / (v + tau2)
    mu = np.sum(w * y) / np.sum(w)
    k = len(y)
    if hartung_knapp:
        se = math.sqrt(np.sum(w * (y - mu) ** 2) / ((k - 1) * np.sum(w)))
        crit = stats.t.ppf(1 - alpha / 2, k - 1)
    else:
        se = math.sqrt(1 / np.sum(w))
        crit = stats.norm.ppf(1 - alpha / 2)
    # Higgins, Thompson and Spiegelhalter (2009): t with k - 2 df, conventional SE(mu)
    half = stats.t.ppf(1 - alpha / 2, k - 2) * math.sqrt(tau2 + 1 / np.sum(w))
    return mu, se, mu - crit * se, mu + crit * se, mu - half, mu + half


# --- statsmodels ---------------------------------------------------------------------------


@pytest.mark.parametrize("name", DATASETS)
def test_dersimonian_laird_equals_statsmodels(name):
    y, v = DATASETS[name]()
    ours = random_effects(y, np.sqrt(v), method="dl")
    sm = combine_effects(y, v, method_re="dl")
    assert ours.interval == "wald" and math.isinf(ours.df)
    assert ours.estimate == pytest.approx(sm.mean_effect_re, **TOL)
    assert ours.std_error == pytest.approx(sm.sd_eff_w_re, **TOL)
    assert ours.tau2 == pytest.approx(sm.tau2, **TOL)
    assert ours.q == pytest.approx(sm.q, **TOL)
    assert ours.i2 == pytest.approx(sm.i2, **TOL)
    _, ci_re, _, _ = sm.conf_int(alpha=0.05, use_t=False)
    assert (ours.ci_low, ours.ci_high) == pytest.approx(tuple(ci_re), **TOL)


@pytest.mark.parametrize("name", DATASETS)
def test_hartung_knapp_with_dl_equals_statsmodels_hksj(name):
    y, v = DATASETS[name]()
    ours = random_effects(y, np.sqrt(v), method="dl", interval="hksj")
    sm = combine_effects(y, v, method_re="dl", use_t=True)
    assert ours.df == len(y) - 1 == sm.df_resid
    assert ours.std_error == pytest.approx(math.sqrt(sm.var_hksj_re), **TOL)
    _, _, _, ci_hksj = sm.conf_int(alpha=0.05, use_t=True)
    assert (ours.ci_low, ours.ci_high) == pytest.approx(tuple(ci_hksj), **TOL)


# --- test-side REML, Hartung-Knapp and prediction interval ---------------------------------


@pytest.mark.parametrize("name", DATASETS)
def test_reml_hartung_knapp_and_prediction_equal_the_formulas(name):
    y, v = DATASETS[name]()
    ours = random_effects(y, np.sqrt(v))
    tau2 = reml_tau2(y, v)
    assert ours.tau2_method == "reml" and ours.interval == "hksj" and ours.error is None
    assert ours.tau2 == pytest.approx(tau2, rel=1e-6, abs=1e-9)
    mu, se, lo, hi, plo, phi = pooled(y, v, tau2, hartung_knapp=True)
    got = (ours.estimate, ours.std_error, ours.ci_low, ours.ci_high)
    assert got == pytest.approx((mu, se, lo, hi), **TOL)
    assert (ours.prediction_low, ours.prediction_high) == pytest.approx((plo, phi), **TOL)
    assert sum(ours.weights) == pytest.approx(1.0)


@pytest.mark.parametrize("name", DATASETS)
def test_dl_prediction_interval_equals_the_formula(name):
    y, v = DATASETS[name]()
    ours = random_effects(y, np.sqrt(v), method="dl")
    *_, plo, phi = pooled(y, v, ours.tau2, hartung_knapp=False)
    assert (ours.prediction_low, ours.prediction_high) == pytest.approx((plo, phi), **TOL)


def test_reml_at_the_boundary_when_studies_agree():
    y = np.array([0.10, 0.11, 0.09, 0.10])
    s = np.array([0.05, 0.06, 0.05, 0.04])
    r = random_effects(y, s)
    assert r.tau2 == 0.0 == reml_tau2(y, s**2) and r.error is None


# --- published values (metafor's tests, the papers' tables) --------------------------------


def test_published_bcg():
    y, v = bcg()
    reml = random_effects(y, np.sqrt(v), interval="wald")
    assert reml.tau2 == pytest.approx(0.3132, abs=5e-5)
    assert reml.estimate == pytest.approx(-0.7145, abs=5e-5)
    assert reml.std_error == pytest.approx(0.1798, abs=5e-5)
    assert reml.q == pytest.approx(152.2330, abs=5e-5)
    dl = random_effects(y, np.sqrt(v), method="dl")
    assert dl.tau2 == pytest.approx(0.3088, abs=5e-5)
    assert dl.estimate == pytest.approx(-0.7141, abs=5e-5)
    assert (dl.ci_low, dl.ci_high) == pytest.approx((-1.0644, -0.3638), abs=5e-5)
    assert 100 * dl.i2 == pytest.approx(92.1173, abs=5e-5)


def test_published_raudenbush1985():
    y, v = yi_vi("dat_raudenbush1985.csv")
    r = random_effects(y, np.sqrt(v))
    assert r.tau2 == pytest.approx(0.0188, abs=5e-5)
    assert r.estimate == pytest.approx(0.0837, abs=5e-5)
    assert r.std_error == pytest.approx(0.0616, abs=5e-5)
    assert (r.ci_low, r.ci_high) == pytest.approx((-0.0457, 0.2131), abs=5e-5)
    assert r.q == pytest.approx(35.8295, abs=5e-5)
    assert random_effects(y, np.sqrt(v), method="dl").tau2 == pytest.approx(0.0259, abs=5e-5)


def test_published_normand1999():
    y, v = yi_vi("dat_normand1999.csv")
    reml = random_effects(y, np.sqrt(v), interval="wald")
    assert reml.tau2 == pytest.approx(685.1965, rel=1e-4)
    assert reml.estimate == pytest.approx(-15.1217, abs=1e-3)
    assert (reml.ci_low, reml.ci_high) == pytest.approx((-32.6716, 2.4282), abs=1e-3)
    dl = random_effects(y, np.sqrt(v), method="dl")
    assert dl.tau2 == pytest.approx(218.7216, rel=1e-4)
    assert (dl.ci_low, dl.ci_high) == pytest.approx((-24.4454, -3.7490), abs=1e-3)


# --- degenerate input ----------------------------------------------------------------------


def test_one_campaign_is_its_own_estimate_with_a_message():
    r = random_effects([0.04], [0.01])
    assert r.error == "one_campaign" and "one campaign" in r.message
    assert r.estimate == 0.04 and r.std_error == 0.01
    assert (r.ci_low, r.ci_high) == pytest.approx((0.04 - 1.959964 * 0.01, 0.04 + 1.959964 * 0.01))
    assert math.isnan(r.tau2) and math.isnan(r.prediction_low)
    assert r.to_dict()["tau2"] is None


def test_two_campaigns_have_no_prediction_interval():
    r = random_effects([0.04, 0.01], [0.01, 0.02])
    assert r.error == "two_campaigns" and math.isnan(r.prediction_low)
    assert math.isfinite(r.ci_low) and r.df == 1


@pytest.mark.parametrize(
    ("estimates", "std_errors", "index", "field", "text"),
    [
        (
            [0.1, 0.2, 0.3],
            [0.1, -0.2, 0.1],
            1,
            "std_error",
            "campaign 2: the standard error is -0.2",
        ),
        ([0.1, 0.2, 0.3], [0.1, 0.1, 0.0], 2, "std_error", "campaign 3: the standard error is 0"),
        ([0.1, 0.2], [0.1, math.nan], 1, "std_error", "standard error is missing"),
        ([0.1, math.nan], [0.1, 0.1], 1, "estimate", "campaign 2: the estimate is missing"),
        ([math.inf, 0.2], [0.1, 0.1], 0, "estimate", "campaign 1"),
    ],
)
def test_bad_input_names_the_campaign(estimates, std_errors, index, field, text):
    with pytest.raises(MetaAnalysisInputError, match=text) as info:
        random_effects(estimates, std_errors)
    assert info.value.index == index and info.value.field == field


def test_bad_shapes_and_options():
    with pytest.raises(MetaAnalysisInputError, match="no campaigns"):
        random_effects([], [])
    with pytest.raises(MetaAnalysisInputError, match="2 estimate"):
        random_effects([0.1, 0.2], [0.1])
    with pytest.raises(MetaAnalysisInputError, match="unknown tau"):
        random_effects([0.1, 0.2], [0.1, 0.1], method="pm")  # type: ignore[arg-type]


def test_reml_that_does_not_converge_says_so():
    y, v = yi_vi("dat_raudenbush1985.csv")
    r = random_effects(y, np.sqrt(v), max_iterations=2)
    assert r.error == "not_converged" and "did not converge in 2 iterations" in r.message
    assert random_effects(y, np.sqrt(v)).iterations > 2


def test_pool_by_groups_in_order_and_names_the_row_of_a_bad_input():
    y, v = yi_vi("dat_raudenbush1985.csv")
    groups = ["b" if i % 2 else "a" for i in range(len(y))]
    out = pool_by(groups, y, np.sqrt(v), method="dl")
    assert [g for g, _ in out] == ["a", "b"]
    a = random_effects(y[::2], np.sqrt(v[::2]), method="dl")
    assert out[0][1] == a
    s = np.sqrt(v)
    s[7] = -1
    with pytest.raises(MetaAnalysisInputError) as info:
        pool_by(groups, y, s)
    assert info.value.index == 7
