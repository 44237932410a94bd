"""The baseline-variable registry: declarations, reading answers, values, and the names
the design files derive from it (no app needed)."""

from __future__ import annotations

import pytest

from experiments import baseline
from experiments.bands import BandSpec
from experiments.baseline import BaselineVariable, BirthYear, DeclarationError, Item, Option
from experiments.design import (
    OUTCOMES,
    POST_TREATMENT,
    PRE_TREATMENT,
    default_strata,
    moderator_bands,
    parse_design,
)

YEAR = 2026


def read(name: str, **cells):
    return baseline.get(name).read(cells, YEAR)


def test_age_or_year_of_birth():
    assert read("age", age="40").fields == {"age": 40, "birth_year": None}
    assert read("age", birth_year="1980").fields == {"age": 46, "birth_year": 1980}
    assert read("age", age="46", birth_year="1980").problems == {}
    assert "does not match" in read("age", age="30", birth_year="1980").problems["age"]
    assert "impossible" in read("age", age="7").problems["age"]
    assert "whole number" in read("age", age="thirty").problems["age"]
    assert "whole number" in read("age", age="40.5").problems["age"]
    assert read("age", age="40.0").fields["age"] == 40  # as a spreadsheet may write it
    assert "impossible" in read("age", birth_year="1900").problems["birth_year"]
    assert read("age", age="", birth_year="").fields == {"age": None, "birth_year": None}


def test_choice_with_spellings_and_an_ordered_choice():
    assert read("gender", gender="Female").fields == {"gender": "woman"}
    assert read("gender", gender="prefer not to say").fields == {"gender": "prefer_not_to_say"}
    assert "must be one of woman, man" in read("gender", gender="x").problems["gender"]
    collective = baseline.get("collective_coproduction")
    assert collective.read({"collective_coproduction": "weekly"}, YEAR).fields == {
        "collective_coproduction": 3
    }
    assert collective.value({"collective_coproduction": 0}) == 0


def test_multiple_choice_counts_what_was_chosen():
    v = baseline.get("individual_coproduction")
    form = v.read({"individual_coproduction": ["recycle", "secure_home", "recycle"]}, YEAR)
    assert form.fields == {"individual_coproduction": ["recycle", "secure_home"]}
    assert v.value(form.fields) == 2
    assert v.value(v.read({"individual_coproduction": []}, YEAR).fields) == 0  # none ticked
    csv_cell = v.read({"individual_coproduction": "recycle; save_energy"}, YEAR)
    assert csv_cell.fields == {"individual_coproduction": ["recycle", "save_energy"]}
    assert v.read({"individual_coproduction": "none"}, YEAR).fields == {
        "individual_coproduction": []
    }
    assert v.value(v.read({"individual_coproduction": ""}, YEAR).fields) is None  # unknown
    bad = v.read({"individual_coproduction": "recycle;juggling"}, YEAR)
    assert "'juggling'" in bad.problems["individual_coproduction"]


def test_score_is_the_mean_of_all_its_items():
    full = read("self_efficacy", se_safety="2", se_environment="3", se_health="5")
    assert full.fields["self_efficacy"] == pytest.approx(10 / 3)
    partial = read("self_efficacy", se_safety="2")
    assert partial.fields["self_efficacy"] is None and partial.problems == {}
    v = baseline.get("self_efficacy")
    assert v.missing(partial.fields) == {
        "se_environment": "is required: choose an answer",
        "se_health": "is required: choose an answer",
    }
    assert "from 1 to 5" in read("self_efficacy", se_safety="6").problems["se_safety"]
    # The value is read back from the items when the mean was not kept.
    assert v.value({"se_safety": 1, "se_environment": 2, "se_health": 3}) == 2


def test_text_has_a_length_limit():
    assert read("country", country=" DK ").fields == {"country": "DK"}
    assert "too long" in read("country", country="x" * 33).problems["country"]


def test_types_and_allowed_values_an_eligibility_rule_can_check():
    expected = {
        "age": ("number", (16.0, 110.0), None),
        "gender": ("category", None, ("woman", "man", "another", "prefer_not_to_say")),
        "self_efficacy": ("number", (1.0, 5.0), None),
        "individual_coproduction": ("number", (0.0, 6.0), None),
        "collective_coproduction": ("number", (0.0, 3.0), None),
        "country": ("category", None, None),
    }
    found = {v.name: (v.value_type, v.value_range, v.categories) for v in baseline.variables()}
    assert found == expected


def test_follow_up_variables_are_outcomes_never_moderators():
    asked_again = {v.name for v in baseline.follow_up_variables()}
    assert asked_again == {"self_efficacy", "individual_coproduction", "collective_coproduction"}
    for name in asked_again:
        assert f"{name}_followup" in OUTCOMES and f"{name}_followup" in POST_TREATMENT
        assert f"{name}_followup" not in PRE_TREATMENT


def test_every_example_reads_back_without_a_problem():
    for v in baseline.variables():
        reading = v.read(v.example(), YEAR)
        assert reading.problems == {}, v.name
        if v.kind != "text":
            assert v.value(reading.fields) is not None, v.name


def test_declarations_are_checked():
    with pytest.raises(DeclarationError, match="needs options"):
        BaselineVariable(name="x", kind="choice", question="?")
    with pytest.raises(DeclarationError, match="minimum and a maximum"):
        BaselineVariable(name="x", kind="integer", question="?")
    with pytest.raises(DeclarationError, match="lowercase"):
        BaselineVariable(name="X y", kind="text", question="?")
    with pytest.raises(DeclarationError, match="whole-number options"):
        BaselineVariable(name="x", kind="score", question="?", options=(Option("a", "A"),))
    with pytest.raises(DeclarationError, match="year of birth"):
        BaselineVariable(name="x", kind="text", question="?", birth_year=BirthYear("y", "", ""))
    with pytest.raises(DeclarationError, match="bands are for 'age'"):
        BaselineVariable(
            name="x", kind="integer", question="?", minimum=0, maximum=9, bands=BandSpec("age")
        )
    with pytest.raises(DeclarationError, match="asked at baseline"):
        BaselineVariable(name="x", kind="text", question="?", survey=False, follow_up=True)


def test_registering_refuses_names_already_in_use():
    def text(name: str, **kw) -> BaselineVariable:
        return BaselineVariable(name=name, kind="text", question="?", **kw)

    with pytest.raises(DeclarationError, match="already registered"):
        baseline.register(text("age"))
    with pytest.raises(DeclarationError, match="email already in use"):
        baseline.register(text("email"))
    score = BaselineVariable(
        name="trust",
        kind="score",
        question="?",
        options=(Option(1, "1"), Option(2, "2")),
        items=(Item("se_health", "?", "!"),),
    )
    with pytest.raises(DeclarationError, match="se_health already in use"):
        baseline.register(score)
    with pytest.raises(DeclarationError, match="self_efficacy_followup already in use"):
        baseline.register(text("self_efficacy_followup"))
    assert "trust" not in PRE_TREATMENT


def test_design_names_follow_a_registration():
    variable = BaselineVariable(
        name="years_in_area",
        kind="integer",
        question="?",
        minimum=0,
        maximum=100,
        bands=BandSpec("years_in_area", (5.0, 20.0)),
        follow_up=True,
    )
    assert "years_in_area" not in PRE_TREATMENT
    baseline.register(variable)
    try:
        assert "years_in_area" in PRE_TREATMENT and "years_in_area_followup" in OUTCOMES
        assert PRE_TREATMENT[-1] == "years_in_area" and len(PRE_TREATMENT) == 7
        assert baseline.owner_of("years_in_area") is variable
    finally:
        baseline.unregister("years_in_area")
    assert "years_in_area" not in PRE_TREATMENT and "years_in_area_followup" not in OUTCOMES
    # The live names behave as the tuples they replaced.
    assert OUTCOMES == tuple(OUTCOMES) and OUTCOMES[:3] == ("exposed", "joined", "participated")
    assert PRE_TREATMENT + ("x",) == (*PRE_TREATMENT, "x") and ("x",) + OUTCOMES == ("x", *OUTCOMES)


def test_default_strata_and_moderator_bands_come_from_the_declared_bands(catalog_path):
    strata = default_strata()
    assert [(s.moderator, s.cuts, s.labels) for s in strata] == [
        ("age", [35.0, 55.0], ["18-34", "35-54", "55+"]),
        ("self_efficacy", [2.5, 3.5], ["low", "middle", "high"]),
    ]
    text = (catalog_path("self-efficacy-cleanup")).read_text()
    design = parse_design(text)
    assert moderator_bands(design, "age").levels == ["18-34", "35-54", "55+"]
    assert moderator_bands(design, "gender") == BandSpec("gender")
    design.randomization.strata = []
    assert moderator_bands(design, "self_efficacy") == baseline.get("self_efficacy").bands
