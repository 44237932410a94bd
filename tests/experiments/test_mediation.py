"""Causal mediation against statsmodels' `Mediation` (same models, same quasi-Bayesian
draws), the sensitivity parameter against Imai, Keele and Yamamoto's identities, and by
simulation (a confounded mediator: rho_at_zero finds the confounding)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm
from statsmodels.stats.mediation import Mediation

from experiments.analysis.adjustment import OutcomeInputError, TrialColumns
from experiments.analysis.mediation import ASSUMPTION, Sensitivity, mediation


class _MeanOnly:
    def __init__(self, mean):
        self.mean = mean

    def rvs(self, n, rng=None):
        return self.mean


class MeanMediatorOLS(sm.OLS):
    """statsmodels draws a noisy mediator value per person under each condition
    independently; `mediate` (R) uses the same draw for both, so in a linear model the
    noise cancels. This stand-in gives statsmodels the fitted mean (no draw), making the
    two simulation approaches the same: parameter draws, counterfactual predictions."""

    def get_distribution(self, params, scale, exog=None, **kwargs):
        return _MeanOnly(exog @ params)


def _trial(n=2000, seed=3, rho=0.0, b=0.4):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=n)
    t = rng.integers(0, 2, n).astype(float)
    e2, e3 = rng.multivariate_normal([0, 0], [[1, rho], [rho, 1]], n).T
    m = 0.5 * t + 0.3 * x + e2
    y = 0.2 * t + b * m + 0.1 * t * m + 0.2 * x + e3
    return pd.DataFrame(
        {"arm": np.where(t == 1, "efficacy", "control"), "t": t, "x": x, "m": m, "y": y}
    )


def _statsmodels(frame, interaction, simulations, seed):
    """statsmodels' Mediation on the same models (HC2 covariances). The interactions need
    the formula interface (statsmodels rebuilds the design per draw, slowly); without
    them, arrays with the exposure and mediator positions."""
    hc2 = {"cov_type": "HC2"}
    frame = frame.assign(xc=frame["x"] - frame["x"].mean())  # ours centres the covariates
    if interaction:
        outcome_model = sm.OLS.from_formula("y ~ t + m + t:m + xc + t:xc", frame)
        mediator_model = MeanMediatorOLS.from_formula("m ~ t + xc + t:xc", frame)
        exposure, mediator = "t", "m"
    else:
        outcome_model = sm.OLS(frame["y"], sm.add_constant(frame[["t", "m", "xc"]]))
        mediator_model = MeanMediatorOLS(frame["m"], sm.add_constant(frame[["t", "xc"]]))
        exposure, mediator = (1, 1), 2
    return Mediation(
        outcome_model,
        mediator_model,
        exposure,
        mediator,
        outcome_fit_kwargs=hc2,
        mediator_fit_kwargs=hc2,
    ).fit(n_rep=simulations, rng=np.random.default_rng(seed))


@pytest.mark.parametrize(
    "interaction",
    # statsmodels' simulation with interactions takes a minute: run by .ci/run (-m slow)
    [pytest.param(True, marks=pytest.mark.slow), False],
)
def test_equals_statsmodels_mediation(interaction):
    frame = _trial(n=1000)
    simulations = 200 if interaction else 1000
    # with interactions: arm x mediator and arm x (centred) covariate, as the defaults
    ours = mediation(
        frame,
        TrialColumns(covariates=("x",)),
        "y",
        "m",
        interaction=interaction,
        covariates_by_arm=interaction,
        simulations=simulations,
        seed=11,
    )[0]
    table = _statsmodels(frame, interaction, simulations, 11).summary()
    for name, low, high in (
        ("ACME (average)", ours.acme_ci_low, ours.acme_ci_high),
        ("ADE (average)", ours.ade_ci_low, ours.ade_ci_high),
        ("Total effect", ours.total_ci_low, ours.total_ci_high),
    ):
        assert low == pytest.approx(table.loc[name, "Lower CI bound"], abs=1e-10)
        assert high == pytest.approx(table.loc[name, "Upper CI bound"], abs=1e-10)
    assert ours.acme_p_value == pytest.approx(table.loc["ACME (average)", "P-value"])
    # point estimates: the plug-in values (statsmodels reports the mean of its draws)
    frame = frame.assign(xc=frame["x"] - frame["x"].mean())
    formula = "y ~ t + m + t:m + xc + t:xc" if interaction else "y ~ t + m + xc"
    out = sm.OLS.from_formula(formula, frame).fit().params
    a = sm.OLS.from_formula("m ~ t + xc + t:xc" if interaction else "m ~ t + xc", frame).fit()
    a = a.params["t"]
    d = out["t:m"] if interaction else 0.0
    assert ours.acme_control == pytest.approx(a * out["m"], abs=1e-10)
    assert ours.acme_treated == pytest.approx(a * (out["m"] + d), abs=1e-10)
    assert ours.acme == pytest.approx(table.loc["ACME (average)", "Estimate"], abs=0.01)
    assert ours.ade == pytest.approx(table.loc["ADE (average)", "Estimate"], abs=0.01)
    assert ours.proportion_mediated == pytest.approx(ours.acme / ours.total)
    assert ours.effect_on_mediator == pytest.approx(a, abs=1e-10)
    if not interaction:
        # ACME + ADE is the plain regression of y on t and x
        total = sm.OLS.from_formula("y ~ t + x", frame).fit().params["t"]
        assert ours.total == pytest.approx(total, abs=1e-10)


def test_sensitivity_rho_follows_imai_keele_yamamoto():
    frame = _trial(n=5000, seed=4)
    y, m, t, x = (frame[c].to_numpy() for c in ("y", "m", "t", "x"))
    s = Sensitivity.of(y, m, t, x[:, None], None)
    # at rho = 0 the formula gives the product of coefficients a * b (no interaction)
    b = sm.OLS(y, sm.add_constant(np.column_stack([t, m, x]))).fit().params[2]
    a = sm.OLS(m, sm.add_constant(np.column_stack([t, x]))).fit().params[1]
    assert s.acme(0.0) == pytest.approx(a * b, rel=1e-10)
    assert s.acme(s.rho_tilde) == pytest.approx(0.0, abs=1e-12)
    # the ACME shrinks as rho approaches rho_tilde from below
    assert s.acme(s.rho_tilde / 2) < s.acme(0.0)
    row = mediation(frame, TrialColumns(covariates=("x",)), "y", "m", simulations=200)[0]
    assert row.rho_at_zero == pytest.approx(s.rho_tilde, rel=1e-10)


def test_rho_at_zero_finds_an_unmeasured_confounder():
    """No mediated effect at all (b = 0), but mediator and outcome errors correlate 0.3:
    the naive ACME is non-zero and the sensitivity analysis says rho = 0.3 explains it."""
    frame = _trial(n=40_000, seed=5, rho=0.3, b=0.0)
    frame["y"] = frame["y"] - 0.1 * frame["t"] * frame["m"]
    row = mediation(frame, TrialColumns(covariates=("x",)), "y", "m", interaction=False)[0]
    assert row.acme_ci_low > 0
    assert row.rho_at_zero == pytest.approx(0.3, abs=0.02)


def test_weights_and_output():
    frame = _trial(n=1500, seed=6)
    frame["w"] = np.random.default_rng(1).uniform(0.5, 2.0, len(frame))
    cols = TrialColumns(covariates=("x",))
    plain = mediation(
        frame, cols, "y", "m", weights="w", interaction=False, covariates_by_arm=False
    )[0]
    X_m = sm.add_constant(frame[["t", "x"]])
    X_y = sm.add_constant(frame[["t", "m", "x"]])
    a = sm.WLS(frame["m"], X_m, weights=frame["w"]).fit().params["t"]
    b = sm.WLS(frame["y"], X_y, weights=frame["w"]).fit().params["m"]
    assert plain.acme == pytest.approx(a * b, abs=1e-10)
    # by arm: covariates centred at their weighted mean, and multiplied by the arm
    row = mediation(frame, cols, "y", "m", weights="w", interaction=False)[0]
    xc = frame["x"] - np.average(frame["x"], weights=frame["w"])
    lin = pd.DataFrame({"t": frame["t"], "xc": xc, "t:xc": frame["t"] * xc})
    a = sm.WLS(frame["m"], sm.add_constant(lin), weights=frame["w"]).fit().params["t"]
    b = sm.WLS(frame["y"], sm.add_constant(lin.assign(m=frame["m"])), weights=frame["w"])
    assert row.acme == pytest.approx(a * b.fit().params["m"], abs=1e-10)
    d = row.to_dict()
    for key in (
        "arm",
        "mediator",
        "acme",
        "acme_ci_low",
        "acme_ci_high",
        "ade",
        "proportion_mediated",
        "rho_at_zero",
    ):
        assert key in d
    assert d["mediator"] == "m" and d["assumption"] == ASSUMPTION
    assert "sequential ignorability" in ASSUMPTION and "confirmatory" in ASSUMPTION


def test_reproducible_from_the_seed():
    frame = _trial(n=500)
    a = mediation(frame, TrialColumns(), "y", "m", seed=3)[0]
    b = mediation(frame, TrialColumns(), "y", "m", seed=3)[0]
    c = mediation(frame, TrialColumns(), "y", "m", seed=4)[0]
    assert a == b and a.acme_ci_low != c.acme_ci_low and a.acme == c.acme


def test_bad_inputs():
    frame = _trial(n=200)
    with pytest.raises(OutcomeInputError, match="at least 100 simulations"):
        mediation(frame, TrialColumns(), "y", "m", simulations=10)
    with pytest.raises(OutcomeInputError, match="no mediator 'se_followup'"):
        mediation(frame, TrialColumns(), "y", "se_followup")
    frame["w"] = 0.0
    with pytest.raises(OutcomeInputError, match="weights column 'w' must be positive"):
        mediation(frame, TrialColumns(), "y", "m", weights="w")
    frame["const"] = 1.0
    with pytest.raises(OutcomeInputError, match="collinear"):
        mediation(frame, TrialColumns(covariates=("const",)), "y", "m")
