"""Eligibility rules: the grammar accepts a table of rules and refuses another (injection
attempts included), each refusal quoting the rule; screening and counting by rule."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest
import tomli_w

from experiments import eligibility
from experiments.design import DesignError, design_to_toml, load_design, parse_design
from experiments.eligibility import RuleError, parse_rule, screen, screen_answers

CATALOG = Path(__file__).resolve().parents[2] / "experiments" / "catalog"
BASE = CATALOG / "self-efficacy-cleanup.toml"

ACCEPTED = [
    # rule, variable, operator, values
    ("individual_coproduction >= 1", "individual_coproduction", ">=", (1.0,)),
    ("collective_coproduction = 0", "collective_coproduction", "=", (0.0,)),
    ("age >= 18", "age", ">=", (18.0,)),
    ("age<35", "age", "<", (35.0,)),
    ("  age   <=   64  ", "age", "<=", (64.0,)),
    ("age > 17.5", "age", ">", (17.5,)),
    ("age != 40", "age", "!=", (40.0,)),
    ("self_efficacy >= 3.5", "self_efficacy", ">=", (3.5,)),
    ("self_efficacy < 2.5", "self_efficacy", "<", (2.5,)),
    ("collective_coproduction in [0, 1]", "collective_coproduction", "in", (0.0, 1.0)),
    ("collective_coproduction = never", "collective_coproduction", "=", (0.0,)),
    ("collective_coproduction in [never, yearly]", "collective_coproduction", "in", (0.0, 1.0)),
    ("gender = woman", "gender", "=", ("woman",)),
    ("gender = 'woman'", "gender", "=", ("woman",)),
    ('gender != "man"', "gender", "!=", ("man",)),
    ("gender in [woman, another]", "gender", "in", ("woman", "another")),
    ("gender = female", "gender", "=", ("woman",)),  # an alias the import accepts
    ("gender in [prefer-not-to-say]", "gender", "in", ("prefer_not_to_say",)),
    ("country = 'United Kingdom'", "country", "=", ("United Kingdom",)),
    ("country in [UK, FR]", "country", "in", ("UK", "FR")),
    ("individual_coproduction in [1,2,3]", "individual_coproduction", "in", (1.0, 2.0, 3.0)),
]

REFUSED = [
    # rule, words the message must contain
    ("__import__('os')", "unexpected character '('"),
    ("__import__('os').system('rm -rf /')", "unexpected character '('"),
    ("age >= __import__('os')", "unexpected character '('"),
    ("age.real >= 1", "unexpected character '.'"),
    ("age.__class__ = 1", "unexpected character '.'"),
    ("self_efficacy >= age", "'age' is not a number"),
    ("age in [[18]]", "lists cannot be nested"),
    ("age in [18, [19]]", "lists cannot be nested"),
    ("age in []", "the list is empty"),
    ("age in [18,", "not closed"),
    ("age in [18, ]", "a value must follow"),
    ("age in [18", "not closed"),
    ("age in 18", "in [1, 2]"),
    ("age in [18, 19] and 1", "unexpected 'and' after the list"),
    ("age >= 18 or 1 = 1", "unexpected 'or' after the value"),
    ("age >= 18; drop table", "unexpected character ';'"),
    ("age >= 18 -- comment", "unexpected"),
    ("lambda: 1", "unexpected character ':'"),
    ("age == 18", "single equals sign"),
    ("age => 18", "a value must follow ="),
    ("age ~ 18", "unexpected character '~'"),
    ("age is 18", "unexpected 'is' after age"),
    ("age", "needs a comparison"),
    ("age >=", "a value must follow >="),
    (">= 18", "must start with a baseline variable"),
    ("18 <= age", "must start with a baseline variable"),
    ("", "is empty"),
    ("   ", "is empty"),
    ("income > 1000", "unknown baseline variable 'income'"),
    ("os = 1", "unknown baseline variable 'os'"),
    ("age >= eighteen", "'eighteen' is not a number"),
    ("age >= '18'", "is not a number"),
    ("age >= 200", "200 is out of range: age is from 16 to 110"),
    ("age = 30.5", "age is a whole number"),
    ("self_efficacy > 7", "out of range"),
    ("collective_coproduction = sometimes", "'sometimes' is not a number or one of 0 (never)"),
    ("individual_coproduction >= 9", "out of range"),
    ("gender < woman", "gender is a category: compare it with =, != or in, not <"),
    ("gender >= 'man'", "not >="),
    ("gender = 1", "not one of woman, man"),
    ("gender = robot", "'robot' is not an answer to gender"),
    ("gender in [woman, woman]", "listed twice"),
    ("age >= 1e400", "not a finite number"),
    ("age >= 18\nage <= 30", "unexpected 'age' after the value"),
    ("age >= 18\x00", "U+0000"),
    ("age >= " + "1" * 300, "too long"),
    ("age >= 18abc", "unexpected character '1'"),
    ("age >= 18 18", "unexpected '18' after the value"),
    ("age >= [18]", "a list of values goes with `in`"),
]


@pytest.mark.parametrize(("text", "variable", "operator", "values"), ACCEPTED, ids=lambda x: x)
def test_the_grammar_accepts(text, variable, operator, values):
    rule = parse_rule(text)
    assert (rule.variable, rule.operator, rule.values) == (variable, operator, values)
    assert rule.text == text.strip()
    # The canonical form reads back as the same rule.
    again = parse_rule(rule.describe())
    assert (again.variable, again.operator, again.values) == (variable, operator, values)


@pytest.mark.parametrize(("text", "reason"), REFUSED, ids=lambda x: x[:40])
def test_the_grammar_refuses_quoting_the_rule(text, reason):
    with pytest.raises(RuleError) as info:
        parse_rule(text)
    message = str(info.value)
    assert reason in message
    shown = text.strip() or text
    if len(shown) <= 80:
        assert message.startswith('rule "' + shown.replace('"', '\\"') + '": ')


@pytest.mark.parametrize("value", [None, 18, ["age >= 18"], {"a": 1}])
def test_a_rule_must_be_text(value):
    if value is None:
        with pytest.raises(RuleError):
            parse_rule(value)
        return
    with pytest.raises(RuleError, match="must be text"):
        parse_rule(value)


def test_the_parser_never_evaluates(monkeypatch):
    """Even a rule that would do something if evaluated is only ever read as text."""
    import builtins

    called = []
    monkeypatch.setattr(builtins, "eval", lambda *a, **k: called.append(a))
    monkeypatch.setattr(builtins, "exec", lambda *a, **k: called.append(a))
    for text, _ in REFUSED:
        with pytest.raises(RuleError):
            parse_rule(text)
    for text, *_ in ACCEPTED:
        parse_rule(text)
    assert called == []


@pytest.mark.parametrize(
    ("text", "value", "meets"),
    [
        ("age >= 18", 18, True),
        ("age >= 18", 17, False),
        ("age >= 18", None, False),
        ("age < 35", 34, True),
        ("age < 35", 35, False),
        ("age <= 35", 35, True),
        ("age > 35", 35, False),
        ("age != 40", 41, True),
        ("age != 40", 40, False),
        ("age != 40", None, False),
        ("collective_coproduction = 0", 0, True),
        ("collective_coproduction = 0", 2, False),
        ("collective_coproduction in [0, 1]", 1, True),
        ("collective_coproduction in [0, 1]", 3, False),
        ("self_efficacy >= 3.5", 3.6667, True),
        ("self_efficacy >= 3.5", 3.3333, False),
        ("self_efficacy >= 3.5", float("nan"), False),
        ("gender = woman", "woman", True),
        ("gender = woman", "man", False),
        ("gender in [woman, another]", "another", True),
        ("gender != man", None, False),
    ],
)
def test_a_rule_admits(text, value, meets):
    assert parse_rule(text).admits(value) is meets


def test_screening_names_the_first_rule_failed_and_reads_stored_answers():
    rules = [parse_rule("individual_coproduction >= 1"), parse_rule("collective_coproduction = 0")]
    assert screen(rules, {"individual_coproduction": 2, "collective_coproduction": 0}).eligible
    out = screen(rules, {"individual_coproduction": 0, "collective_coproduction": 3})
    assert not out.eligible and out.failed_rule == "individual_coproduction >= 1"
    out = screen(rules, {"individual_coproduction": 1, "collective_coproduction": 3})
    assert out.failed_rule == "collective_coproduction = 0"
    # What is kept for a person: the list of activities (its value is how many) and the
    # three self-efficacy items (the value is their mean).
    stored = {"individual_coproduction": ["recycle", "secure_home"], "collective_coproduction": 0}
    assert screen_answers(rules, stored).eligible
    assert not screen_answers(
        rules, {"individual_coproduction": [], "collective_coproduction": 0}
    ).eligible
    se = [parse_rule("self_efficacy >= 3.5")]
    assert screen_answers(se, {"se_safety": 4, "se_environment": 4, "se_health": 3}).eligible
    assert not screen_answers(se, {"se_safety": 4, "se_environment": 3, "se_health": 3}).eligible


def test_counts_by_rule_add_up_to_the_screened_out():
    rules = [parse_rule("age >= 18"), parse_rule("collective_coproduction = 0")]
    counts = eligibility.count(
        rules, [None, "age >= 18", None, "collective_coproduction = 0", "age >= 18"]
    )
    assert counts.to_dict() == {
        "assessed": 5,
        "eligible": 2,
        "screened_out": 3,
        "by_rule": {"age >= 18": 2, "collective_coproduction = 0": 1},
    }
    assert counts.rate == pytest.approx(0.6)
    assert sum(counts.by_rule.values()) == counts.screened_out
    assert eligibility.count(rules, []).rate is None


# --- the design file --------------------------------------------------------------------


def base() -> dict:
    return tomllib.loads(BASE.read_text())


def with_rules(rules, mode: str | None = None) -> dict:
    data = base()
    data["eligibility"] = {"require": rules}
    if mode:
        data["campaign"]["enrolment_mode"] = mode
    return data


def problems_of(data: dict) -> list[str]:
    with pytest.raises(DesignError) as info:
        parse_design(tomli_w.dumps(data))
    return [str(p) for p in info.value.problems]


def test_design_reads_round_trips_and_hashes_the_rules():
    rules = ["individual_coproduction >= 1", "collective_coproduction = 0", "age >= 18"]
    design = parse_design(tomli_w.dumps(with_rules(rules)))
    assert design.eligibility.require == rules
    assert [r.variable for r in design.eligibility_rules()] == [
        "individual_coproduction",
        "collective_coproduction",
        "age",
    ]
    text = design_to_toml(design)
    assert "[eligibility]" in text
    assert text.index("[eligibility]") < text.index("[[arms]]")
    again = parse_design(text)
    assert again == design and again.design_hash() == design.design_hash()
    assert design.design_hash() != load_design(str(BASE)).design_hash()


def test_a_design_without_eligibility_keeps_its_hash():
    data = base()
    del data["eligibility"]  # the catalog design as it was before it had rules
    plain = parse_design(tomli_w.dumps(data))
    assert plain.eligibility is None and plain.eligibility_rules() == []
    assert "eligibility" not in design_to_toml(plain)
    assert "eligibility" not in plain.to_dict()
    empty = parse_design(tomli_w.dumps(with_rules([])))
    assert empty.eligibility is None
    assert empty.design_hash() == plain.design_hash()


def test_design_refuses_bad_rules_naming_field_and_quoting_rule():
    found = problems_of(
        with_rules(
            ["age >= 18", "__import__('os')", "income > 3", "gender < woman", 7, "age >= 18"]
        )
    )
    assert found[0].startswith(
        "eligibility.require[1]: rule \"__import__('os')\": unexpected character"
    )
    assert found[1].startswith(
        'eligibility.require[2]: rule "income > 3": unknown baseline variable'
    )
    assert found[2] == (
        'eligibility.require[3]: rule "gender < woman": gender is a category: compare it with '
        "=, != or in, not <"
    )
    assert found[3].startswith('eligibility.require[4]: rule "7": must be text')
    assert (
        found[4]
        == 'eligibility.require[5]: rule "age >= 18": the same rule as rule 1 (listed twice)'
    )
    assert len(found) == 5


def test_design_refuses_a_rule_a_survey_first_campaign_cannot_know():
    (problem,) = problems_of(with_rules(["country = UK"]))
    assert problem.startswith('eligibility.require[0]: rule "country = UK": country is not asked')
    design = parse_design(tomli_w.dumps(with_rules(["country = UK"], mode="list")))
    assert design.eligibility.require == ["country = UK"]


def test_design_refuses_a_malformed_table():
    data = base()
    data["eligibility"] = {"require": "age >= 18"}
    assert problems_of(data) == ["eligibility.require: must be a list"]
    data["eligibility"] = {"rules": ["age >= 18"]}
    assert problems_of(data) == ["eligibility.rules: unknown field (expected one of require)"]
    data["eligibility"] = "age >= 18"
    assert problems_of(data) == ["eligibility: must be a table"]
    data["eligibility"] = {"require": [f"age >= {18 + i}" for i in range(21)]}
    assert problems_of(data) == [
        'eligibility.require[20]: rule "age >= 38": a design holds at most 20 rules'
    ]
