"""The survey questions of the participant pages, built from the baseline-variable
registry (experiments.baseline): each question with its texts translated for the page,
the posted form read as the registry reads answers, the message beside a refused answer,
and the summary of answers a council imported (for the person to confirm).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from flask_babel import gettext

from experiments import baseline
from nudge_app.models import Participant
from nudge_app.services import answers


@dataclass(frozen=True)
class Question:
    """One variable as a page shows it (texts already in the page's language)."""

    name: str
    kind: str
    question: str
    hint: str
    input_label: str
    options: list[tuple[str, str]]  # (value, label)
    items: list[tuple[str, str]]  # a score's (field, question)
    birth_year: tuple[str, str] | None  # (field, label)
    required: bool


def _t(text: str, **variables: Any) -> str:
    return gettext(text, **variables) if text else ""


def questions(variables: Iterable[baseline.BaselineVariable]) -> list[Question]:
    return [
        Question(
            name=v.name,
            kind=v.kind,
            question=_t(v.question),
            hint=_t(v.hint),
            input_label=_t(v.input_label or v.question),
            options=[(str(o.value), _t(o.label)) for o in v.options],
            items=[(item.name, _t(item.question)) for item in v.items],
            birth_year=(v.birth_year.field, _t(v.birth_year.label)) if v.birth_year else None,
            required=v.required,
        )
        for v in variables
    ]


def form_answers(form, variables: Iterable[baseline.BaselineVariable]) -> dict[str, Any]:
    """The posted answers: text fields as posted, a multiple choice as the list ticked."""
    raw: dict[str, Any] = form.to_dict()
    for variable in variables:
        if variable.kind == "choices":
            raw[variable.name] = form.getlist(variable.name)
    return raw


def error_text(field: str, year: int) -> str | None:
    """The declared message for a refused answer to `field`, translated (None when no
    baseline variable has that field)."""
    variable = baseline.owner_of(field)
    if variable is None:
        return None
    for item in variable.items:
        if item.name == field:
            return _t(item.error)
    if variable.birth_year is not None and field == variable.birth_year.field:
        low, high = year - int(variable.maximum), year - int(variable.minimum)  # type: ignore[arg-type]
        return _t(variable.birth_year.error, low=low, high=high)
    return _t(variable.error) or None


def summary(participant: Participant) -> list[tuple[str, str]]:
    """(label, answer) rows of the baseline answers kept for a person (a council's import),
    question by question, for them to confirm."""
    rows: list[tuple[str, str]] = []
    for v in baseline.survey_variables():
        fields = answers.kept(participant, v)
        if v.value(fields) is None:
            continue
        if v.kind == "score":
            for item in v.items:
                answer = fields.get(item.name)
                option = v.option(answer) if answer is not None else None
                label = f"{answer} – {_t(option.label)}" if option else str(answer or "")
                rows.append((_t(item.question), label))
        elif v.kind == "choice":
            option = v.option(fields[v.name])
            rows.append((_t(v.label), _t(option.label) if option else str(fields[v.name])))
        elif v.kind == "choices":
            labels = [_t(o.label) for o in v.options if o.value in fields[v.name]]
            rows.append((_t(v.label), "; ".join(labels) or "–"))
        else:
            rows.append((_t(v.label), str(v.value(fields))))
    return rows
