"""The analysis entry point: dropped rows, families, multiplicity and refused inputs."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from statsmodels.stats.multitest import multipletests

from experiments.analysis import AnalysisInputError, analyze, benjamini_hochberg
from experiments.bands import BandSpec

AGE = BandSpec("age", (35.0, 55.0), ("18-34", "35-54", "55+"))
SE = BandSpec("self_efficacy", (2.5, 3.5), ("low", "middle", "high"))


def trial(n=3000, seed=0, arms=("control", "peer", "info")):
    rng = np.random.default_rng(seed)
    arm = rng.choice(arms, n)
    y = (rng.random(n) < 0.1 + 0.04 * (arm == "peer")).astype(float)
    return pd.DataFrame(
        {
            "arm": arm,
            "joined": y,
            "age": rng.integers(18, 80, n),
            "self_efficacy": rng.uniform(1, 5, n),
            "gender": rng.choice(["f", "m"], n),
        }
    )


def test_rows_missing_the_outcome_are_dropped_and_a_missing_moderator_only_in_its_subgroups():
    df = trial()
    df.loc[:9, "joined"] = np.nan
    df.loc[5:24, "age"] = np.nan  # 5..9 also miss the outcome
    full = analyze(df, arm="arm", control="control", outcome="joined", moderators=[AGE])
    assert full.dropped["missing_outcome"] == 10
    assert full.dropped["missing_moderator"] == {"age": 15}
    assert full.dropped["total"] == 10
    assert full.n_analysed == len(df) - 10
    kept = df.dropna(subset=["joined"])
    again = analyze(kept, arm="arm", control="control", outcome="joined")
    assert {e.arm: e.estimate for e in full.effects} == {e.arm: e.estimate for e in again.effects}
    assert sum(a.n for a in full.arms) == len(kept)
    assert sum(s.n for s in full.subgroups if s.arm == "peer") + sum(
        s.n_treatment for s in full.subgroups if s.arm == "info"
    ) == len(kept.dropna(subset=["age"]))
    # the sample ratio test counts every allocated row
    assert sum(full.srm.observed.values()) == len(df)
    assert any(w.code == "dropped_rows" for w in full.warnings)
    assert any("that moderator's subgroups only" in w.message for w in full.warnings)


def test_preregistered_moderators_are_confirmatory_with_holm_others_bh():
    df = trial(seed=2)
    res = analyze(
        df,
        arm="arm",
        control="control",
        outcome="joined",
        moderators=[AGE, SE, BandSpec("gender")],
        preregistered=["age", "self_efficacy"],
    )
    conf = [s for s in res.subgroups if s.family == "confirmatory"]
    expl = [s for s in res.subgroups if s.family == "exploratory"]
    assert {s.moderator for s in conf} == {"age", "self_efficacy"}
    assert {s.moderator for s in expl} == {"gender"}
    holm = multipletests([s.p_value for s in conf], method="holm")[1]
    assert [s.p_adjusted for s in conf] == pytest.approx(list(holm))
    assert [s.p_adjusted for s in expl] == pytest.approx(
        list(benjamini_hochberg([s.p_value for s in expl]))
    )
    # "do effects differ across subgroups": homogeneity tests and slopes, one family
    tests_conf = [t for t in res.interactions if t.family == "confirmatory"]
    slopes_conf = [t for t in res.slopes if t.family == "confirmatory"]
    assert len(tests_conf) == 4 and len(slopes_conf) == 4  # 2 moderators x 2 arms
    differ = tests_conf + slopes_conf
    assert [t.p_adjusted for t in differ] == pytest.approx(
        list(multipletests([t.p_value for t in differ], method="holm")[1])
    )
    expl = [t for t in res.interactions if t.family == "exploratory"]
    assert [t.p_adjusted for t in expl] == pytest.approx(
        list(benjamini_hochberg([t.p_value for t in expl]))
    )
    effects_holm = multipletests([e.p_value for e in res.effects], method="holm")[1]
    assert [e.p_adjusted for e in res.effects] == pytest.approx(list(effects_holm))


def test_correction_none_and_bh_for_arms():
    df = trial(seed=3)
    none = analyze(df, arm="arm", control="control", outcome="joined", correction="none")
    assert [e.p_adjusted for e in none.effects] == [e.p_value for e in none.effects]
    bh = analyze(df, arm="arm", control="control", outcome="joined", correction="bh")
    assert [e.p_adjusted for e in bh.effects] == pytest.approx(
        list(multipletests([e.p_value for e in bh.effects], method="fdr_bh")[1])
    )


def test_srm_against_given_weights_flags_a_broken_split():
    df = trial(n=6000, seed=4, arms=("control", "peer"))
    df = pd.concat([df, df[df.arm == "peer"].iloc[:600]])
    res = analyze(df, arm="arm", control="control", outcome="joined")
    assert res.srm.flagged and any(w.code == "srm" for w in res.warnings)
    ok = analyze(
        df, arm="arm", control="control", outcome="joined", weights={"control": 3000, "peer": 3600}
    )
    assert not ok.srm.flagged


@pytest.mark.parametrize(
    "kwargs, fragment",
    [
        (dict(outcome="nope"), "no column 'nope'"),
        (dict(control="placebo"), "control value 'placebo' does not occur"),
        (dict(moderators=[BandSpec("self_efficacy_followup")]), "no column"),
        (dict(moderators=[BandSpec("gender", (1.0,))]), "not numeric"),
        (dict(covariates=["joined"]), "measured after the message"),
        (dict(moderators=[AGE, BandSpec("age")]), "given twice"),
        (dict(moderators=[BandSpec("arm")]), "arm column 'arm' cannot also be"),
    ],
)
def test_bad_inputs_raise_one_clear_error(kwargs, fragment):
    df = trial(n=200)
    args = dict(arm="arm", control="control", outcome="joined") | kwargs
    with pytest.raises(AnalysisInputError, match=fragment):
        analyze(df, **args)


def test_post_treatment_moderator_is_refused():
    df = trial(n=200)
    df["self_efficacy_followup"] = df["self_efficacy"]
    with pytest.raises(AnalysisInputError, match="measured after the message"):
        analyze(
            df,
            arm="arm",
            control="control",
            outcome="joined",
            moderators=[BandSpec("self_efficacy_followup", (3.0,))],
        )


def test_non_numeric_outcome_small_arm_and_missing_moderator():
    df = trial(n=200)
    df["text"] = "yes"
    with pytest.raises(AnalysisInputError, match="outcome column 'text' is not numeric.*row 1"):
        analyze(df, arm="arm", control="control", outcome="text")
    df2 = pd.concat(
        [
            df,
            pd.DataFrame(
                {
                    "arm": ["lonely"],
                    "joined": [1.0],
                    "age": [30],
                    "self_efficacy": [3.0],
                    "gender": ["f"],
                }
            ),
        ]
    )
    with pytest.raises(AnalysisInputError, match="arm 'lonely' has 1 row"):
        analyze(df2, arm="arm", control="control", outcome="joined")
    df["blank"] = np.nan
    with pytest.raises(AnalysisInputError, match="'blank' is missing on every row"):
        analyze(df, arm="arm", control="control", outcome="joined", moderators=[BandSpec("blank")])


def test_boolean_outcome_and_arm_values_kept_as_text():
    df = trial(n=400)
    df["arm"] = df["arm"].map({"control": 0, "peer": 1, "info": 2})
    df["joined"] = df["joined"].astype(bool)
    res = analyze(df, arm="arm", control="0", outcome="joined")
    assert [a.arm for a in res.arms][0] == "0"
    assert {e.arm for e in res.effects} == {"1", "2"}
    assert res.binary_outcome


def test_small_subgroup_and_underpowered_warnings():
    df = trial(n=300)
    res = analyze(
        df, arm="arm", control="control", outcome="joined", moderators=[SE], minimum_effect=0.01
    )
    codes = {w.code for w in res.warnings}
    assert {"small_subgroup", "underpowered"} <= codes


def test_balance_flow_and_attrition_agree_with_the_diagnostics_module():
    from experiments.diagnostics import attrition, consort_flow, standardized_differences

    df = trial(n=900, seed=9)
    rng = np.random.default_rng(9)
    df["delivered"] = rng.integers(0, 2, len(df))
    df["exposed"] = df["delivered"] * rng.integers(0, 2, len(df))
    df["opted_out"] = (rng.random(len(df)) < 0.05).astype(int)
    df.loc[rng.random(len(df)) < 0.2, "joined"] = np.nan
    df.loc[:4, "gender"] = None
    res = analyze(
        df,
        arm="arm",
        control="control",
        outcome="joined",
        moderators=[AGE, BandSpec("gender")],
        covariates=["self_efficacy"],
    )
    ref = standardized_differences(df, "arm", "control", ["age", "gender", "self_efficacy"])
    key = lambda b: (b.covariate, b.level, b.arm)  # noqa: E731
    assert sorted(map(key, res.balance)) == sorted(map(key, ref))
    ref_by = {key(b): b for b in ref}
    for b in res.balance:
        r = ref_by[key(b)]
        assert b.difference == pytest.approx(r.difference, rel=1e-9)
        assert (b.n_treatment, b.n_control) == (r.n_treatment, r.n_control)
    arms = [a.arm for a in res.arms]
    # analysed = rows with an outcome (a missing moderator does not drop a row)
    assert [f.to_dict() for f in res.flow] == [
        f.to_dict() for f in consort_flow(df, "arm", "joined", arms)
    ]
    assert sum(f.analysed for f in res.flow) == res.n_analysed
    expected = attrition(df, "arm", "joined", "control", arms)
    assert res.attrition.to_dict() == pytest.approx(expected.to_dict())


def test_a_block_too_small_is_pooled_not_dropped_and_the_estimator_stays_blocked():
    df = trial(n=600, seed=12)
    df["block"] = np.where(np.arange(len(df)) % 2 == 0, "a", "b")
    df.loc[df.index[:3], "block"] = "tiny"
    df.loc[df.index[:3], "arm"] = ["control", "peer", "info"]
    res = analyze(df, arm="arm", control="control", outcome="joined", block="block")
    assert res.block == "block" and all(e.method == "blocked" for e in res.effects)
    assert res.n_analysed == len(df)
    (pool,) = res.design.pools
    assert set(pool.members) == {"a", "tiny"}  # the smaller whole stratum takes it in
    assert any(w.code == "pooled_strata" and "tiny" in w.message for w in res.warnings)


@pytest.mark.parametrize(
    "options",
    [
        {},
        {"covariates": ["age", "self_efficacy"]},
        {"block": "stratum"},
        {"cluster": "cl"},
        {"cluster": "cl", "covariates": ["age"]},
    ],
)
def test_tiny_degenerate_trials_give_error_codes_not_numpy_warnings(options):
    """Warnings are errors in this suite: any numpy warning would fail here."""
    from experiments.report import build_report

    for seed in range(60):
        rng = np.random.default_rng(seed)
        n = int(rng.integers(4, 40))
        rate = rng.choice([0, 0.05, 0.5, 1])
        df = pd.DataFrame(
            {
                "arm": rng.choice(["c", "t", "u"], n),
                "y": (rng.random(n) < rate).astype(float),
                "age": rng.choice([20, 40, 60, 70], n).astype(float),
                "self_efficacy": rng.choice([1.0, 3.0, 3.0, 4.5], n),
                "stratum": rng.choice(["a", "b"], n),
                "cl": rng.integers(0, max(2, n // 3), n),
                "g": rng.choice(["f", "m"], n),
            }
        )
        try:
            r = analyze(
                df,
                arm="arm",
                control="c",
                outcome="y",
                moderators=[AGE, SE, BandSpec("g")],
                minimum_effect=0.03,
                **options,
            )
        except AnalysisInputError:
            continue
        report = build_report(r, title="t", source="s")
        assert report.to_html() and report.to_csv() and "NaN" not in report.to_json()
