"""Collective and individual co-production side by side, and self-report against
verification: each effect against statsmodels' Lin regression (HC2), the stacked
covariance against the regression of the difference, the readings, the bad inputs."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm

from experiments.analysis.adjustment import OutcomeInputError, TrialColumns
from experiments.analysis.coproduction import (
    Scale,
    coproduction_effects,
    paired_effects,
    reporting_bias,
    substitution_reading,
)
from experiments.analysis.sandwich import Contrast


def _trial(n: int = 3000, seed: int = 3, substitution: float = 0.0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    arm = rng.choice(["control", "message", "peer"], n)
    age = rng.uniform(18, 90, n)
    ind0 = rng.binomial(6, 0.4, n)
    col0 = (rng.random(n) < 0.2).astype(float)
    gain = np.select([arm == "message", arm == "peer"], [0.08, 0.0], 0.0)
    collective = (rng.random(n) < 0.15 + 0.3 * col0 + gain).astype(float)
    individual = rng.binomial(6, 0.25 + 0.05 * ind0 / 6, n) - (
        substitution * collective * (arm == "message") * rng.binomial(2, 0.5, n)
    )
    return pd.DataFrame(
        {
            "arm": arm,
            "age": age,
            "collective_baseline": col0,
            "individual_baseline": ind0,
            "collective_coproduction": collective,
            "individual_coproduction": individual,
        }
    )


def _lin_by_statsmodels(frame, outcome, baseline, covariates=("age",)):
    """Lin (2013) with statsmodels: arm dummies, centred covariates, every product, HC2."""
    d = pd.get_dummies(frame["arm"])[["message", "peer"]].astype(float)
    z = frame[[*covariates, baseline]].astype(float)
    z = z - z.mean()
    inter = pd.concat({f"{a}:{c}": d[a] * z[c] for a in d.columns for c in z.columns}, axis=1)
    X = sm.add_constant(pd.concat([d, z, inter], axis=1))
    return sm.OLS(frame[outcome].astype(float), X).fit(cov_type="HC2")


def test_each_effect_is_the_lin_regression_with_its_own_baseline():
    frame = _trial()
    cols = TrialColumns(covariates=("age",))
    rows = paired_effects(
        frame,
        cols,
        "collective_coproduction",
        "individual_coproduction",
        "collective_baseline",
        "individual_baseline",
    )
    ref_c = _lin_by_statsmodels(frame, "collective_coproduction", "collective_baseline")
    ref_i = _lin_by_statsmodels(frame, "individual_coproduction", "individual_baseline")
    assert [r.arm for r in rows] == ["message", "peer"]
    for r in rows:
        assert r.first_effect.estimate == pytest.approx(ref_c.params[r.arm], abs=1e-10)
        assert r.first_effect.std_error == pytest.approx(ref_c.bse[r.arm], abs=1e-12)
        assert r.second_effect.estimate == pytest.approx(ref_i.params[r.arm], abs=1e-10)
        assert r.second_effect.std_error == pytest.approx(ref_i.bse[r.arm], abs=1e-12)
        assert r.first_effect.df == len(frame) - ref_c.df_model - 1
        assert r.n == len(frame)


def test_the_joint_law_gives_the_variance_of_the_difference():
    """Same regressors for both outcomes: the difference of the two effects is the Lin
    effect on (first - second), whose statsmodels HC2 variance must come out."""
    frame = _trial()
    frame["individual_share"] = frame["individual_coproduction"] / 6
    cols = TrialColumns(covariates=("age", "collective_baseline"))
    rows = paired_effects(frame, cols, "collective_coproduction", "individual_share")
    frame["gap"] = frame["collective_coproduction"] - frame["individual_share"]
    ref = _lin_by_statsmodels(frame, "gap", "collective_baseline")
    for r in rows:
        assert r.difference.estimate == pytest.approx(ref.params[r.arm], abs=1e-10)
        assert r.difference.std_error == pytest.approx(ref.bse[r.arm], rel=1e-9)
        assert -1 < r.correlation < 1
        # Wald test of both effects being zero, chi-square with 2 df
        b = np.array([r.first_effect.estimate, r.second_effect.estimate])
        V = np.array(
            [
                [r.first_effect.std_error**2, r.covariance],
                [r.covariance, r.second_effect.std_error**2],
            ]
        )
        assert r.joint_statistic == pytest.approx(b @ np.linalg.solve(V, b))
    message = next(r for r in rows if r.arm == "message")
    assert message.joint_p_value < 0.001
    d = message.to_dict()
    assert set(d) >= {
        "arm",
        "collective_coproduction",
        "individual_share",
        "covariance",
        "difference",
    }


def test_readings_say_whether_collective_gains_came_at_individual_cost():
    pts, acts = Scale(100, "points"), Scale(1, "activities")

    def c(est, low, high):
        return Contrast(est, 0.01, 1e4, 0.0, 0.0, low, high)

    up = c(0.041, 0.02, 0.06)
    flat = c(0.002, -0.05, 0.054)
    down = c(-0.2, -0.3, -0.1)
    assert substitution_reading(up, flat, pts, acts) == (
        "collective up 4.1 points, individual unchanged (interval -0.05 to 0.054 activities): "
        "no sign of substitution"
    )
    assert substitution_reading(up, down, pts, acts).endswith(
        "a sign of substitution: the collective gain came partly at the cost of individual "
        "co-production"
    )
    assert "individual down 0.2 activities" in substitution_reading(up, down, pts, acts)
    assert substitution_reading(up, c(0.3, 0.1, 0.5), pts, acts).endswith("both forms rose")
    assert substitution_reading(c(0.0, -0.02, 0.02), down, pts, acts).endswith(
        "individual co-production fell without a collective gain"
    )


def test_simulated_substitution_is_read_as_such():
    frame = _trial(n=20_000, seed=5, substitution=1.0)
    rows = coproduction_effects(
        frame,
        TrialColumns(covariates=("age",)),
        collective_baseline="collective_baseline",
        individual_baseline="individual_baseline",
        units=(None, "activities"),
    )
    message = next(r for r in rows if r.effects.arm == "message")
    peer = next(r for r in rows if r.effects.arm == "peer")
    assert "a sign of substitution" in message.reading, message.reading
    assert message.reading.startswith("collective up ")
    assert "no collective gain" in peer.reading, peer.reading
    assert message.to_dict()["reading"] == message.reading


def test_reporting_bias_is_flagged_where_self_report_outruns_verification():
    rng = np.random.default_rng(8)
    n = 8000
    arm = rng.choice(["control", "honest", "eager"], n)
    attended = (rng.random(n) < np.where(arm == "control", 0.10, 0.13)).astype(float)
    over = np.where(arm == "eager", 0.10, 0.02)
    said = np.maximum(attended, rng.random(n) < over).astype(float)
    answered = rng.random(n) < 0.6
    frame = pd.DataFrame(
        {"arm": arm, "attended": attended, "participated": np.where(answered, said, np.nan)}
    )
    rows = {
        r.effects.arm: r for r in reporting_bias(frame, TrialColumns(), "participated", "attended")
    }
    assert rows["eager"].flagged and not rows["honest"].flagged
    assert "possible reporting bias" in rows["eager"].reading
    assert "no sign of reporting bias" in rows["honest"].reading
    assert rows["eager"].overreport_arm > rows["eager"].overreport_control
    # only those who answered: the difference is the effect on (said - attended)
    done = frame.dropna()
    gap = done["participated"] - done["attended"]
    d = pd.get_dummies(done["arm"])[["eager", "honest"]].astype(float)
    ref = sm.OLS(gap, sm.add_constant(d)).fit(cov_type="HC2")
    for arm_key in ("eager", "honest"):
        diff = rows[arm_key].effects.difference
        assert diff.estimate == pytest.approx(ref.params[arm_key], abs=1e-10)
        assert diff.std_error == pytest.approx(ref.bse[arm_key], rel=1e-9)


def test_bad_inputs_name_the_problem():
    frame = _trial(200)
    cols = TrialColumns()
    with pytest.raises(OutcomeInputError, match="no outcome 'nothing'"):
        paired_effects(frame, cols, "nothing", "individual_coproduction")
    with pytest.raises(OutcomeInputError, match="control arm 'baseline'"):
        paired_effects(frame, TrialColumns(control="baseline"), "collective_coproduction", "age")
    frame["age"] = frame["age"].astype(object)
    frame.loc[5, "age"] = "old"
    with pytest.raises(
        OutcomeInputError, match=r"'age' has a value that is not a number \('old', row 7"
    ):
        paired_effects(frame, cols, "collective_coproduction", "age")
    with pytest.raises(OutcomeInputError, match="no arm column"):
        paired_effects(
            frame, TrialColumns(arm="group"), "collective_coproduction", "individual_coproduction"
        )
