"""Diagnostics checked against scipy and hand-derived definitions."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from experiments.diagnostics import (
    attrition,
    consort_flow,
    srm,
    standardized_difference,
    standardized_differences,
)


def test_srm_matches_scipy_chisquare_with_unequal_weights():
    counts = {"control": 1030, "a": 980, "b": 2050}
    weights = {"control": 1, "a": 1, "b": 2}
    result = srm(counts, weights)
    total = sum(counts.values())
    expected = [total / 4, total / 4, total / 2]
    ref = stats.chisquare([1030, 980, 2050], expected)
    assert result.statistic == pytest.approx(ref.statistic, rel=1e-12)
    assert result.p_value == pytest.approx(ref.pvalue, rel=1e-10)
    assert result.df == 2
    assert not result.flagged
    assert result.error is None


def test_srm_flags_clear_mismatch_only_below_threshold():
    flagged = srm({"c": 5000, "t": 4600}, {"c": 0.5, "t": 0.5})
    assert flagged.p_value < 0.001 and flagged.flagged
    fine = srm({"c": 5000, "t": 4950}, {"c": 0.5, "t": 0.5})
    assert fine.p_value > 0.001 and not fine.flagged


def test_srm_false_alarm_rate_is_about_threshold_under_the_null():
    rng = np.random.default_rng(1)
    draws = rng.multinomial(2000, [0.25, 0.25, 0.5], size=4000)
    p = np.array(
        [srm(dict(zip("abc", d, strict=True)), {"a": 1, "b": 1, "c": 2}).p_value for d in draws]
    )
    # p-values are uniform under the null: 5% of them fall below 0.05
    assert abs((p < 0.05).mean() - 0.05) < 0.015


def test_srm_degenerate_inputs_return_error_codes():
    assert srm({}, {"c": 1, "t": 1}).error == "no_participants"
    assert srm({"c": 3, "x": 2}, {"c": 1, "t": 1}).error == "unknown_arm"
    assert srm({"c": 3}, {"c": 1}).error == "too_few_arms"
    r = srm({"c": 3, "t": 1}, {"c": 0, "t": 0})
    assert r.error == "bad_weights" and not r.flagged and math.isnan(r.p_value)
    assert r.message


def test_standardized_difference_definition():
    rng = np.random.default_rng(2)
    t, c = rng.normal(1, 2, 300), rng.normal(0.5, 1, 200)
    pooled = np.sqrt((np.var(t, ddof=1) + np.var(c, ddof=1)) / 2)
    assert standardized_difference(t, c) == pytest.approx((t.mean() - c.mean()) / pooled)
    assert math.isnan(standardized_difference([1.0], c))


def test_balance_table_numeric_and_categorical():
    frame = pd.DataFrame(
        {
            "arm": ["c", "c", "c", "t", "t", "t", "u", "u"],
            "age": [20, 30, 40, 25, 35, np.nan, 50, 60],
            "gender": ["f", "m", "f", "m", "m", None, "f", "f"],
        }
    )
    rows = standardized_differences(frame, "arm", "c", ["age", "gender"])
    age_t = next(r for r in rows if r.covariate == "age" and r.arm == "t")
    assert age_t.n_treatment == 2 and age_t.n_control == 3
    assert age_t.difference == pytest.approx(standardized_difference([25, 35], [20, 30, 40]))
    levels = {(r.level, r.arm) for r in rows if r.covariate == "gender"}
    assert levels == {("f", "t"), ("m", "t"), ("f", "u"), ("m", "u")}
    f_t = next(r for r in rows if r.covariate == "gender" and r.level == "f" and r.arm == "t")
    assert f_t.mean_treatment == 0 and f_t.mean_control == pytest.approx(2 / 3)
    assert f_t.note
    with pytest.raises(KeyError):
        standardized_differences(frame, "arm", "c", ["height"])


def test_consort_flow_and_attrition():
    frame = pd.DataFrame(
        {
            "arm": ["c"] * 4 + ["t"] * 4,
            "delivered": [1, 1, 1, 0, 1, 1, 1, 1],
            "exposed": [1, 0, 1, 0, 1, 1, 0, 1],
            "opted_out": [0, 0, 0, 1, 0, 0, 0, 0],
            "participated": [1, np.nan, 0, np.nan, 1, 1, 0, np.nan],
        }
    )
    flow = {r.arm: r for r in consort_flow(frame, "arm", "participated")}
    assert (flow["c"].allocated, flow["c"].delivered, flow["c"].exposed) == (4, 3, 2)
    assert (flow["c"].analysed, flow["c"].opted_out, flow["c"].lost) == (2, 1, 2)
    assert (flow["t"].analysed, flow["t"].lost) == (3, 1)
    no_cols = consort_flow(frame[["arm", "participated"]], "arm", "participated")
    assert no_cols[0].delivered is None
    att = attrition(frame, "arm", "participated", control="c")
    rates = {r.arm: r.rate for r in att.rows}
    assert rates == {"c": 0.5, "t": 0.75}
    ref = stats.chi2_contingency(np.array([[2, 2], [3, 1]]), correction=False)
    assert att.statistic == pytest.approx(ref.statistic)
    assert att.p_value == pytest.approx(ref.pvalue)
