"""Eligibility screening of participants on their baseline answers, before randomization.

A campaign's rules (`experiments.eligibility`, from the design's `[eligibility]` table)
are checked once a person's baseline answers are known: after the baseline page, at a
list import, at an API enrolment. The result is kept on the participant (`screened_at`,
and `screened_out_rule`, the first rule not met); a screened-out resident is never
randomized, takes no block slot, gets no message and sees the kind page. Screening out is
final; an eligible resident is randomized at once. Everyone screened is counted
(`assessed`), with or without rules, so the flow reads the same for every campaign.
Functions flush, never commit.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import Select, func, select

from experiments import eligibility
from experiments.eligibility import Rule, Screening, ScreeningCounts
from nudge_app.db import utcnow
from nudge_app.extensions import db
from nudge_app.models import Campaign, Participant
from nudge_app.services import answers
from nudge_app.services.frozen import KeptWhileFrozen


def _rules_of(campaign: Campaign) -> tuple[Rule, ...]:
    return tuple(eligibility.parse_rule(text) for text in campaign.eligibility or ())


_RULES = KeptWhileFrozen(_rules_of)


def rules_of(campaign: Campaign) -> tuple[Rule, ...]:
    """The campaign's checked rules (empty: everyone who answers is eligible)."""
    return _RULES(campaign)  # type: ignore[return-value]


def needed(campaign: Campaign) -> tuple[str, ...]:
    """The baseline variables the campaign's rules read."""
    return eligibility.needed_variables(rules_of(campaign))


def values_of(participant: Participant, names: Sequence[str]) -> dict[str, object]:
    return {name: answers.value(participant, name) for name in names}


def missing(campaign: Campaign, participant: Participant) -> tuple[str, ...]:
    """The variables the rules need that the participant has no answer to."""
    return tuple(n for n in needed(campaign) if answers.value(participant, n) is None)


def result_of(participant: Participant) -> Screening | None:
    """The kept result (None: not screened yet)."""
    if participant.screened_at is None:
        return None
    if participant.screened_out_rule is None:
        return eligibility.ELIGIBLE
    rule = next(
        (r for r in rules_of(participant.campaign) if r.text == participant.screened_out_rule),
        None,
    )
    return Screening(False, rule)


def is_screened_out(participant: Participant) -> bool:
    return participant.screened_at is not None and participant.screened_out_rule is not None


def screen(participant: Participant, campaign: Campaign | None = None) -> Screening:
    """Screen the participant on the answers kept now and keep the result.

    Screening out is final (a later answer does not let the person in: the first answers
    decided); an eligible result is taken again from the current answers, so a person who
    corrected an imported answer before being randomized is screened on what they said.
    """
    campaign = campaign or participant.campaign
    if is_screened_out(participant):
        return result_of(participant)  # type: ignore[return-value]
    rules = rules_of(campaign)
    result = eligibility.screen(rules, values_of(participant, eligibility.needed_variables(rules)))
    participant.screened_at = participant.screened_at or utcnow()
    participant.screened_out_rule = result.failed_rule
    return result


def screen_batch(campaign: Campaign, people: Sequence[Participant]) -> list[Participant]:
    """Screen people not yet screened whose answers the rules need are all known; returns
    the eligible ones (screened now or before), in order. People missing an answer are
    left unscreened and out of the list (they answer the baseline page first)."""
    eligible = []
    names = needed(campaign)
    for person in people:
        if is_screened_out(person):
            continue
        if person.screened_at is None:
            if any(answers.value(person, n) is None for n in names):
                continue
            screen(person, campaign)
            if is_screened_out(person):
                continue
        eligible.append(person)
    db.session.flush()
    return eligible


def screen_out_imported(campaign: Campaign, ids: Sequence[int] | None = None) -> int:
    """Screen out now the not-yet-screened participants (of `ids`, or the whole campaign)
    whose imported answers already fail a rule, so they get no invitation; people who meet
    the rules are screened again once they confirm their answers on the baseline page.
    Returns how many were screened out now."""
    rules = rules_of(campaign)
    if not rules:
        return 0
    query = select(Participant).where(
        Participant.campaign_id == campaign.id, Participant.screened_at.is_(None)
    )
    if ids is not None:
        query = query.where(Participant.id.in_(list(ids)))
    names = eligibility.needed_variables(rules)
    out = 0
    for person in db.session.scalars(query):
        values = values_of(person, names)
        # Only the rules whose answers are known can screen out now (the rest are asked).
        known = [rule for rule in rules if values[rule.variable] is not None]
        result = eligibility.screen(known, values)
        if result.eligible:
            continue
        person.screened_at = utcnow()
        person.screened_out_rule = result.failed_rule
        out += 1
    db.session.flush()
    return out


def screened_out_among(ids: Sequence[int]) -> int:
    """How many of these participants are screened out."""
    total = 0
    ids = list(ids)
    for start in range(0, len(ids), 1000):
        total += db.session.scalar(
            select(func.count(Participant.id)).where(
                Participant.id.in_(ids[start : start + 1000]),
                Participant.screened_out_rule.is_not(None),
            )
        )
    return total


def counts(campaign: Campaign) -> ScreeningCounts:
    """Assessed, eligible and screened out by rule, from the participants' kept results
    (the rules in the design's order; a rule no longer in the design still counts)."""
    rows = db.session.execute(
        select(Participant.screened_out_rule, func.count())
        .where(Participant.campaign_id == campaign.id, Participant.screened_at.is_not(None))
        .group_by(Participant.screened_out_rule)
    ).all()
    by_rule = {rule.text: 0 for rule in rules_of(campaign)}
    assessed = eligible = 0
    for rule, n in rows:
        assessed += int(n)
        if rule is None:
            eligible += int(n)
        else:
            by_rule[rule] = by_rule.get(rule, 0) + int(n)
    return ScreeningCounts(assessed, eligible, by_rule)


def _assessed_query(campaign: Campaign):
    """The campaign's assessed residents: screened, or randomized before screening was
    recorded (an older campaign's residents, all eligible then)."""
    from nudge_app.models import Assignment

    return (
        select(Participant)
        .outerjoin(Assignment, Assignment.participant_id == Participant.id)
        .where(
            Participant.campaign_id == campaign.id,
            (Participant.screened_at.is_not(None)) | (Assignment.id.is_not(None)),
        )
        .order_by(Participant.id)
    )


def summary(campaign: Campaign) -> dict[str, Any]:
    """The report's `screening` object: {"assessed", "eligible", "screened_out", "by_rule"}."""
    from nudge_app.models import Assignment

    found = counts(campaign)
    unscreened = db.session.scalar(
        select(func.count(Assignment.id))
        .join(Participant, Participant.id == Assignment.participant_id)
        .where(Assignment.campaign_id == campaign.id, Participant.screened_at.is_(None))
    )
    legacy = int(unscreened or 0)
    return ScreeningCounts(
        found.assessed + legacy, found.eligible + legacy, found.by_rule
    ).to_dict()


def population_frame(campaign: Campaign, names: Sequence[str]):
    """One row per assessed resident: the variables' values and whether they were eligible
    (for `experiments.population.describe`)."""
    import pandas as pd

    rows = []
    for person in db.session.scalars(_assessed_query(campaign)):
        row = values_of(person, names)
        row["eligible"] = person.screened_out_rule is None
        rows.append(row)
    return pd.DataFrame(rows, columns=[*names, "eligible"])


def awaiting_assignment(campaign: Campaign) -> Select:
    """The campaign's residents not yet randomized who still may be: consent not refused,
    not opted out, not erased (the rows a batch randomization and its preview consider)."""
    from nudge_app.models import Assignment

    return (
        select(Participant)
        .outerjoin(Assignment, Assignment.participant_id == Participant.id)
        .where(
            Participant.campaign_id == campaign.id,
            Assignment.id.is_(None),
            Participant.consent_status != "refused",
            Participant.opted_out_at.is_(None),
            Participant.erased_at.is_(None),
        )
    )


def preview(campaign: Campaign) -> dict[str, int]:
    """How the campaign's residents not yet randomized would be screened now, without
    keeping anything: eligible, screened out, and unknown (an answer the rules need is
    missing). For the launch checklist of a list campaign."""
    rules = rules_of(campaign)
    names = eligibility.needed_variables(rules)
    out = {"eligible": 0, "screened_out": 0, "unknown": 0}
    people = db.session.scalars(awaiting_assignment(campaign))
    for person in people:
        if is_screened_out(person):
            out["screened_out"] += 1
            continue
        values = values_of(person, names)
        if any(values[n] is None for n in names):
            out["unknown"] += 1
        elif eligibility.screen(rules, values).eligible:
            out["eligible"] += 1
        else:
            out["screened_out"] += 1
    return out
