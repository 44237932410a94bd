"""Whom a report is about: the eligible population beside the assessed, counted level by
level and checked against pandas' own crosstab."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from experiments.population import NOT_KNOWN, describe


def frame(n: int = 500, seed: int = 1) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    age = rng.integers(16, 90, n).astype(float)
    age[rng.random(n) < 0.05] = np.nan
    out = pd.DataFrame(
        {
            "age": age,
            "self_efficacy": np.round(rng.uniform(1, 5, n), 2),
            "individual_coproduction": rng.integers(0, 5, n).astype(float),
            "collective_coproduction": rng.integers(0, 4, n).astype(float),
        }
    )
    out["eligible"] = (out.individual_coproduction >= 1) & (out.collective_coproduction == 0)
    return out


def test_counts_and_shares_match_a_crosstab():
    data = frame()
    population = describe(
        data, rules=["individual_coproduction >= 1", "collective_coproduction = 0"]
    )
    assert population.assessed == 500 and population.eligible == int(data.eligible.sum())
    rows = pd.DataFrame([r.to_dict() for r in population.rows])
    age = pd.cut(data.age, [-np.inf, 35, 55, np.inf], right=False, labels=["18-34", "35-54", "55+"])
    table = pd.crosstab(age.astype(object).fillna(NOT_KNOWN), data.eligible)
    got = rows[rows.variable == "age"].set_index("level")
    assert list(got.index) == ["18-34", "35-54", "55+", NOT_KNOWN]
    for level in got.index:
        assert got.loc[level, "assessed"] == table.loc[level].sum()
        assert got.loc[level, "eligible"] == table.loc[level].get(True, 0)
        assert got.loc[level, "assessed_share"] == pytest.approx(table.loc[level].sum() / 500)
    individual = rows[rows.variable == "individual_coproduction"].set_index("level")
    assert individual.loc["none", "eligible"] == 0
    assert individual.loc["none", "assessed"] == int((data.individual_coproduction == 0).sum())
    assert individual.loc["two or more", "assessed"] == int(
        (data.individual_coproduction >= 2).sum()
    )
    collective = rows[rows.variable == "collective_coproduction"].set_index("level")
    assert list(collective.index) == [
        "Never",
        "Once or a few times a year",
        "About once a month",
        "Every week or more often",
    ]
    assert collective.loc["Never", "eligible"] == population.eligible
    assert collective.loc["Every week or more often", "eligible"] == 0
    for variable, group in rows.groupby("variable"):
        assert group.assessed.sum() == 500, variable
        assert group.eligible_share.sum() == pytest.approx(1.0), variable


def test_the_sentence_names_the_rules_and_the_share():
    data = frame(100)
    population = describe(data, rules=["age >= 18"])
    text = population.sentence
    assert "met every eligibility rule (age >= 18)" in text
    assert f"{population.eligible:,} of the 100 assessed" in text
    assert "no eligibility rules" in describe(data.assign(eligible=True)).sentence


def test_nobody_eligible_gives_no_share_not_a_division_error():
    data = frame(20).assign(eligible=False)
    population = describe(data, rules=["age >= 18"])
    assert population.eligible == 0
    assert all(r.eligible_share is None for r in population.rows)
