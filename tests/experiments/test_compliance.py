"""The complier average causal effect equals linearmodels' 2SLS to 1e-8 (covariates,
strata, weights, clusters, several arms) and the Wald ratio without covariates."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from linearmodels.iv import IV2SLS

from experiments.analysis.adjustment import OutcomeInputError, TrialColumns
from experiments.analysis.compliance import LABEL, complier_effects


def _trial(n=3000, seed=2):
    rng = np.random.default_rng(seed)
    arm = rng.choice(["control", "efficacy", "peer"], n)
    age = rng.uniform(18, 90, n)
    opens = rng.random(n) < 0.4 + 0.004 * (age - 50)  # who reads a message when sent one
    seen = (opens & (arm != "control")).astype(float)
    # control rows may record seeing the control page: ignored (one-sided non-compliance)
    seen_recorded = np.where(arm == "control", opens, seen).astype(float)
    effect = np.select([arm == "efficacy", arm == "peer"], [0.15, 0.05], 0.0)
    y = (rng.random(n) < 0.1 + 0.1 * opens + seen * effect).astype(float)
    return pd.DataFrame(
        {
            "arm": arm,
            "age": age,
            "seen": seen_recorded,
            "joined": y,
            "stratum": np.where(age < 45, "young", "old"),
            "household": rng.integers(0, 600, n),
            "p": np.where(age < 45, 1 / 3, 1 / 3),
        }
    )


def _reference(frame, covariates=(), strata=False, weights=None, clusters=None):
    d = pd.get_dummies(frame["arm"])[["efficacy", "peer"]].astype(float)
    exog = pd.DataFrame({"const": 1.0}, index=frame.index)
    for c in covariates:
        exog[c] = frame[c] - frame[c].mean()
    if strata:
        s = (frame["stratum"] == "young").astype(float)
        exog["young"] = s - s.mean()
    endog = d.mul(frame["seen"], axis=0).add_suffix("_seen")
    kw = {"clusters": clusters} if clusters is not None else {}
    return IV2SLS(frame["joined"], exog, endog, d, weights=weights).fit(
        cov_type="clustered" if clusters is not None else "robust", debiased=True, **kw
    )


def _check(rows, ref):
    for r in rows:
        name = f"{r.arm}_seen"
        assert r.effect.estimate == pytest.approx(ref.params[name], abs=1e-8)
        assert r.effect.std_error == pytest.approx(ref.std_errors[name], abs=1e-8)
        low, high = ref.conf_int().loc[name]
        if ref.cov_type == "robust":  # debiased: t with N - K df, as ours
            assert r.effect.ci_low == pytest.approx(low, abs=1e-8)
            assert r.effect.ci_high == pytest.approx(high, abs=1e-8)


def test_equals_linearmodels_2sls_with_covariates():
    frame = _trial()
    rows = complier_effects(frame, TrialColumns(covariates=("age",)), "joined", "seen")
    assert [r.arm for r in rows] == ["efficacy", "peer"]
    _check(rows, _reference(frame, covariates=("age",)))


def test_equals_linearmodels_with_strata_weights_and_clusters():
    frame = _trial()
    frame["p"] = np.where(frame["age"] < 45, 0.25, 0.4)
    cols = TrialColumns(covariates=("age",), stratum="stratum", cluster="household")
    _check(
        complier_effects(frame, cols, "joined", "seen"),
        _reference(frame, ("age",), strata=True, clusters=frame["household"]),
    )
    weighted = complier_effects(frame, TrialColumns(probability="p"), "joined", "seen")
    _check(weighted, _reference(frame, weights=1 / frame["p"]))


def test_without_covariates_it_is_the_wald_ratio():
    frame = _trial()
    rows = {r.arm: r for r in complier_effects(frame, TrialColumns(), "joined", "seen")}
    c = frame[frame["arm"] == "control"]
    for arm in ("efficacy", "peer"):
        t = frame[frame["arm"] == arm]
        itt = t["joined"].mean() - c["joined"].mean()
        assert rows[arm].compliance == pytest.approx(t["seen"].mean())
        assert rows[arm].effect.estimate == pytest.approx(itt / t["seen"].mean(), abs=1e-12)
    d = rows["efficacy"].to_dict()
    assert {"arm", "estimate", "ci_low", "ci_high"} <= set(d) and d["label"] == LABEL


def test_bad_inputs():
    frame = _trial(300)
    frame.loc[frame.index[3], "seen"] = 2
    with pytest.raises(OutcomeInputError, match="exposure column 'seen' must be 0 or 1"):
        complier_effects(frame, TrialColumns(), "joined", "seen")
    frame["seen"] = 0.0
    with pytest.raises(OutcomeInputError, match="nobody in arm 'efficacy' saw the message"):
        complier_effects(frame, TrialColumns(), "joined", "seen")
    with pytest.raises(OutcomeInputError, match="no exposure column 'opened'"):
        complier_effects(frame, TrialColumns(), "joined", "opened")
