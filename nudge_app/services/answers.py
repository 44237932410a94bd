"""Baseline answers kept for a participant, and which variables a campaign has them for.

Each registered variable's fields (experiments.baseline) live in the `participant`
column of the same name when the model has one (the platform's first variables, typed
and checked there), otherwise in the row's `baseline` JSON, so registering a variable
needs no migration. A variable's value is always read back through its declaration.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from sqlalchemy import JSON, or_, select

from experiments import baseline
from nudge_app.extensions import db
from nudge_app.models import Campaign, Participant

_TABLE = Participant.__table__
COLUMNS = frozenset(_TABLE.columns.keys())
# Columns a bulk insert must hand to the driver as JSON text.
JSON_COLUMNS = frozenset(c.name for c in _TABLE.columns if isinstance(c.type, JSON))


def kept(participant: Participant, variable: baseline.BaselineVariable) -> dict[str, Any]:
    """What is kept for the participant of one variable, field by field."""
    extra = participant.baseline or {}
    return {
        name: getattr(participant, name) if name in COLUMNS else extra.get(name)
        for name in variable.stored
    }


def value(participant: Participant, name: str) -> Any:
    """The participant's value of a baseline variable (None when unknown)."""
    variable = baseline.get(name)
    return variable.value(kept(participant, variable))


def keep(participant: Participant, fields: Mapping[str, Any], only_missing: bool = False) -> None:
    """Store answers on the participant (with `only_missing`, never over a value kept
    before), then recompute each score from the items now kept."""
    extra = dict(participant.baseline or {})
    for name, given in fields.items():
        if name in COLUMNS:
            if not only_missing or getattr(participant, name) is None:
                setattr(participant, name, given)
        elif (not only_missing or extra.get(name) is None) and given is not None:
            extra[name] = given
    for variable in _owners(fields):
        if variable.name not in variable.fields:  # a score: its value follows its items
            items = {**kept(participant, variable), variable.name: None}
            if variable.name in COLUMNS:
                setattr(participant, variable.name, variable.value(items))
            else:
                extra[variable.name] = variable.value(items)
    if extra != (participant.baseline or {}):
        participant.baseline = extra or None  # a new dict: the ORM sees the change


def row_values(fields: Mapping[str, Any]) -> dict[str, Any]:
    """Fields as the values of one new `participant` row: columns as they are, the rest
    packed into `baseline` (always present, so every row of a bulk insert has it)."""
    row: dict[str, Any] = {}
    extra: dict[str, Any] = {}
    for name, given in fields.items():
        if name in COLUMNS:
            row[name] = given
        elif given is not None:
            extra[name] = given
    row["baseline"] = extra or None
    return row


def _owners(fields: Iterable[str]) -> list[baseline.BaselineVariable]:
    found: dict[str, baseline.BaselineVariable] = {}
    for name in fields:
        variable = baseline.owner_of(name)
        if variable is not None:
            found[variable.name] = variable
    return list(found.values())


def variables_with_data(campaign: Campaign) -> list[baseline.BaselineVariable]:
    """The baseline variables this campaign can have values for.

    Every participant answers (or confirms) the baseline page before randomization, so
    its questions always count. A variable that is only imported counts when this
    campaign's import carried it, or while a `list` campaign has nobody imported yet.
    """
    found = []
    nobody_yet: bool | None = None
    for variable in baseline.variables():
        if variable.survey:
            found.append(variable)
            continue
        if not variable.imported:
            continue
        if _imported(campaign, variable):
            found.append(variable)
            continue
        if campaign.enrolment_mode == "list":
            if nobody_yet is None:
                nobody_yet = (
                    db.session.scalar(
                        select(Participant.id).where(Participant.campaign_id == campaign.id)
                    )
                    is None
                )
            if nobody_yet:
                found.append(variable)
    return found


def _imported(campaign: Campaign, variable: baseline.BaselineVariable) -> bool:
    conditions = [
        getattr(Participant, name).is_not(None)
        if name in COLUMNS
        else Participant.baseline[name].as_string().is_not(None)
        for name in variable.fields
    ]
    return (
        db.session.scalar(
            select(Participant.id)
            .where(Participant.campaign_id == campaign.id, or_(*conditions))
            .limit(1)
        )
        is not None
    )
