"""The design columns of the secondary analyses: which rows are kept, how strata and
assignment probabilities enter, and the bad inputs."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from experiments.analysis.adjustment import (
    OutcomeInputError,
    TrialColumns,
    arm_data,
    lin_regressors,
)


def _frame() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "arm": ["control", "a", "b", "a", None, "control", "b", "a"],
            "age": [30, 40, np.nan, 50, 60, 70, 35, 45],
            "stratum": ["x", "x", "y", "y", "x", "y", "x", "y"],
            "p": [0.5, 0.25, 0.25, 0.25, 0.5, 0.5, 0.4, 0.25],
            "household": [1, 1, 2, 2, 3, 3, 4, 4],
        }
    )


def test_rows_missing_the_arm_or_a_covariate_are_dropped_and_counted():
    data = arm_data(_frame(), TrialColumns(covariates=("age",)))
    assert data.arms == ("control", "a", "b")
    assert list(data.rows) == [0, 1, 3, 5, 6, 7] and data.dropped == 2
    assert list(data.arm) == [0, 1, 1, 0, 2, 1]
    np.testing.assert_array_equal(data.units, [0, 1, 3, 5, 6, 7])


def test_strata_become_covariates_and_varying_probabilities_weights():
    frame = _frame()
    # Every arm with at least two units in each stratum: no pooling, the strata carry
    # the design and no weights are needed.
    doubled = pd.concat([frame, frame], ignore_index=True)
    with_strata = arm_data(doubled, TrialColumns(stratum="stratum", probability="p"))
    assert with_strata.weights is None  # the strata carry the design
    np.testing.assert_array_equal(
        with_strata.covariates[:, 0], (doubled["stratum"] == "y")[with_strata.rows]
    )
    # Tiny strata (one unit of an arm) are pooled by the headline's rule; the pool joins
    # strata of different probabilities, so weights 1/p correct for them.
    tiny = arm_data(frame, TrialColumns(stratum="stratum", probability="p"))
    np.testing.assert_allclose(tiny.weights, 1 / frame["p"].drop(index=4))
    weighted = arm_data(frame, TrialColumns(probability="p"))
    np.testing.assert_allclose(weighted.weights, 1 / frame["p"].drop(index=4))
    equal = arm_data(frame.assign(p=0.5), TrialColumns(probability="p"))
    assert equal.weights is None  # constant within every arm: nothing to correct
    clustered = arm_data(frame, TrialColumns(cluster="household"))
    assert list(clustered.clusters) == [1, 1, 2, 2, 3, 4, 4]


def test_lin_regressors_centre_and_interact():
    data = arm_data(_frame(), TrialColumns(covariates=("age",)))
    X = lin_regressors(data, extra=np.arange(data.n, dtype=float))
    assert X.shape == (6, 1 + 2 + 2 + 4)
    np.testing.assert_allclose(X[:, 3:5].mean(axis=0), 0, atol=1e-12)
    np.testing.assert_allclose(X[:, 5], X[:, 1] * X[:, 3])  # arm a x centred age


def test_bad_design_columns():
    frame = _frame()
    with pytest.raises(OutcomeInputError, match="must lie in"):
        arm_data(frame.assign(p=1.5), TrialColumns(probability="p"))
    with pytest.raises(OutcomeInputError, match="no column 'block'"):
        arm_data(frame, TrialColumns(stratum="block"))
    with pytest.raises(OutcomeInputError, match="besides the control"):
        arm_data(frame.assign(arm="control"), TrialColumns())
