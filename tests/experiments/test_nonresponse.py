"""The response-weighted estimate against statsmodels (logistic model, weighted means), its
M-estimation standard error against a numerical sandwich of the same estimating
equations (HC2: the regression's equations scaled by 1 / sqrt(1 - leverage)), its coverage by simulation, and the readings."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm

from experiments.analysis.adjustment import OutcomeInputError, TrialColumns
from experiments.analysis.bounds import LeeBounds
from experiments.analysis.nonresponse import (
    logistic,
    reading,
    response_weighted_effects,
    survey_readings,
)


def _survey(n=4000, seed=1, effect=0.1):
    """Joining (recorded for all) raises both the outcome and the chance of answering. The
    message's true effect on y is effect + 0.5 x (0.2 - 0.1): directly and via joining."""
    rng = np.random.default_rng(seed)
    arm = np.where(rng.random(n) < 0.5, "message", "control")
    age = rng.uniform(18, 90, n)
    joined = (rng.random(n) < np.where(arm == "message", 0.2, 0.1)).astype(float)
    p_y = 0.2 + 0.5 * joined + effect * (arm == "message") + 0.002 * (age - 50)
    y = (rng.random(n) < np.clip(p_y, 0, 1)).astype(float)
    answer = rng.random(n) < 1 / (1 + np.exp(-(0.2 + 1.0 * joined + 0.01 * (age - 50))))
    return pd.DataFrame(
        {
            "arm": arm,
            "age": age,
            "joined": joined,
            "y": np.where(answer, y, np.nan),
            "answered": answer.astype(int),
        }
    )


def test_logistic_equals_statsmodels():
    frame = _survey()
    X = sm.add_constant(frame[["joined", "age"]]).to_numpy()
    r = frame["answered"].to_numpy(float)
    beta, p = logistic(X, r)
    ref = sm.Logit(r, X).fit(disp=0)
    np.testing.assert_allclose(beta, ref.params, atol=1e-8)
    np.testing.assert_allclose(p, ref.predict(X), atol=1e-10)
    w = np.random.default_rng(2).integers(1, 4, len(r)).astype(float)
    beta_w, _ = logistic(X, r, w)
    ref_w = sm.GLM(r, X, family=sm.families.Binomial(), freq_weights=w).fit()
    np.testing.assert_allclose(beta_w, ref_w.params, atol=1e-8)


def _estimating_equations(theta, X, r, y, k):
    gamma, mu = theta[:k], theta[k]
    p = 1 / (1 + np.exp(-(X @ gamma)))
    psi_g = X * (r - p)[:, None]
    psi_m = np.where(r == 1, (y - mu) / p, 0.0)
    return np.column_stack([psi_g, psi_m])


def _numerical_variance(X, r, y):
    """Sandwich A^-1 B A^-T of the stacked equations, A by central differences."""
    k = X.shape[1]
    gamma, p = logistic(X, r)
    ipw = np.where(r == 1, 1 / p, 0)
    theta = np.append(gamma, ipw @ np.nan_to_num(y) / ipw.sum())
    psi = _estimating_equations(theta, X, r, np.nan_to_num(y), k)
    psi[:, k] /= np.sqrt(1 - ipw / ipw.sum())  # HC2: a weighted mean's leverage is w / sum w
    A = np.empty((k + 1, k + 1))
    for j in range(k + 1):
        h = np.zeros(k + 1)
        h[j] = 1e-6
        up = _estimating_equations(theta + h, X, r, np.nan_to_num(y), k).sum(axis=0)
        down = _estimating_equations(theta - h, X, r, np.nan_to_num(y), k).sum(axis=0)
        A[:, j] = (up - down) / 2e-6
    Ainv = np.linalg.inv(A)
    V = Ainv @ (psi.T @ psi) @ Ainv.T
    return theta[k], V[k, k]


def test_weighted_effect_equals_statsmodels_and_the_numerical_sandwich():
    frame = _survey()
    row = response_weighted_effects(
        frame, TrialColumns(), "y", ["joined", "age"], response="answered"
    )[0]
    means, variances = {}, {}
    for a in ("message", "control"):
        part = frame[frame["arm"] == a]
        X = sm.add_constant(part[["joined", "age"]]).to_numpy()
        r = part["answered"].to_numpy(float)
        means[a], variances[a] = _numerical_variance(X, r, part["y"].to_numpy())
        # the Hajek mean is statsmodels' WLS intercept with weights 1 / p-hat
        p = sm.Logit(r, X).fit(disp=0).predict(X)
        done = r == 1
        wls = sm.WLS(part["y"][done], np.ones(done.sum()), weights=1 / p[done]).fit()
        assert means[a] == pytest.approx(wls.params.iloc[0], abs=1e-10)
    assert row.estimate.estimate == pytest.approx(means["message"] - means["control"], abs=1e-10)
    se = np.sqrt(variances["message"] + variances["control"])
    assert row.estimate.std_error == pytest.approx(se, rel=1e-5)
    assert row.mean_arm == pytest.approx(means["message"])


def test_lin_adjusted_weighted_effect_equals_wls_and_the_numerical_sandwich():
    """With covariates and the outcome's baseline: statsmodels' WLS of the respondents on
    Lin's design with weights 1 / p-hat, and the variance of all the stacked estimating
    equations (both arms' response models and the regression) by numerical derivatives."""
    frame = _survey(n=3000, seed=8)
    frame["baseline"] = np.random.default_rng(3).binomial(1, 0.3, len(frame))
    cols = TrialColumns(covariates=("age",))
    row = response_weighted_effects(frame, cols, "y", ["joined", "age"], baseline="baseline")[0]
    t = (frame["arm"] == "message").to_numpy(float)
    Zc = frame[["age", "baseline"]].to_numpy(float)
    Zc = Zc - Zc.mean(axis=0)
    X = np.column_stack([np.ones(len(t)), t, Zc, t[:, None] * Zc])
    Rz = sm.add_constant(frame[["joined", "age"]]).to_numpy()
    r = frame["y"].notna().to_numpy(float)
    y = frame["y"].fillna(0).to_numpy()
    arms = [t == 0, t == 1]
    k, q = X.shape[1], Rz.shape[1]

    def equations(theta):
        gammas, beta = (theta[:q], theta[q : 2 * q]), theta[2 * q :]
        p = np.empty(len(t))
        out = np.zeros((len(t), 2 * q + k))
        for i, m in enumerate(arms):
            p[m] = 1 / (1 + np.exp(-(Rz[m] @ gammas[i])))
            out[m, i * q : (i + 1) * q] = Rz[m] * (r[m] - p[m])[:, None]
        ipw = np.where(r == 1, 1 / p, 0.0)
        out[:, 2 * q :] = X * (ipw * (y - X @ beta))[:, None]
        return out

    gammas = [sm.Logit(r[m], Rz[m]).fit(disp=0).params for m in arms]
    p = np.empty(len(t))
    for m, g in zip(arms, gammas, strict=True):
        p[m] = 1 / (1 + np.exp(-(Rz[m] @ g)))
    done = r == 1
    wls = sm.WLS(y[done], X[done], weights=1 / p[done]).fit()
    assert row.estimate.estimate == pytest.approx(wls.params[1], abs=1e-9)
    theta = np.concatenate([*gammas, wls.params])
    A = np.empty((len(theta), len(theta)))
    for j in range(len(theta)):
        h = np.zeros(len(theta))
        h[j] = 1e-6
        A[:, j] = (equations(theta + h).sum(0) - equations(theta - h).sum(0)) / 2e-6
    psi = equations(theta)
    leverage = np.zeros(len(t))
    whitened = X[done] / np.sqrt(p[done])[:, None]  # WLS leverage: diag of the hat matrix
    leverage[done] = np.diag(whitened @ np.linalg.pinv(whitened))
    psi[:, 2 * q :] /= np.sqrt(1 - leverage)[:, None]  # HC2 on the regression's equations
    Ainv = np.linalg.inv(A)
    V = Ainv @ (psi.T @ psi) @ Ainv.T
    assert row.estimate.std_error == pytest.approx(np.sqrt(V[2 * q + 1, 2 * q + 1]), rel=1e-5)


@pytest.mark.slow
def test_weighted_intervals_cover_the_effect_the_respondents_only_miss():
    truth = 0.1 + 0.5 * (0.2 - 0.1)
    covered, naive, runs = 0, [], 400
    for rep in range(runs):
        frame = _survey(n=3000, seed=100 + rep)
        row = response_weighted_effects(frame, TrialColumns(), "y", ["joined", "age"])[0]
        covered += row.estimate.ci_low <= truth <= row.estimate.ci_high
        done = frame.dropna()
        naive.append(
            done.loc[done["arm"] == "message", "y"].mean()
            - done.loc[done["arm"] == "control", "y"].mean()
        )
    # binomial(400, 0.95) lies in 0.92-0.975 with probability above 99.5%
    assert 0.92 <= covered / runs <= 0.975, covered / runs
    assert np.mean(naive) > truth + 0.005  # answering follows joining: biased upward


def _bounds(lower, upper, arm_rate=0.75, control_rate=0.55):
    return LeeBounds(
        "message",
        "control",
        "y",
        lower,
        upper,
        "message",
        0.27,
        arm_rate,
        control_rate,
        (lower + upper) / 2,
    )


def test_readings():
    similar = reading(_bounds(-0.01, 0.05, 0.6, 0.6), None, 0.8, 0.05)
    assert "no clear difference" in similar and "fair reading" in similar
    robust = reading(_bounds(0.02, 0.09), None, 1e-6, 0.05)
    assert "75% answered in message against 55% in control" in robust
    assert "leaves a positive effect" in robust
    fragile = reading(_bounds(-0.03, 0.09), None, 1e-6, 0.05)
    assert "include zero" in fragile and "do not establish" in fragile
    w = response_weighted_effects(_survey(), TrialColumns(), "y", ["joined"])[0]
    inside = reading(_bounds(w.estimate.estimate - 0.1, w.estimate.estimate + 0.1), w, 1e-6, 0.05)
    assert "Weighting for who answered (by joined)" in inside and inside.endswith("nothing else.")
    outside = reading(_bounds(0.5, 0.6), w, 1e-6, 0.05)
    assert "outside the bounds" in outside


def test_survey_readings_put_it_together():
    frame = _survey(n=30_000, seed=3)
    rows = survey_readings(
        frame,
        TrialColumns(),
        "y",
        response="answered",
        response_covariates=["joined", "age"],
        bootstrap=50,
    )
    (row,) = rows
    assert row.response_p_value < 0.05
    assert row.weighted is not None and row.bounds.lower <= row.bounds.upper
    d = row.to_dict()
    assert d["bounds"]["outcome"] == "y" and d["reading"] == row.reading
    no_weights = survey_readings(frame, TrialColumns(), "y", bootstrap=0)[0]
    assert no_weights.weighted is None


def test_bad_inputs():
    frame = _survey(n=300)
    frame["const"] = 1.0
    with pytest.raises(OutcomeInputError, match="constant or collinear"):
        response_weighted_effects(frame, TrialColumns(), "y", ["joined", "const"])
    frame["perfect"] = frame["answered"]
    with pytest.raises(OutcomeInputError, match="predicts answering perfectly"):
        response_weighted_effects(frame, TrialColumns(), "y", ["perfect"])
    with pytest.raises(OutcomeInputError, match="no column 'missing'"):
        response_weighted_effects(frame, TrialColumns(), "y", ["missing"])


def test_a_stratum_without_respondents_is_refused_not_fitted_into_noise():
    import numpy as np
    import pandas as pd

    from experiments.analysis.adjustment import OutcomeInputError, TrialColumns
    from experiments.analysis.nonresponse import response_weighted_effects

    rng = np.random.default_rng(3)
    n = 400
    frame = pd.DataFrame(
        {
            "arm": np.where(np.arange(n) % 2, "t", "c"),
            "stratum": np.where(np.arange(n) < 200, "a", "b"),
            "x": rng.normal(size=n),
        }
    )
    frame["answered"] = ((frame["stratum"] == "a") & (rng.random(n) < 0.6)).astype(int)
    frame["y"] = np.where(frame["answered"] == 1, rng.normal(size=n), np.nan)
    cols = TrialColumns(arm="arm", control="c", covariates=("x",), stratum="stratum")
    with pytest.raises(OutcomeInputError, match="no respondent"):
        response_weighted_effects(frame, cols, "y", ("x",), response="answered")
