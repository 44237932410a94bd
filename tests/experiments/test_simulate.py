"""The simulator reproduces the survey's structure, is reproducible, and its true effects are right."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm

from experiments.bands import DEFAULT_AGE_BANDS, DEFAULT_SELF_EFFICACY_BANDS
from experiments.design import load_design
from experiments.simulate import (
    CATALOG_EFFECTS,
    COUNTRIES,
    FOLLOWUP_ITEMS,
    SELF_EFFICACY_ITEMS,
    ArmEffect,
    SimulationParams,
    join_probability,
    participation_probability,
    simulate_population,
    simulate_responses,
    true_effects,
    with_params,
)

CATALOG = Path(__file__).resolve().parents[2] / "experiments" / "catalog"


@pytest.fixture(scope="module")
def survey() -> pd.DataFrame:
    # About eight times the survey's 5,000, so the signs are not in doubt.
    return simulate_population(40_000, seed=2008)


def _design(frame: pd.DataFrame) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "const": 1.0,
            "age_decades": (frame["age"] - 50) / 10,
            "woman": (frame["gender"] == "woman").astype(float),
            "self_efficacy": frame["self_efficacy"],
            "council_regard": frame["council_regard"].astype(float),
        }
    )


def test_columns_ranges_and_types(survey):
    f = survey
    assert set(f["country"]) == set(COUNTRIES)
    assert set(f["gender"]) == {"woman", "man"}
    assert f["age"].between(18, 90).all() and f["age"].dtype.kind == "i"
    for item in SELF_EFFICACY_ITEMS:
        assert f[item].between(1, 5).all() and f[item].dtype.kind == "i"
    assert np.allclose(f["self_efficacy"], f[list(SELF_EFFICACY_ITEMS)].mean(axis=1), atol=1e-4)
    assert f["council_regard"].between(1, 5).all()
    assert f["individual_coproduction"].between(0, 6).all()
    assert set(f["collective_coproduction"]) == {0, 1}
    assert f["resident"].is_unique
    # every household lies in one neighbourhood; households hold 1-4 residents
    assert (f.groupby("household")["neighbourhood"].nunique() == 1).all()
    assert f.groupby("household").size().between(1, 4).all()
    # all three self-efficacy bands and all age bands are well populated
    for spec in (DEFAULT_AGE_BANDS, DEFAULT_SELF_EFFICACY_BANDS):
        shares = spec.assign(f[spec.column]).value_counts(normalize=True)
        assert set(shares.index) == set(spec.levels) and shares.min() > 0.15


def test_individual_coproduction_rises_with_age_and_being_a_woman(survey):
    fit = sm.GLM(
        survey["individual_coproduction"], _design(survey), family=sm.families.Poisson()
    ).fit()
    low = fit.conf_int()[0]
    assert low["age_decades"] > 0 and low["woman"] > 0
    assert low["self_efficacy"] > 0 and low["council_regard"] > 0


def test_collective_falls_with_age_weaker_and_ignores_gender(survey):
    fit = sm.Logit(survey["collective_coproduction"], _design(survey)).fit(disp=0)
    ci = fit.conf_int()
    assert ci.loc["age_decades", 1] < 0, "collective co-production must fall with age"
    assert ci.loc["self_efficacy", 0] > 0 and ci.loc["council_regard", 0] > 0
    # being a woman: no relation (a 99.9% interval around zero, at this fixed seed)
    assert abs(fit.params["woman"] / fit.bse["woman"]) < 3.3
    # age matters much less for the collective form than for the individual one
    corr = survey.assign(woman=(survey["gender"] == "woman").astype(float)).corr(numeric_only=True)
    assert (
        abs(corr.loc["age", "collective_coproduction"])
        < 0.5 * corr.loc["age", "individual_coproduction"]
    )
    assert abs(corr.loc["woman", "collective_coproduction"]) < 0.02
    assert corr.loc["woman", "individual_coproduction"] > 0.05


def test_self_efficacy_is_the_strongest_correlate_of_collective(survey):
    f = survey.assign(woman=(survey["gender"] == "woman").astype(float))
    corr = f.corr(numeric_only=True)["collective_coproduction"]
    others = ["age", "woman", "council_regard", "individual_coproduction"]
    assert all(corr["self_efficacy"] > abs(corr[name]) for name in others), corr
    # and in a joint model, per standard deviation of each correlate
    x = _design(survey)
    fit = sm.Logit(survey["collective_coproduction"], x).fit(disp=0)
    per_sd = {name: abs(fit.params[name]) * x[name].std() for name in x.columns[1:]}
    assert max(per_sd, key=per_sd.get) == "self_efficacy", per_sd


def test_same_seed_same_population_other_seed_differs():
    a = simulate_population(3000, seed=7)
    b = simulate_population(3000, seed=7)
    c = simulate_population(3000, seed=8)
    pd.testing.assert_frame_equal(a, b)
    assert not a["age"].equals(c["age"])
    arms = np.where(np.arange(3000) % 2 == 0, "control", "efficacy")
    effects = CATALOG_EFFECTS["self-efficacy-cleanup"]
    pd.testing.assert_frame_equal(
        simulate_responses(a, arms, effects, seed=1), simulate_responses(b, arms, effects, seed=1)
    )


def test_bad_input_is_refused_clearly():
    with pytest.raises(ValueError, match="positive whole number"):
        simulate_population(0)
    with pytest.raises(ValueError, match="country_shares needs 5"):
        simulate_population(10, params=with_params(country_shares=(1.0, 1.0)))
    with pytest.raises(ValueError, match="share_women"):
        simulate_population(10, params=with_params(share_women=1.5))
    f = simulate_population(10, seed=1)
    with pytest.raises(ValueError, match="3 entries for 10 residents"):
        simulate_responses(f, ["control"] * 3)
    with pytest.raises(ValueError, match="exposure"):
        join_probability(f, "control", exposure=1.5)


def test_join_probability_follows_the_arm_effect(survey):
    effects = {
        "low-se": ArmEffect(log_odds=0.3, per_self_efficacy_point=-0.4),
        "young": ArmEffect(log_odds=0.3, per_decade=-0.2),
    }
    p0 = join_probability(survey, "control", effects)
    assert np.allclose(p0, 1 / (1 + np.exp(-survey["true_join_logit"])))
    assert 0.07 < p0.mean() < 0.13, "control joining should be near 10%"
    lift = join_probability(survey, "low-se", effects) - p0
    logit_lift = (
        np.log(
            join_probability(survey, "low-se", effects)
            / (1 - join_probability(survey, "low-se", effects))
        )
        - survey["true_join_logit"]
    )
    assert np.allclose(logit_lift, 0.3 - 0.4 * (survey["self_efficacy"] - 3))
    assert lift[survey["self_efficacy"] <= 2].mean() > lift[survey["self_efficacy"] >= 4].mean()
    half = join_probability(survey, "young", effects, exposure=0.5)
    assert np.allclose(half, 0.5 * join_probability(survey, "young", effects))


def test_catalog_effects_match_the_catalog_arms():
    for slug, effects in CATALOG_EFFECTS.items():
        design = load_design(str(CATALOG / f"{slug}.toml"))
        assert design.slug == slug
        assert sorted(effects) == sorted(arm.key for arm in design.arms)
        assert effects[design.control.key] == ArmEffect()


def test_catalog_heterogeneity_runs_the_way_the_hypotheses_say(survey):
    te = true_effects(survey, CATALOG_EFFECTS["self-efficacy-cleanup"])
    se = te.by_band["self_efficacy"]["efficacy"]
    assert se["low"] > se["middle"] > se["high"]
    te = true_effects(survey, CATALOG_EFFECTS["peer-invitation-young"])
    for arm in ("peer", "peer-practical"):
        age = te.by_band["age"][arm]
        assert age["18-34"] > age["35-54"] > age["55+"] >= 0
    te = true_effects(survey, CATALOG_EFFECTS["council-consultation"])
    assert te.overall["consultation"] > te.overall["information"] > 0
    frame = te.to_frame()
    assert set(frame["moderator"]) == {"", "age", "self_efficacy"}
    assert len(frame) == 2 * (1 + 3 + 3)


def test_true_effects_are_averages_of_the_probability_differences(survey):
    effects = CATALOG_EFFECTS["peer-invitation-young"]
    te = true_effects(survey, effects)
    diff = join_probability(survey, "peer", effects) - join_probability(survey, "control", effects)
    assert te.overall["peer"] == pytest.approx(diff.mean())
    young = survey["age"] < 35
    assert te.by_band["age"]["peer"]["18-34"] == pytest.approx(diff[young].mean())
    assert te.band_sizes["age"]["18-34"] == young.sum()
    part = true_effects(survey, effects, outcome="participated")
    pdiff = participation_probability(survey, "peer", effects) - participation_probability(
        survey, "control", effects
    )
    assert part.overall["peer"] == pytest.approx(pdiff.mean())
    # taking part follows joining, less than one for one
    assert 0 < part.overall["peer"] < te.overall["peer"]


def test_simulated_responses_are_consistent():
    f = simulate_population(20_000, seed=5)
    arms = np.where(np.arange(len(f)) % 2 == 0, "control", "efficacy")
    effects = CATALOG_EFFECTS["self-efficacy-cleanup"]
    r = simulate_responses(f, arms, effects, seed=9, exposure=0.6)
    assert (r["joined"] <= r["exposed"]).all()
    assert r["exposed"].mean() == pytest.approx(0.6, abs=0.02)
    assert r["participated"].isna().equals(r["surveyed"] == 0)
    for item in FOLLOWUP_ITEMS:
        assert r[item].isna().equals(r["surveyed"] == 0)
        assert r[item].dropna().between(1, 5).all()
    done = r[r["surveyed"] == 1]
    # those who joined mostly took part; the rest rarely
    assert done.loc[done["joined"] == 1, "participated"].mean() > 0.6
    assert done.loc[done["joined"] == 0, "participated"].mean() < 0.15
    # the joining rate in each arm matches the model's probability
    for arm in ("control", "efficacy"):
        mask = arms == arm
        expected = join_probability(f[mask], arm, effects, exposure=0.6).mean()
        assert r.loc[mask, "joined"].mean() == pytest.approx(expected, abs=0.012)
    # follow-up self-efficacy tracks the baseline (same person) and is an outcome
    assert (
        np.corrcoef(f.loc[done.index, "self_efficacy"], done["self_efficacy_followup"])[0, 1] > 0.5
    )


def test_default_params_are_documented():
    import experiments.simulate as module

    source = Path(module.__file__).read_text()
    for name in SimulationParams.__dataclass_fields__:
        # each parameter is followed by its docstring in the module
        start = source.index(f"    {name}:")
        assert '"""' in source[start:].splitlines()[1], f"{name} has no docstring"
