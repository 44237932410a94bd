"""Eligibility rules: whom a campaign is for, as comparisons on baseline answers, read by a
small grammar (a tokenizer and a parser, never `eval`) and checked against the baseline
registry (`experiments.baseline`).

A rule compares one baseline variable with a value::

    rule   := NAME op value | NAME "in" "[" value ("," value)* "]"
    op     := "=" | "!=" | "<" | "<=" | ">" | ">="
    value  := NUMBER | "quoted text" | 'quoted text' | WORD

`parse_rule(text)` returns a `Rule` or raises `RuleError`, whose message quotes the rule
and says what is wrong: an unknown variable, a value of the wrong type or out of range,
an operator the variable's type does not allow (`gender < woman`), or anything outside
the grammar (`__import__('os')`, `age.real`, nested brackets). A number variable compares
numbers (a choice on an ordered scale also takes its options' names: `collective_coproduction
= never`); a category takes `=`, `!=` and `in`, with one of its options.

A resident meets a rule when their answer is known and the comparison holds; an unknown
answer meets no rule (eligibility cannot be established). `screen(rules, answers)` says
whether a resident is eligible and, if not, the first rule (in the design's order) they
fail: the screened-out are counted under that rule, so the counts by rule add up to the
number screened out. Pure Python: no Flask, no database.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from experiments import baseline

Operator = Literal["=", "!=", "<", "<=", ">", ">=", "in"]
OPERATORS: tuple[str, ...] = ("=", "!=", "<", "<=", ">", ">=", "in")
ORDER_OPERATORS = ("<", "<=", ">", ">=")
MAX_RULE_LENGTH = 200
MAX_RULES = 20
MAX_LIST = 50

_TOKEN = re.compile(
    r"""
    (?P<space>\s+)
  | (?P<number>[-+]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][-+]?\d+)?(?![A-Za-z0-9_.]))
  | (?P<word>[A-Za-z_][A-Za-z0-9_-]*)
  | (?P<string>"[^"\\\n]*"|'[^'\\\n]*')
  | (?P<op><=|>=|!=|==|=|<|>)
  | (?P<open>\[)
  | (?P<close>\])
  | (?P<comma>,)
    """,
    re.VERBOSE,
)


class RuleError(ValueError):
    """A rule that cannot be used; the message quotes it and says why."""

    def __init__(self, rule: str, reason: str):
        self.rule = rule
        self.reason = reason
        super().__init__(f"rule {_quote(rule)}: {reason}")


def _quote(text: str) -> str:
    shown = text if len(text) <= 80 else text[:77] + "..."
    return '"' + shown.replace("\\", "\\\\").replace('"', '\\"') + '"'


@dataclass(frozen=True)
class Token:
    kind: str  # number, word, string, op, open, close, comma
    text: str
    position: int


def tokenize(text: str) -> list[Token]:
    """The rule's tokens; RuleError at the first character outside the grammar."""
    tokens: list[Token] = []
    position = 0
    while position < len(text):
        match = _TOKEN.match(text, position)
        if match is None:
            char = text[position]
            shown = repr(char) if char.isprintable() else f"U+{ord(char):04X}"
            raise RuleError(
                text,
                f"unexpected character {shown} at position {position + 1}: a rule is "
                "`variable op value` (op one of =, !=, <, <=, >, >=, in [...])",
            )
        kind = match.lastgroup or ""
        if kind != "space":
            tokens.append(Token(kind, match.group(), position))
        position = match.end()
    return tokens


@dataclass(frozen=True)
class Rule:
    """One checked rule: a baseline variable, an operator and its value(s).

    `text` is the rule as written (the design keeps it, the counts are keyed by it);
    `values` holds one value, or the list of an `in`.
    """

    text: str
    variable: str
    operator: Operator
    values: tuple[float | str, ...]

    def admits(self, value: Any) -> bool:
        """Whether a resident whose answer is `value` meets the rule (unknown: no)."""
        if value is None or (isinstance(value, float) and math.isnan(value)):
            return False
        if isinstance(self.values[0], str):
            given: Any = str(value)
        else:
            try:
                given = float(value)
            except (TypeError, ValueError):
                return False
        target = self.values[0]
        if self.operator == "in":
            return given in self.values
        if self.operator == "=":
            return given == target
        if self.operator == "!=":
            return given != target
        if self.operator == "<":
            return given < target
        if self.operator == "<=":
            return given <= target
        if self.operator == ">":
            return given > target
        return given >= target

    def describe(self) -> str:
        """The rule in canonical form (`age >= 18`, `gender in [woman, man]`)."""
        shown = [_num(v) if isinstance(v, float) else _text(v) for v in self.values]
        if self.operator == "in":
            return f"{self.variable} in [{', '.join(shown)}]"
        return f"{self.variable} {self.operator} {shown[0]}"


_WORD = re.compile(r"^[A-Za-z_][A-Za-z0-9_-]*$")


def _text(value: str) -> str:
    """A category value as the grammar reads it back: bare when a word, else quoted."""
    if _WORD.match(value) and value != "in":
        return value
    return f"'{value}'" if '"' in value else f'"{value}"'


def _num(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else f"{x:g}"


def parse_rule(text: Any) -> Rule:
    """Read and check one rule; RuleError (quoting it) when it cannot be used."""
    if not isinstance(text, str):
        raise RuleError(str(text), 'must be text such as "age >= 18"')
    rule = text.strip()
    if not rule:
        raise RuleError(text, 'is empty: write a comparison such as "age >= 18"')
    if len(rule) > MAX_RULE_LENGTH:
        raise RuleError(rule, f"is too long: at most {MAX_RULE_LENGTH} characters")
    tokens = tokenize(rule)
    name, operator, raw = _parse(rule, tokens)
    return _check(rule, name, operator, raw)


def _parse(rule: str, tokens: list[Token]) -> tuple[str, str, list[Token]]:
    """The grammar: NAME op value, or NAME in [value, ...], and nothing after."""
    if not tokens or tokens[0].kind != "word" or tokens[0].text == "in":
        raise RuleError(rule, "must start with a baseline variable's name")
    name = tokens[0].text
    if len(tokens) < 2:
        raise RuleError(rule, f"{name} needs a comparison: one of {', '.join(OPERATORS)}")
    op = tokens[1]
    if op.kind == "op":
        if op.text == "==":
            raise RuleError(rule, "use = (a single equals sign) to compare")
        rest = tokens[2:]
        if not rest:
            raise RuleError(rule, f"a value must follow {op.text}")
        if rest[0].kind == "open":
            raise RuleError(rule, f"a list of values goes with `in`, not {op.text}")
        if rest[0].kind not in ("number", "word", "string"):
            raise RuleError(rule, f"a value must follow {op.text}")
        if len(rest) > 1:
            raise RuleError(
                rule, f"unexpected {rest[1].text!r} after the value: one comparison per rule"
            )
        return name, op.text, rest
    if op.kind == "word" and op.text == "in":
        return name, "in", _parse_list(rule, tokens[2:])
    raise RuleError(
        rule,
        f"unexpected {op.text!r} after {name}: the comparison is one of {', '.join(OPERATORS)}",
    )


def _parse_list(rule: str, tokens: list[Token]) -> list[Token]:
    if not tokens or tokens[0].kind != "open":
        raise RuleError(rule, "`in` takes a list of values in brackets: in [1, 2]")
    values: list[Token] = []
    position = 1
    expect_value = True
    while position < len(tokens):
        token = tokens[position]
        if token.kind == "open":
            raise RuleError(rule, "lists cannot be nested: in [1, 2]")
        if token.kind == "close":
            if expect_value:
                raise RuleError(
                    rule, "the list is empty" if not values else "a value must follow ','"
                )
            if position != len(tokens) - 1:
                raise RuleError(rule, f"unexpected {tokens[position + 1].text!r} after the list")
            if len(values) > MAX_LIST:
                raise RuleError(rule, f"a list holds at most {MAX_LIST} values")
            return values
        if expect_value:
            if token.kind not in ("number", "word", "string"):
                raise RuleError(rule, f"expected a value in the list, found {token.text!r}")
            values.append(token)
        elif token.kind != "comma":
            raise RuleError(rule, f"values in the list are separated by ',', found {token.text!r}")
        expect_value = not expect_value
        position += 1
    raise RuleError(rule, "the list is not closed: add ']'")


def _check(rule: str, name: str, operator: str, raw: list[Token]) -> Rule:
    """Type-check against the registry: the variable, the operator, each value."""
    try:
        variable = baseline.get(name)
    except KeyError:
        known = ", ".join(v.name for v in baseline.variables())
        raise RuleError(rule, f"unknown baseline variable {name!r}: known are {known}") from None
    if variable.value_type == "number":
        values: tuple[float | str, ...] = tuple(
            _number_value(rule, variable, token, operator) for token in raw
        )
    else:
        if operator in ORDER_OPERATORS:
            raise RuleError(
                rule,
                f"{name} is a category: compare it with =, != or in, not {operator}",
            )
        values = tuple(_category_value(rule, variable, token) for token in raw)
    if len(set(values)) != len(values):
        raise RuleError(rule, "a value is listed twice")
    return Rule(rule, name, operator, values)  # type: ignore[arg-type]


def _whole_valued(variable: baseline.BaselineVariable) -> bool:
    return variable.kind in ("integer", "choices", "choice")


def _number_value(
    rule: str, variable: baseline.BaselineVariable, token: Token, operator: str
) -> float:
    if token.kind == "number":
        value = float(token.text)
        if not math.isfinite(value):
            raise RuleError(rule, f"{token.text} is not a finite number")
    else:
        word = token.text if token.kind == "word" else token.text[1:-1]
        option = variable.option(word) if variable.kind == "choice" else None
        if option is None:
            hint = ""
            if variable.kind == "choice":
                hint = " or one of " + ", ".join(
                    f"{o.value} ({o.aliases[0] if o.aliases else o.label})"
                    for o in variable.options
                )
            raise RuleError(rule, f"{variable.name} is a number: {word!r} is not a number{hint}")
        value = float(option.value)
    lo, hi = variable.value_range or (-math.inf, math.inf)
    if not lo <= value <= hi:
        raise RuleError(
            rule, f"{_num(value)} is out of range: {variable.name} is from {_num(lo)} to {_num(hi)}"
        )
    if operator in ("=", "!=", "in") and _whole_valued(variable) and not value.is_integer():
        raise RuleError(rule, f"{variable.name} is a whole number: {_num(value)} never equals it")
    return value


def _category_value(rule: str, variable: baseline.BaselineVariable, token: Token) -> str:
    text = token.text[1:-1] if token.kind == "string" else token.text
    if token.kind == "number" and variable.categories is not None:
        raise RuleError(
            rule,
            f"{variable.name} is a category: {text} is not one of {', '.join(variable.categories)}",
        )
    if variable.categories is None:  # free text (a country): any value, as written
        if len(text) > variable.max_length:
            raise RuleError(rule, f"{text!r} is longer than {variable.name} can be")
        return text
    option = variable.option(text)
    if option is None:
        raise RuleError(
            rule,
            f"{text!r} is not an answer to {variable.name}: one of "
            + ", ".join(variable.categories),
        )
    return str(option.value)


def parse_rules(texts: Sequence[Any]) -> tuple[list[tuple[int, Rule]], list[tuple[int, RuleError]]]:
    """The rules of a list that can be used, and the problems of those that cannot, each
    with its index in the list."""
    rules: list[tuple[int, Rule]] = []
    problems: list[tuple[int, RuleError]] = []
    seen: dict[str, int] = {}
    for i, text in enumerate(texts):
        if i >= MAX_RULES:
            problems.append((i, RuleError(str(text), f"a design holds at most {MAX_RULES} rules")))
            break
        try:
            rule = parse_rule(text)
        except RuleError as exc:
            problems.append((i, exc))
            continue
        canonical = rule.describe()
        if canonical in seen:
            problems.append(
                (
                    i,
                    RuleError(
                        rule.text, f"the same rule as rule {seen[canonical] + 1} (listed twice)"
                    ),
                )
            )
            continue
        seen[canonical] = i
        rules.append((i, rule))
    return rules, problems


def needed_variables(rules: Iterable[Rule]) -> tuple[str, ...]:
    """The baseline variables the rules read, in order of first use."""
    return tuple(dict.fromkeys(rule.variable for rule in rules))


@dataclass(frozen=True)
class Screening:
    """The outcome of screening one resident: eligible, or the first rule failed."""

    eligible: bool
    failed: Rule | None = None

    @property
    def failed_rule(self) -> str | None:
        return self.failed.text if self.failed else None


ELIGIBLE = Screening(True)


def screen(rules: Sequence[Rule], values: Mapping[str, Any]) -> Screening:
    """Screen a resident given their variables' values (`name -> value`, None unknown)."""
    for rule in rules:
        if not rule.admits(values.get(rule.variable)):
            return Screening(False, rule)
    return ELIGIBLE


def screen_answers(rules: Sequence[Rule], stored: Mapping[str, Any]) -> Screening:
    """Screen a resident from what is kept of their answers (fields, as the registry reads)."""
    return screen(
        rules, {name: baseline.get(name).value(stored) for name in needed_variables(rules)}
    )


def screen_frame(rules: Sequence[Rule], frame: Any) -> list[str | None]:
    """The first rule each row of a frame fails (None: eligible); columns are the variables'
    values, as a pandas DataFrame or a mapping of sequences."""
    names = needed_variables(rules)
    n = len(frame)
    columns = {name: list(frame[name]) for name in names}
    out: list[str | None] = []
    for i in range(n):
        result = screen(rules, {name: columns[name][i] for name in names})
        out.append(result.failed_rule)
    return out


@dataclass(frozen=True)
class ScreeningCounts:
    """How many were assessed, found eligible and screened out, and by which rule (the
    rules in the design's order, each with the number whose first failed rule it was)."""

    assessed: int
    eligible: int
    by_rule: dict[str, int]

    @property
    def screened_out(self) -> int:
        return self.assessed - self.eligible

    @property
    def rate(self) -> float | None:
        """The share screened out (None before anyone was assessed)."""
        return self.screened_out / self.assessed if self.assessed else None

    def to_dict(self) -> dict[str, Any]:
        return {
            "assessed": self.assessed,
            "eligible": self.eligible,
            "screened_out": self.screened_out,
            "by_rule": dict(self.by_rule),
        }


def count(rules: Sequence[Rule], failed: Iterable[str | None]) -> ScreeningCounts:
    """Counts from each assessed resident's first failed rule (None: eligible)."""
    by_rule = {rule.text: 0 for rule in rules}
    assessed = eligible = 0
    for rule in failed:
        assessed += 1
        if rule is None:
            eligible += 1
        else:
            by_rule[rule] = by_rule.get(rule, 0) + 1
    return ScreeningCounts(assessed, eligible, by_rule)
