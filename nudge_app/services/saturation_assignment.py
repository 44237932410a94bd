"""Assignment in a randomized saturation design (the design's `saturations`): clusters get
a saturation, members the offered arm at that share (`experiments.saturation`).

A list randomized in batch uses the design's randomizer: cluster counts per saturation
within one, treated counts within one of s x size. Members arriving later (a later import,
or a survey-first campaign) take the saturation of their cluster if it has one, else a
hashed one (equal chances, no state), and are treated with probability s by hashing the
participant: balanced in expectation. Every assignment records its cluster's saturation as
its stratum (`saturation=0.4`) and the probability of its own arm (s or 1 - s), which is
what the report reads back. Functions flush, never commit.
"""

from __future__ import annotations

import numpy as np
from sqlalchemy import select

from experiments.randomization import hash_fraction
from experiments.saturation import format_saturation, saturation_ra
from nudge_app.extensions import db
from nudge_app.models import Assignment, Campaign, Participant

PREFIX = "saturation="


def label(s: float) -> str:
    return f"{PREFIX}{format_saturation(s)}"


def saturation_of_label(text: str | None) -> float | None:
    if not text or not text.startswith(PREFIX):
        return None
    try:
        return float(text[len(PREFIX) :])
    except ValueError:
        return None


def offered_index(arms: tuple[str, ...], control_key: str) -> tuple[int, int]:
    """(control arm index, offered arm index) in the plan's arm order."""
    control = arms.index(control_key)
    return control, next(i for i in range(len(arms)) if i != control)


def _known(campaign: Campaign, column) -> dict[str, float]:
    out: dict[str, float] = {}
    for c, stratum in db.session.execute(
        select(column, Assignment.stratum)
        .join(Assignment, Assignment.participant_id == Participant.id)
        .where(Participant.campaign_id == campaign.id, column.is_not(None))
    ):
        s = saturation_of_label(stratum)
        if s is not None:
            out[str(c).strip()] = s
    return out


def _hashed(salt: str, cluster_id: str, levels: tuple[float, ...]) -> float:
    return levels[
        min(int(hash_fraction(salt, f"saturation:{cluster_id}") * len(levels)), len(levels) - 1)
    ]


def _member_treated(salt: str, participant_id: int, s: float) -> bool:
    return hash_fraction(salt, f"member:{participant_id}") < s


def batch(
    levels: tuple[float, ...],
    salt: str,
    field: str,
    campaign: Campaign,
    people: list[Participant],
    seed: int,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(treated per person, stratum label per person, probability of own arm per person)."""
    cluster_ids = np.array(
        [
            str(getattr(p, field)).strip()
            if getattr(p, field) is not None and str(getattr(p, field)).strip()
            else f"participant:{p.id}"
            for p in people
        ],
        dtype=object,
    )
    known = _known(campaign, getattr(Participant, field))
    sat = np.full(len(people), np.nan)
    treated = np.zeros(len(people), dtype=bool)
    for i, c in enumerate(cluster_ids):
        if c in known:
            sat[i] = known[c]
            treated[i] = _member_treated(salt, people[i].id, known[c])
    new = np.flatnonzero(np.isnan(sat))
    if len(new):
        keys = np.array([p.external_ref or f"#{p.id}" for p in people], dtype=object)[new]
        order = new[np.argsort(keys.astype(str), kind="stable")]
        result = saturation_ra(cluster_ids[order], levels, seed)
        sat[order] = result.saturation
        treated[order] = result.treated
    labels = np.array([label(s) for s in sat], dtype=object)
    prob = np.where(treated, sat, 1.0 - sat)
    return treated, labels, prob


def arrival(
    levels: tuple[float, ...], salt: str, field: str, campaign: Campaign, participant: Participant
) -> tuple[bool, str, float]:
    """(treated, stratum label, probability of own arm) for one arriving participant."""
    cluster = getattr(participant, field, None)
    if cluster is None or not str(cluster).strip():
        cluster_id = f"participant:{participant.id}"
        s = _hashed(salt, cluster_id, levels)
    else:
        cluster_id = str(cluster).strip()
        column = getattr(Participant, field)
        stratum = db.session.scalar(
            select(Assignment.stratum)
            .join(Participant, Participant.id == Assignment.participant_id)
            .where(Participant.campaign_id == campaign.id, column == cluster)
            .limit(1)
        )
        known = saturation_of_label(stratum)
        s = known if known is not None else _hashed(salt, cluster_id, levels)
    treated = _member_treated(salt, participant.id, s)
    return treated, label(s), s if treated else 1.0 - s
