"""Baseline variables: one declaration for each thing known about a resident before
randomization, from which every part that asks, checks, imports, stratifies on or
analyses it is derived.

A `BaselineVariable` declares the question and answer texts (English: they are the keys
of the participant pages' translation catalogs, marked with `N_` so pybabel finds them),
the kind of answer and the values allowed, the value it gives (a number or a category:
what strata, moderators and eligibility rules compare), its default bands, whether it
may form strata or moderate the analysis, and where it comes from: the baseline page,
the participant CSV (the API's enrolment takes the same fields), and whether the
follow-up survey asks it again (then `<name>_followup` is an outcome, never a moderator).

`register(variable)` adds one. The survey forms, their validation, the import's columns,
the design-file checks, the default strata and the report's moderators all read the
registry when they run, so a new variable is one registration (and its translations in
the catalogs). Pure Python: no Flask, no database.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from experiments.bands import DEFAULT_AGE_BANDS, DEFAULT_SELF_EFFICACY_BANDS, BandSpec

Kind = Literal["integer", "choice", "choices", "score", "text"]
KINDS = ("integer", "choice", "choices", "score", "text")
ValueType = Literal["number", "category"]

NAME_RE = re.compile(r"^[a-z][a-z0-9_]{0,39}$")
# Names the participant list, the outcomes and the analysis frame already use.
RESERVED = (
    "participant_id",
    "external_ref",
    "first_name",
    "email",
    "phone",
    "cluster",
    "neighbourhood",
    "consent_basis",
    "locale",
    "baseline",
    "arm",
    "stratum",
    "probability",
    "exposed",
    "joined",
    "participated",
    "surveyed",
    "delivered",
    "opted_out",
    "consent",
)
# A multiple-choice answer in a CSV cell or an API field: option values joined by this.
CHOICES_SEPARATOR = ";"
NONE_CHOSEN = "none"
FOLLOW_UP_SUFFIX = "_followup"


def N_(message: str) -> str:
    """Mark a participant-facing text for the translation catalogs (pybabel extracts
    `N_`); the pages translate it when they show it."""
    return message


class DeclarationError(ValueError):
    """A baseline variable declared inconsistently, or registered twice."""


@dataclass(frozen=True)
class Option:
    """One allowed answer: the value kept (and posted, imported), the text shown, and other
    spellings an import may use (matched ignoring case, spaces read as underscores)."""

    value: str | int
    label: str
    aliases: tuple[str, ...] = ()


@dataclass(frozen=True)
class Item:
    """One question of a score: its field, its text and the message beside a bad answer."""

    name: str
    question: str
    error: str


@dataclass(frozen=True)
class BirthYear:
    """A year of birth accepted instead of an age (field, label of its box, message with
    %(low)s and %(high)s for the years allowed)."""

    field: str
    label: str
    error: str


@dataclass(frozen=True)
class Reading:
    """One variable's answer read from text cells or a form: the fields to keep (a score
    also keeps its value under its own name) and what is wrong, field by field (English,
    for imports, the API and logs; the pages show the declared, translated `error`)."""

    fields: dict[str, Any]
    problems: dict[str, str]


@dataclass(frozen=True)
class BaselineVariable:
    """Everything the platform needs to know about one baseline variable.

    kind:
      - `integer`: a whole number from `minimum` to `maximum` (optionally a `birth_year`
        instead, for an age);
      - `choice`: one of `options` (whole-number option values make an ordered scale:
        its value is a number, otherwise a category);
      - `choices`: any of `options`; its value is how many were chosen;
      - `score`: the mean of `items`, each answered on the scale `options` (whole numbers);
      - `text`: free text of at most `max_length` characters (a category).

    Texts (English; catalog keys, marked `N_`): `question` (the legend or label on the
    form), `label` (its short name where a person confirms imported answers), `hint`,
    `error` (beside a refused answer) and `input_label` (an integer's box; default the
    question).

    `bands` are the default cut points for strata and subgroups: a variable with bands
    must be given cut points when it forms strata; one without is used level by level.
    `core` variables are the default strata and are always in the report's subgroups.
    `stratify` / `moderate`: it may form strata / be a moderator or covariate. `survey`:
    the baseline page asks it (`required` there or not); `imported`: the participant CSV
    and the API's enrolment carry its fields; `follow_up`: the follow-up survey asks it
    again.
    """

    name: str
    kind: Kind
    question: str
    label: str = ""
    hint: str = ""
    error: str = ""
    input_label: str = ""
    options: tuple[Option, ...] = ()
    items: tuple[Item, ...] = ()
    minimum: int | None = None
    maximum: int | None = None
    birth_year: BirthYear | None = None
    max_length: int = 100
    bands: BandSpec | None = None
    stratify: bool = True
    moderate: bool = True
    core: bool = False
    survey: bool = True
    required: bool = True
    imported: bool = True
    follow_up: bool = False
    _lookup: dict[str, Option] = field(default_factory=dict, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        problems = []
        if not NAME_RE.match(self.name):
            problems.append("the name must be lowercase letters, digits and _ (at most 40)")
        if self.kind not in KINDS:
            problems.append(f"unknown kind {self.kind!r}: one of {', '.join(KINDS)}")
        if self.kind in ("choice", "choices", "score") and not self.options:
            problems.append(f"a {self.kind} needs options")
        if self.kind == "score" and (
            not self.items or any(not isinstance(o.value, int) for o in self.options)
        ):
            problems.append("a score needs items and whole-number options (its scale)")
        if self.kind == "integer" and (self.minimum is None or self.maximum is None):
            problems.append("an integer needs a minimum and a maximum")
        if self.birth_year is not None and self.kind != "integer":
            problems.append("only an integer (an age) may be answered as a year of birth")
        if self.bands is not None and self.bands.column != self.name:
            problems.append(f"its bands are for {self.bands.column!r}")
        if self.follow_up and not self.survey:
            problems.append("a variable asked again at follow-up must be asked at baseline")
        if problems:
            raise DeclarationError(f"baseline variable {self.name!r}: " + "; ".join(problems))
        for option in self.options:
            for spelling in (str(option.value), *option.aliases):
                self._lookup[_spelling(spelling)] = option

    # -- what it is ------------------------------------------------------------------------

    @property
    def fields(self) -> tuple[str, ...]:
        """Its inputs: the form fields, the CSV columns and the API's enrolment fields."""
        if self.kind == "score":
            return tuple(item.name for item in self.items)
        if self.birth_year is not None:
            return (self.name, self.birth_year.field)
        return (self.name,)

    @property
    def stored(self) -> tuple[str, ...]:
        """What is kept for a participant: the fields, and a score's value under its name."""
        return self.fields if self.name in self.fields else (*self.fields, self.name)

    @property
    def value_type(self) -> ValueType:
        if self.kind == "text":
            return "category"
        if self.kind == "choice" and not all(isinstance(o.value, int) for o in self.options):
            return "category"
        return "number"

    @property
    def value_range(self) -> tuple[float, float] | None:
        """The smallest and largest value a number can take (None for a category)."""
        if self.value_type != "number":
            return None
        if self.kind == "integer":
            return (float(self.minimum), float(self.maximum))  # type: ignore[arg-type]
        if self.kind == "choices":
            return (0.0, float(len(self.options)))
        values = [float(o.value) for o in self.options]
        return (min(values), max(values))

    @property
    def categories(self) -> tuple[str, ...] | None:
        """The values a category can take (None for a number or free text)."""
        if self.value_type == "category" and self.kind == "choice":
            return tuple(str(o.value) for o in self.options)
        return None

    @property
    def outcome(self) -> str | None:
        """Its name as an outcome when the follow-up survey asks it again."""
        return self.name + FOLLOW_UP_SUFFIX if self.follow_up else None

    def option(self, value: Any) -> Option | None:
        """The option with this value or spelling (None if there is none)."""
        return self._lookup.get(_spelling(str(value)))

    # -- reading answers ----------------------------------------------------------------

    def value(self, stored: Mapping[str, Any]) -> Any:
        """The variable's value from what is kept for a person (None when unknown)."""
        if self.kind == "choices":
            chosen = stored.get(self.name)
            return len(chosen) if isinstance(chosen, list | tuple) else None
        if self.kind == "score":
            kept = stored.get(self.name)
            if kept is not None:
                return kept
            return _mean([stored.get(item.name) for item in self.items])
        return stored.get(self.name)

    def read(self, cells: Mapping[str, Any], year: int) -> Reading:
        """Check one person's answer, given as form values or CSV/API text cells.

        Empty cells are an unknown answer (no problem: whether it is required is the
        caller's rule, see `missing`); a multiple-choice answer comes as a list (a form:
        an empty list means none chosen) or as text joined by `;` (`none` for none).
        """
        problems: dict[str, str] = {}
        fields: dict[str, Any]
        if self.kind == "integer":
            fields = self._read_integer(cells, year, problems)
        elif self.kind == "choice":
            fields = {self.name: self._read_choice(cells.get(self.name), problems)}
        elif self.kind == "choices":
            fields = {self.name: self._read_choices(cells.get(self.name), problems)}
        elif self.kind == "score":
            lo, hi = (int(x) for x in self.value_range)  # type: ignore[misc]
            fields = {
                item.name: _whole(cells.get(item.name), lo, hi, item.name, problems)
                for item in self.items
            }
            fields[self.name] = _mean(list(fields.values()))
        else:
            text = _cell(cells.get(self.name))
            if len(text) > self.max_length:
                problems[self.name] = f"is too long: at most {self.max_length} characters"
            fields = {self.name: text or None}
        return Reading(fields, problems)

    def missing(self, fields: Mapping[str, Any]) -> dict[str, str]:
        """Problems for a required answer left empty, by field (empty when answered)."""
        if self.kind == "score":
            return {
                item.name: "is required: choose an answer"
                for item in self.items
                if fields.get(item.name) is None
            }
        if self.value(fields) is None:
            return {self.name: "is required"}
        return {}

    def _read_integer(self, cells: Mapping[str, Any], year: int, problems: dict) -> dict:
        lo, hi = int(self.minimum), int(self.maximum)  # type: ignore[arg-type]
        value = _whole(cells.get(self.name), lo, hi, self.name, problems)
        if self.birth_year is None:
            return {self.name: value}
        column = self.birth_year.field
        born = _whole(cells.get(column), year - hi, year - lo, column, problems)
        if value is not None and born is not None and abs((year - born) - value) > 1:
            problems[self.name] = f"{value} does not match {column} {born}"
        if value is None and born is not None and self.name not in problems:
            value = year - born
        return {self.name: value, column: born}

    def _read_choice(self, raw: Any, problems: dict) -> Any:
        text = _cell(raw)
        if not text:
            return None
        option = self.option(text)
        if option is None:
            allowed = ", ".join(str(o.value) for o in self.options)
            problems[self.name] = f"must be one of {allowed} (or empty)"
            return None
        return option.value

    def _read_choices(self, raw: Any, problems: dict) -> list | None:
        if isinstance(raw, list | tuple):
            given = [str(v) for v in raw]
        else:
            text = _cell(raw)
            if not text:
                return None
            if text.casefold() == NONE_CHOSEN:
                return []
            given = [part for part in text.split(CHOICES_SEPARATOR) if part.strip()]
        chosen: list = []
        for spelling in given:
            option = self.option(spelling)
            if option is None:
                allowed = ", ".join(str(o.value) for o in self.options)
                problems[self.name] = f"unknown answer {spelling.strip()!r}: choose from {allowed}"
                return None
            if option.value not in chosen:
                chosen.append(option.value)
        return chosen

    # -- describing it to officers -------------------------------------------------------

    def describe(self) -> str:
        """What its CSV columns accept, in a sentence (English, for officers)."""
        values = ", ".join(str(o.value) for o in self.options)
        if self.kind == "integer":
            text = f"{self.name}: a whole number from {self.minimum} to {self.maximum}"
            if self.birth_year is not None:
                text += f" (or {self.birth_year.field}, the year of birth)"
            return text
        if self.kind == "choice":
            return f"{self.name}: one of {values}"
        if self.kind == "choices":
            return (
                f"{self.name}: any of {values}, joined by {CHOICES_SEPARATOR} "
                f"({NONE_CHOSEN} for none)"
            )
        if self.kind == "score":
            lo, hi = (int(x) for x in self.value_range)  # type: ignore[misc]
            return (
                f"{', '.join(self.fields)}: each from {lo} to {hi}; "
                f"their mean is {self.name} when all are given"
            )
        return f"{self.name}: text of at most {self.max_length} characters"

    def example(self) -> dict[str, str]:
        """A plausible answer, field by field, as CSV text (for the import template)."""
        if self.kind == "integer":
            middle = (int(self.minimum) + int(self.maximum)) // 2  # type: ignore[arg-type]
            cells = {self.name: str(middle)}
            if self.birth_year is not None:
                cells[self.birth_year.field] = ""
            return cells
        if self.kind == "choice":
            return {self.name: str(self.options[0].value)}
        if self.kind == "choices":
            return {self.name: CHOICES_SEPARATOR.join(str(o.value) for o in self.options[:2])}
        if self.kind == "score":
            # Around the middle of the scale (3, 4, 2 on 1-5), so the mean is the middle.
            values = [str(o.value) for o in self.options]
            middle = len(values) // 2
            return {
                item.name: values[(middle + (0, 1, -1)[i % 3]) % len(values)]
                for i, item in enumerate(self.items)
            }
        return {self.name: ""}

    def texts(self) -> list[str]:
        """Every text a participant may see for it (the catalogs must translate each)."""
        found = [self.question, self.label, self.hint, self.error, self.input_label]
        found += [o.label for o in self.options]
        for item in self.items:
            found += [item.question, item.error]
        if self.birth_year is not None:
            found += [self.birth_year.label, self.birth_year.error]
        return [text for text in found if text]


def _spelling(text: str) -> str:
    return text.strip().casefold().replace(" ", "_")


def _cell(raw: Any) -> str:
    return "" if raw is None else str(raw).strip()


def _whole(raw: Any, lo: int, hi: int, column: str, problems: dict) -> int | None:
    text = _cell(raw)
    if not text:
        return None
    try:
        number = float(text)
    except ValueError:
        number = float("nan")
    if not number.is_integer():
        problems[column] = f"must be a whole number from {lo} to {hi}"
        return None
    value = int(number)
    if not lo <= value <= hi:
        problems[column] = f"{value} is impossible: must be from {lo} to {hi}"
        return None
    return value


def _mean(values: Sequence[Any]) -> float | None:
    if not values or any(v is None for v in values):
        return None
    return sum(values) / len(values)


# --- the registry -------------------------------------------------------------------------

_registry: dict[str, BaselineVariable] = {}


def register(variable: BaselineVariable) -> BaselineVariable:
    """Add a baseline variable; every form, check and analysis takes it from now on."""
    if variable.name in _registry:
        raise DeclarationError(f"baseline variable {variable.name!r} is already registered")
    taken = set(RESERVED)
    for other in _registry.values():
        taken.update(other.stored)
        if other.outcome:
            taken.add(other.outcome)
    clash = [name for name in (*variable.stored, variable.outcome) if name in taken]
    if clash:
        raise DeclarationError(
            f"baseline variable {variable.name!r}: {', '.join(clash)} already in use"
        )
    _registry[variable.name] = variable
    return variable


def unregister(name: str) -> None:
    """Remove a registered variable (tests that register their own use it)."""
    del _registry[name]


def variables() -> tuple[BaselineVariable, ...]:
    """Every registered variable, in registration order (the order of the forms)."""
    return tuple(_registry.values())


def get(name: str) -> BaselineVariable:
    """The variable called `name`; KeyError naming the known ones otherwise."""
    try:
        return _registry[name]
    except KeyError:
        raise KeyError(
            f"unknown baseline variable {name!r}: known are {', '.join(_registry)}"
        ) from None


def owner_of(field_name: str) -> BaselineVariable | None:
    """The variable a form field or CSV column belongs to (None if none does)."""
    for variable in _registry.values():
        if field_name in variable.stored:
            return variable
    return None


def survey_variables() -> tuple[BaselineVariable, ...]:
    """The questions of the baseline page, in order."""
    return tuple(v for v in _registry.values() if v.survey)


def follow_up_variables() -> tuple[BaselineVariable, ...]:
    """The baseline questions the follow-up survey asks again (outcomes then)."""
    return tuple(v for v in _registry.values() if v.follow_up)


def imported_fields() -> tuple[str, ...]:
    """The participant CSV's baseline columns (and the API's enrolment fields)."""
    return tuple(f for v in _registry.values() if v.imported for f in v.fields)


def stratum_names() -> tuple[str, ...]:
    return tuple(v.name for v in _registry.values() if v.stratify)


def moderator_names() -> tuple[str, ...]:
    return tuple(v.name for v in _registry.values() if v.moderate)


def core_variables() -> tuple[BaselineVariable, ...]:
    """The moderators the research singles out: default strata, always in the report."""
    return tuple(v for v in _registry.values() if v.core)


def follow_up_outcomes() -> tuple[str, ...]:
    return tuple(v.outcome for v in _registry.values() if v.outcome)


class Names(Sequence[str]):
    """A tuple of names computed from the registry each time it is read, so a constant
    such as `experiments.design.PRE_TREATMENT` follows later registrations."""

    def __init__(self, compute: Callable[[], tuple[str, ...]]):
        self._compute = compute

    def __getitem__(self, index):  # type: ignore[override]
        return self._compute()[index]

    def __len__(self) -> int:
        return len(self._compute())

    def __iter__(self) -> Iterator[str]:
        return iter(self._compute())

    def __contains__(self, name: object) -> bool:
        return name in self._compute()

    def __add__(self, other: Sequence[str]) -> tuple[str, ...]:
        return self._compute() + tuple(other)

    def __radd__(self, other: Sequence[str]) -> tuple[str, ...]:
        return tuple(other) + self._compute()

    def __eq__(self, other: object) -> bool:
        return tuple(self) == (tuple(other) if isinstance(other, Sequence) else other)

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return repr(self._compute())


# --- the variables the platform asks about --------------------------------------------

SCALE_1_TO_5 = (
    Option(1, N_("No difference at all")),
    Option(2, N_("A little difference")),
    Option(3, N_("Some difference")),
    Option(4, N_("Quite a lot of difference")),
    Option(5, N_("A great deal of difference")),
)

register(
    BaselineVariable(
        name="age",
        kind="integer",
        label=N_("Age"),
        question=N_("Your age"),
        hint=N_("Give your age in years, or your year of birth if you prefer."),
        input_label=N_("Age in years"),
        error=N_("Enter your age in years (16 to 110), or your year of birth."),
        minimum=16,
        maximum=110,
        birth_year=BirthYear(
            field="birth_year",
            label=N_("or year of birth"),
            error=N_("Enter a year of birth between %(low)s and %(high)s."),
        ),
        bands=DEFAULT_AGE_BANDS,
        core=True,
    )
)
register(
    BaselineVariable(
        name="gender",
        kind="choice",
        label=N_("Gender"),
        question=N_("Your gender"),
        error=N_("Choose one answer, or “I prefer not to say”."),
        options=(
            Option("woman", N_("Woman"), ("female", "f")),
            Option("man", N_("Man"), ("male", "m")),
            Option("another", N_("In another way"), ("other", "non-binary", "nonbinary")),
            Option("prefer_not_to_say", N_("I prefer not to say"), ("prefer-not-to-say",)),
        ),
    )
)
# Political self-efficacy as the five-nation survey measured it: one item per policy
# domain, the mean of the three is the score.
register(
    BaselineVariable(
        name="self_efficacy",
        kind="score",
        question=N_("What difference can people make?"),
        hint=N_(
            "For each question, choose from 1 (no difference at all) to 5 (a great deal of "
            "difference)."
        ),
        options=SCALE_1_TO_5,
        items=(
            Item(
                "se_safety",
                N_(
                    "How much difference do you believe ordinary citizens can make to "
                    "improving community safety?"
                ),
                N_("Choose a number from 1 to 5 for community safety."),
            ),
            Item(
                "se_environment",
                N_(
                    "How much difference do you believe ordinary citizens can make to "
                    "improving the local environment?"
                ),
                N_("Choose a number from 1 to 5 for the local environment."),
            ),
            Item(
                "se_health",
                N_(
                    "How much difference do you believe ordinary citizens can make to "
                    "improving health?"
                ),
                N_("Choose a number from 1 to 5 for health."),
            ),
        ),
        bands=DEFAULT_SELF_EFFICACY_BANDS,
        core=True,
        follow_up=True,
    )
)
# Individual co-production a person already does, two activities per policy domain; its
# value (for strata, moderators and eligibility) is how many.
register(
    BaselineVariable(
        name="individual_coproduction",
        kind="choices",
        label=N_("What you already do yourself"),
        question=N_("Which of these do you already do yourself? (optional)"),
        hint=N_("Tick all that apply, or none."),
        error=N_("Choose only from the listed activities."),
        options=(
            Option("secure_home", N_("Keep my home secure (locks, lights, alarms)")),
            Option(
                "report_problems",
                N_("Report crime or problems in the street to the police or council"),
            ),
            Option("recycle", N_("Sort my rubbish for recycling")),
            Option("save_energy", N_("Save energy or water at home")),
            Option("healthy_living", N_("Eat healthily or exercise to stay well")),
            Option("health_checks", N_("Go for health checks or follow my doctor's advice")),
        ),
        required=False,
        follow_up=True,
    )
)
# Collective co-production already done: how often the person takes part in a group; an
# ordered scale, 0 = never (the people a campaign for newcomers to groups is for).
register(
    BaselineVariable(
        name="collective_coproduction",
        kind="choice",
        label=N_("How often you take part in a group"),
        question=N_(
            "How often do you take part in a group that works to improve your area or local "
            "services (for example a neighbourhood watch, a clean-up group, a patient or "
            "carers' group, or a residents' panel)? (optional)"
        ),
        error=N_("Choose one of the answers listed."),
        options=(
            Option(0, N_("Never"), ("never",)),
            Option(1, N_("Once or a few times a year"), ("yearly",)),
            Option(2, N_("About once a month"), ("monthly",)),
            Option(3, N_("Every week or more often"), ("weekly",)),
        ),
        required=False,
        follow_up=True,
    )
)
# Country, as in the five-nation survey: known from a council's list, never asked.
register(
    BaselineVariable(
        name="country",
        kind="text",
        question="Country",
        label="Country",
        max_length=32,
        survey=False,
    )
)
