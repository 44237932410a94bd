"""The simulator's follow-up: verified attendance and sessions, self-reports that
over-report, individual co-production kept or dropped, follow-up self-efficacy carrying
part of each arm's effect; the expected values behind the truth match the simulated
frequencies, and the truth aggregates say what they claim."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from experiments.simulate import (
    CATALOG_EFFECTS,
    OUTCOMES,
    SURVEY_OUTCOMES,
    ArmEffect,
    collective_probability,
    expected_outcome,
    simulate_population,
    simulate_responses,
    true_effects,
    true_effects_by_outcome,
    true_mediated,
    with_params,
)

EFFECTS = CATALOG_EFFECTS["self-efficacy-cleanup"]


@pytest.fixture(scope="module")
def population() -> pd.DataFrame:
    return simulate_population(60_000, seed=15)


@pytest.mark.parametrize("arm", ["control", "efficacy"])
def test_expected_outcomes_match_the_simulated_frequencies(population, arm):
    everyone = with_params(survey_response=1.0, survey_response_joined=1.0)
    r = simulate_responses(population, [arm] * len(population), EFFECTS, seed=3, params=everyone)
    for outcome in OUTCOMES:
        simulated = r[outcome].to_numpy(dtype=float)
        expected = expected_outcome(population, outcome, arm, EFFECTS, everyone)
        se = simulated.std() / np.sqrt(len(simulated))
        assert abs(simulated.mean() - expected.mean()) < 4 * se, (outcome, arm)


def test_outcomes_are_consistent(population):
    arms = np.where(np.arange(len(population)) % 2 == 0, "control", "efficacy")
    r = simulate_responses(population, arms, EFFECTS, seed=4, exposure=0.7)
    assert set(r["attended"]) == {0, 1}
    assert ((r["sessions_attended"] > 0) == (r["attended"] == 1)).all()
    assert r["sessions_attended"].between(0, 4).all()
    assert (r["attended_repeat"] <= r["attended"]).all()
    done = r["surveyed"] == 1
    for outcome in SURVEY_OUTCOMES:
        assert r[outcome].isna().equals(~done), outcome
    # nobody forgets coming: a self-report never denies verified attendance
    assert (r.loc[done, "participated"] >= r.loc[done, "attended"]).all()
    assert (r.loc[done, "collective_coproduction"] >= r.loc[done, "attended"]).all()
    assert r.loc[done, "individual_coproduction"].between(0, 6).all()
    # those who joined mostly came; some came without joining
    assert r.loc[r["joined"] == 1, "attended"].mean() > 0.6
    assert 0 < r.loc[r["joined"] == 0, "attended"].mean() < 0.15


def test_the_efficacy_message_overreports_more(population):
    arms = np.where(np.arange(len(population)) % 2 == 0, "control", "efficacy")
    r = simulate_responses(population, arms, EFFECTS, seed=5)
    done = r[(r["surveyed"] == 1) & (r["attended"] == 0)]
    said = done.groupby("arm")["participated"].mean()
    assert said["efficacy"] - said["control"] == pytest.approx(0.03, abs=0.01)
    assert said["control"] == pytest.approx(0.04, abs=0.008)


def test_substitution_moves_individual_co_production(population):
    attend = {"control": ArmEffect(), "big": ArmEffect(log_odds=1.5)}
    attended = true_effects(population, attend, outcome="attended").overall["big"]
    assert attended > 0.05
    for substitution in (0.3, 0.0, -0.1):
        p = with_params(substitution=substitution)
        te = true_effects(population, attend, outcome="individual_coproduction", params=p)
        # E[change] = -substitution x baseline activities x change in attendance
        d_att = expected_outcome(population, "attended", "big", attend, p) - expected_outcome(
            population, "attended", "control", attend, p
        )
        exact = float(np.mean(-substitution * population["individual_coproduction"] * d_att))
        assert te.overall["big"] == pytest.approx(exact)
        assert np.sign(te.overall["big"]) == -np.sign(substitution)
        assert abs(te.overall["big"]) <= abs(substitution) * 6 * attended


def test_mediated_effect_is_the_collective_change_carried_by_self_efficacy(population):
    mediated = true_mediated(population, EFFECTS)["efficacy"]
    by_outcome = true_effects_by_outcome(population, EFFECTS)
    total = by_outcome["collective_coproduction"]["efficacy"]
    assert 0 < mediated < total
    assert by_outcome["self_efficacy_followup"]["efficacy"] > 0.1
    # the definition: average over both arms of moving only the mediator
    parts = [
        collective_probability(population, status, EFFECTS, mediator_arm="efficacy")
        - collective_probability(population, status, EFFECTS, mediator_arm="control")
        for status in ("efficacy", "control")
    ]
    assert mediated == pytest.approx(float(np.mean(parts)))
    # nothing is mediated when the message leaves self-efficacy alone or it pulls nothing
    flat = {"control": ArmEffect(), "efficacy": ArmEffect(log_odds=0.45)}
    assert true_mediated(population, flat)["efficacy"] == pytest.approx(0.0, abs=1e-12)
    no_pull = with_params(efficacy_pull=0.0)
    assert true_mediated(population, EFFECTS, params=no_pull)["efficacy"] == pytest.approx(
        0.0, abs=1e-12
    )
    # every outcome has a truth for every arm
    assert set(by_outcome) == set(OUTCOMES)
    assert all(set(v) == {"efficacy"} for v in by_outcome.values())


def test_partial_exposure_dilutes_every_effect(population):
    full = true_effects_by_outcome(population, EFFECTS)
    half = true_effects_by_outcome(population, EFFECTS, exposure=0.5)
    for outcome in ("joined", "attended", "self_efficacy_followup"):
        assert half[outcome]["efficacy"] == pytest.approx(full[outcome]["efficacy"] / 2, rel=1e-9)


def test_bad_follow_up_parameters_are_refused():
    f = simulate_population(10, seed=1)
    for change, message in (
        ({"sessions": 0}, "sessions must be at least 1"),
        ({"repeat_from_session": 5}, "repeat_from_session"),
        ({"substitution": 0.9}, "individual_keep - substitution"),
        ({"overreport": 1.2}, "overreport must be between 0 and 1"),
        ({"efficacy_pull": -0.1}, "efficacy_pull"),
    ):
        with pytest.raises(ValueError, match=message):
            simulate_responses(f, ["control"] * 10, params=with_params(**change))
    with pytest.raises(ValueError, match="unknown outcome 'turnout'"):
        expected_outcome(f, "turnout", "control")  # type: ignore[arg-type]
