"""Lee (2009) bounds against a test-side implementation (sorting and trimming written out,
and the closed form for a 0/1 outcome), the Imbens-Manski interval's defining equation,
and the bad inputs."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from experiments.analysis.adjustment import OutcomeInputError, TrialColumns
from experiments.analysis.bounds import imbens_manski, lee_bounds, trimmed_mean


def _lee_by_hand(y_t, y_c):
    """Lee's bounds from the respondents' values (NaN = did not answer), equal weights:
    sort the higher-response arm's respondents, drop q n of them (the last one in part)."""
    s_t, s_c = np.mean(~np.isnan(y_t)), np.mean(~np.isnan(y_c))
    t, c = np.sort(y_t[~np.isnan(y_t)]), np.sort(y_c[~np.isnan(y_c)])

    def trim(v, q, top):
        v = list(v if not top else v[::-1])  # the values to drop first come first
        drop = q * len(v)
        kept_total, kept_weight = 0.0, 0.0
        for value in v:
            w = min(1.0, max(0.0, 1.0 - drop)) if drop > 0 else 1.0
            drop = max(0.0, drop - 1.0)
            kept_total += w * value
            kept_weight += w
        return kept_total / kept_weight

    if s_t >= s_c:
        q = (s_t - s_c) / s_t
        return trim(t, q, top=True) - c.mean(), trim(t, q, top=False) - c.mean()
    q = (s_c - s_t) / s_c
    return t.mean() - trim(c, q, top=False), t.mean() - trim(c, q, top=True)


def _survey(n, seed, rate_t, rate_c, binary=False):
    rng = np.random.default_rng(seed)
    arm = np.where(np.arange(n) % 2 == 0, "message", "control")
    y = rng.binomial(1, 0.3, n).astype(float) if binary else rng.normal(2.0, 1.0, n).round(2)
    answered = rng.random(n) < np.where(arm == "message", rate_t, rate_c)
    return pd.DataFrame(
        {"arm": arm, "y": np.where(answered, y, np.nan), "answered": answered.astype(int)}
    )


@pytest.mark.parametrize("rates", [(0.75, 0.55), (0.5, 0.7), (0.6, 0.6)])
@pytest.mark.parametrize("binary", [False, True])
def test_bounds_equal_the_hand_written_trimming(rates, binary):
    frame = _survey(3001, 2, *rates, binary=binary)
    b = lee_bounds(frame, TrialColumns(), "y")[0]
    y = frame["y"].to_numpy()
    arm = frame["arm"].to_numpy()
    low, high = _lee_by_hand(y[arm == "message"], y[arm == "control"])
    assert b.lower == pytest.approx(low, abs=1e-12)
    assert b.upper == pytest.approx(high, abs=1e-12)
    assert b.lower <= b.respondents_only <= b.upper
    higher = b.response_arm >= b.response_control
    assert b.trimmed_arm == ("message" if higher else "control")


def test_binary_outcome_closed_form():
    """Trimming a share q of responders with a 0/1 outcome: dropping ones first leaves
    max(0, m - q) / (1 - q); dropping zeros first leaves min(1, m / (1 - q))."""
    frame = _survey(4000, 7, 0.8, 0.5, binary=True)
    b = lee_bounds(frame, TrialColumns(), "y", response="answered")[0]
    t = frame.loc[frame["arm"] == "message", "y"].dropna()
    c = frame.loc[frame["arm"] == "control", "y"].dropna()
    s_t = len(t) / (frame["arm"] == "message").sum()
    s_c = len(c) / (frame["arm"] == "control").sum()
    q = (s_t - s_c) / s_t
    m = t.mean()
    assert b.trimmed_share == pytest.approx(q)
    assert b.lower == pytest.approx(max(0.0, m - q) / (1 - q) - c.mean(), abs=1e-12)
    assert b.upper == pytest.approx(min(1.0, m / (1 - q)) - c.mean(), abs=1e-12)
    assert b.response_arm == pytest.approx(s_t) and b.response_control == pytest.approx(s_c)


def test_integer_weights_equal_repeated_rows():
    frame = _survey(600, 3, 0.7, 0.5)
    frame["p"] = np.where(np.arange(600) % 3 == 0, 1 / 3, 1 / 2)
    weighted = lee_bounds(frame, TrialColumns(probability="p"), "y")[0]
    copies = np.rint(1 / frame["p"]).astype(int)
    repeated = frame.loc[frame.index.repeat(copies)].reset_index(drop=True)
    plain = lee_bounds(repeated, TrialColumns(), "y")[0]
    assert weighted.lower == pytest.approx(plain.lower, abs=1e-12)
    assert weighted.upper == pytest.approx(plain.upper, abs=1e-12)


def test_trimmed_mean_fractional_cut():
    y = np.array([1.0, 2.0, 3.0, 4.0])
    w = np.ones(4)
    assert trimmed_mean(y, w, 0.375, top=True) == pytest.approx((1 + 2 + 0.5 * 3) / 2.5)
    assert trimmed_mean(y, w, 0.375, top=False) == pytest.approx((0.5 * 2 + 3 + 4) / 2.5)
    assert trimmed_mean(y, w, 0.0, top=True) == pytest.approx(2.5)
    with pytest.raises(ValueError):
        trimmed_mean(y, w, 1.0, top=True)


def test_imbens_manski_interval_solves_its_equation():
    low, high = imbens_manski(0.1, 0.3, 0.05, 0.04, 0.05)
    c = (0.1 - low) / 0.05
    assert (high - 0.3) / 0.04 == pytest.approx(c)
    width = 0.2 / 0.05
    assert stats.norm.cdf(c + width) - stats.norm.cdf(-c) == pytest.approx(0.95)
    # a point-identified effect gets the usual two-sided interval
    low, high = imbens_manski(0.2, 0.2, 0.05, 0.05, 0.05)
    assert (0.2 - low) / 0.05 == pytest.approx(stats.norm.ppf(0.975))
    assert all(math.isnan(v) for v in imbens_manski(0.1, math.nan, 0.1, 0.1, 0.05))


def test_bootstrap_interval_covers_the_bounds():
    frame = _survey(2000, 5, 0.75, 0.55)
    b = lee_bounds(frame, TrialColumns(), "y", bootstrap=200, seed=1)[0]
    assert 0 < b.lower_se < 0.2 and 0 < b.upper_se < 0.2
    assert b.ci_low < b.lower <= b.upper < b.ci_high
    again = lee_bounds(frame, TrialColumns(), "y", bootstrap=200, seed=1)[0]
    assert again == b
    d = b.to_dict()
    assert {"arm", "outcome", "lower", "upper"} <= set(d)


def test_bad_inputs():
    frame = _survey(100, 1, 0.6, 0.6)
    frame.loc[frame.index[0], "answered"] = 1
    frame.loc[frame.index[0], "y"] = np.nan
    with pytest.raises(
        OutcomeInputError, match=r"row 2 answered the survey \(answered = 1\) but has no y"
    ):
        lee_bounds(frame, TrialColumns(), "y", response="answered")
    frame["answered"] = 2
    with pytest.raises(OutcomeInputError, match="must be 0 or 1"):
        lee_bounds(frame, TrialColumns(), "y", response="answered")
    frame["y"] = np.nan
    with pytest.raises(OutcomeInputError, match="no respondents"):
        lee_bounds(frame, TrialColumns(), "y")
