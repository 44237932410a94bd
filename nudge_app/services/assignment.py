"""Assignment of participants to arms: sticky, concurrency-safe, replayable from the seed.

`assign(participant)` randomizes one person as they enrol (survey-first campaigns): a
second call returns the first assignment. Blocked designs take the next permuted-block
slot of the person's stratum with one atomic `UPDATE stratum_counter ... RETURNING`, so
two simultaneous enrolments never share a slot; the arm at that slot is a pure function
of the campaign seed (`experiments.randomization.arm_for_slot`). `randomize_list(campaign)`
randomizes a `list` campaign's unassigned residents in batch, with exact counts per arm
within every stratum. Functions flush, never commit: the caller's transaction decides.
"""

from __future__ import annotations

import hashlib
import logging
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from sqlalchemy import bindparam, insert, select, update
from sqlalchemy.exc import IntegrityError

from experiments.bands import BandSpec
from experiments.design import Stratum
from experiments.randomization import (
    Allocation,
    HashedAssigner,
    RandomizationError,
    band_specs,
    block_ra,
    blocked_assignment,
    cluster_ra,
    stratify,
    stratum_of,
)
from experiments.randomization import Assignment as Decision
from nudge_app.db import begin_write, dialect_insert, single_writer
from nudge_app.errors import DomainError
from nudge_app.extensions import db
from nudge_app.models import Assignment, Campaign, Participant, StratumCounter
from nudge_app.services import answers, audit, saturation_assignment, screening
from nudge_app.services.frozen import KeptWhileFrozen

log = logging.getLogger(__name__)

# The design's `cluster` names which participant field holds the cluster id.
CLUSTER_FIELDS = {"household": "cluster", "cluster": "cluster", "neighbourhood": "neighbourhood"}


class AssignmentError(DomainError):
    """A participant or campaign that cannot be randomized now."""

    http_status = 409
    code = "not_assigned"


class CampaignNotRunning(AssignmentError):
    """The campaign is draft, paused or closed: nobody is assigned."""

    def __init__(self, campaign: Campaign):
        super().__init__(
            f"campaign {campaign.slug!r} is {campaign.status}: participants are assigned "
            "only while it is running"
        )
        self.status = campaign.status


@dataclass(frozen=True)
class Plan:
    """A campaign's randomization settings as the experiments functions take them."""

    method: str
    seed: int
    block_multiples: tuple[int, ...]
    specs: tuple[BandSpec, ...]
    cluster_field: str | None
    allocation: Allocation
    arm_ids: tuple[int, ...]
    salt: str
    # A randomized saturation design: the saturations and the control arm's key.
    saturations: tuple[float, ...] = ()
    control_key: str = ""

    def arm_id(self, arm_key: str) -> int:
        return self.arm_ids[self.allocation.index(arm_key)]


def plan_of(campaign: Campaign) -> Plan:
    """The campaign's plan (kept once launched, not rebuilt for every person)."""
    return _PLANS(campaign)


def _plan_of(campaign: Campaign) -> Plan:
    r = campaign.randomization or {}
    arms = sorted(campaign.arms, key=lambda a: a.position)
    strata = [s if isinstance(s, Stratum) else Stratum(**s) for s in r.get("strata", [])]
    cluster = r.get("cluster")
    return Plan(
        method=r.get("method", "blocked"),
        seed=int(r.get("seed", 0)),
        block_multiples=tuple(int(m) for m in r.get("block_multiples", [1, 2])),
        specs=tuple(band_specs(strata)),
        cluster_field=CLUSTER_FIELDS.get(cluster) if cluster else None,
        allocation=Allocation(tuple(a.key for a in arms), tuple(float(a.weight) for a in arms)),
        arm_ids=tuple(a.id for a in arms),
        salt=campaign.salt,
        saturations=tuple(float(x) for x in r.get("saturations") or ()),
        control_key=next((a.key for a in arms if a.is_control), ""),
    )


_PLANS = KeptWhileFrozen(_plan_of)


def baseline_values(participant: Participant, specs: Sequence[BandSpec]) -> dict[str, object]:
    """The participant's values of the stratum moderators (measured before randomization)."""
    return {spec.column: answers.value(participant, spec.column) for spec in specs}


def stratum_key(plan: Plan, participant: Participant) -> str:
    """The stratum the participant is randomized in ('' when the design is not blocked)."""
    if plan.method != "blocked" or not plan.specs:
        return ""
    return stratum_of(baseline_values(participant, plan.specs), plan.specs)


# --- one participant at a time -----------------------------------------------------------


def assignment_of(participant: Participant) -> Assignment | None:
    return db.session.scalar(select(Assignment).where(Assignment.participant_id == participant.id))


def assign(participant: Participant, unassigned: bool = False) -> Assignment:
    """The participant's assignment: the existing one, or a new one given now.

    Sticky: an assignment never changes. Raises CampaignNotRunning unless the campaign is
    running. Safe under concurrency: the participant row is locked (PostgreSQL; SQLite
    holds its single write lock already), block slots come from an atomic counter, and a
    racing duplicate insert is caught in a savepoint and answered with the winner's row.
    `unassigned=True` says the caller has just found no assignment in this transaction.
    """
    existing = None if unassigned else assignment_of(participant)
    if existing is not None:
        return existing
    campaign = db.session.get(Campaign, participant.campaign_id)
    if campaign.status != "running":
        raise CampaignNotRunning(campaign)
    racing = not single_writer(db.session)
    # Serialize this participant's own racing requests before taking a slot (so a
    # duplicate never burns a block slot), then look again. SQLite: take the one write
    # lock, and look again only if it was not already held.
    if racing:
        db.session.execute(
            select(Participant.id).where(Participant.id == participant.id).with_for_update()
        )
    if (racing or begin_write(db.session)) and (existing := assignment_of(participant)):
        return existing
    plan = plan_of(campaign)
    decision = _decide(plan, campaign, participant)
    row = Assignment(
        participant_id=participant.id,
        campaign_id=campaign.id,
        arm_id=plan.arm_id(decision.arm),
        stratum=decision.stratum,
        method=decision.method,
        probability=decision.probability,
        slot=decision.slot,
    )
    if not racing:  # SQLite: this transaction is the only writer
        db.session.add(row)
        db.session.flush()
        return row
    try:
        with db.session.begin_nested():
            db.session.add(row)
            db.session.flush()
    except IntegrityError:
        existing = assignment_of(participant)
        if existing is None:
            raise
        return existing
    return row


def _decide(plan: Plan, campaign: Campaign, participant: Participant) -> Decision:
    if plan.cluster_field:
        return _cluster_decision(plan, campaign, participant)
    if plan.method == "simple":
        return HashedAssigner(plan.salt, plan.allocation).assign(participant.id)
    key = stratum_key(plan, participant)
    slot = take_slot(campaign.id, key)
    method = "blocked" if plan.method == "blocked" and plan.specs else "complete"
    return blocked_assignment(
        plan.seed, key, slot, plan.allocation, plan.block_multiples, method=method
    )


def _cluster_decision(plan: Plan, campaign: Campaign, participant: Participant) -> Decision:
    """Every member of a cluster gets its arm: inherited if a member has one, else hashed.

    Hashing the cluster id with the campaign salt needs no state, so two members of a new
    cluster enrolling at the same moment get the same arm. In a saturation design the
    cluster's saturation is inherited or hashed, and the member hashed to the offered arm
    with that probability (saturation_assignment).
    """
    if plan.saturations:
        treated, stratum, probability = saturation_assignment.arrival(
            plan.saturations, plan.salt, plan.cluster_field or "cluster", campaign, participant
        )
        control, offered = saturation_assignment.offered_index(
            plan.allocation.arms, plan.control_key
        )
        arm_key = plan.allocation.arms[offered if treated else control]
        return Decision(arm_key, stratum, "cluster", probability)
    cluster = getattr(participant, plan.cluster_field or "cluster", None)
    if cluster is None or not str(cluster).strip():
        cluster_id = f"participant:{participant.id}"  # no cluster given: a cluster of one
    else:
        cluster_id = str(cluster).strip()
        column = getattr(Participant, plan.cluster_field or "cluster")
        member = db.session.execute(
            select(Assignment.arm_id, Assignment.probability, Assignment.stratum)
            .join(Participant, Participant.id == Assignment.participant_id)
            .where(Participant.campaign_id == campaign.id, column == cluster)
            .limit(1)
        ).first()
        if member is not None:
            arm_key = plan.allocation.arms[plan.arm_ids.index(member.arm_id)]
            return Decision(arm_key, member.stratum, "cluster", member.probability)
    hashed = HashedAssigner(plan.salt, plan.allocation).assign(f"cluster:{cluster_id}")
    return Decision(hashed.arm, "", "cluster", hashed.probability)


def take_slot(campaign_id: int, stratum: str) -> int:
    """The next free block slot of a stratum (0, 1, 2, ...), taken atomically.

    One `UPDATE ... SET next_slot = next_slot + 1 ... RETURNING`: the row lock makes
    concurrent takers queue, so each gets a different slot. The row is created on first
    use with INSERT ... ON CONFLICT DO NOTHING, so two first takers do not collide.
    """
    params = {"counter_campaign": campaign_id, "counter_stratum": stratum}
    taken = db.session.execute(_TAKE_SLOT, params).scalar()
    if taken is None:
        db.session.execute(
            dialect_insert(_COUNTER, db.session.get_bind().dialect.name)
            .values(campaign_id=campaign_id, stratum=stratum, next_slot=0)
            .on_conflict_do_nothing(index_elements=["campaign_id", "stratum"])
        )
        taken = db.session.execute(_TAKE_SLOT, params).scalar_one()
    return int(taken) - 1


_COUNTER = StratumCounter.__table__
# Built once, so each assignment reuses the compiled statement.
_TAKE_SLOT = (
    update(_COUNTER)
    .where(
        _COUNTER.c.campaign_id == bindparam("counter_campaign"),
        _COUNTER.c.stratum == bindparam("counter_stratum"),
    )
    .values(next_slot=_COUNTER.c.next_slot + 1)
    .returning(_COUNTER.c.next_slot)
)


# --- a list at once ------------------------------------------------------------------------


def _batch_seed(seed: int, first_batch: bool, first_participant_id: int) -> int:
    # The first batch uses the campaign seed itself, so `nudge randomize` on the exported
    # list (--id external_ref, same strata and seed) replays it; later batches (people
    # imported while running) get a seed derived from the campaign seed and the batch.
    if first_batch:
        return int(seed)
    digest = hashlib.sha256(f"nudge-list-batch|{int(seed)}|{first_participant_id}".encode())
    return int.from_bytes(digest.digest()[:8], "big") >> 1


def randomize_list(campaign: Campaign, actor: str = "system") -> int:
    """Randomize every unassigned, not refused, not opted-out, eligible participant of a
    list campaign (screening first those not yet screened).

    Allowed while the campaign is running or paused (launched, design frozen).
    Exact counts per arm within every stratum (randomizr `block_ra`), units ordered by
    external reference, reproducible from the seed recorded in the audit trail. Cluster
    designs randomize clusters, and members of a cluster already assigned inherit its arm.
    Returns the number of participants assigned now.
    """
    # A paused campaign is launched and frozen: people imported now are randomized now
    # and hear from the campaign when it resumes. Drafts wait for launch; closed is closed.
    if campaign.status not in ("running", "paused"):
        raise CampaignNotRunning(campaign)
    # One batch randomization at a time per campaign (an import racing the launch).
    db.session.execute(select(Campaign.id).where(Campaign.id == campaign.id).with_for_update())
    plan = plan_of(campaign)
    people = list(
        db.session.scalars(screening.awaiting_assignment(campaign).order_by(Participant.id))
    )
    # Eligibility before randomization: only the eligible are randomized; people the
    # rules screen out take no place in any stratum (people missing an answer the rules
    # need wait for the baseline page).
    people = screening.screen_batch(campaign, people)
    if not people:
        return 0
    first_batch = (
        db.session.scalar(
            select(Assignment.id).where(Assignment.campaign_id == campaign.id).limit(1)
        )
        is None
    )
    seed = _batch_seed(plan.seed, first_batch, people[0].id)
    keys = np.array([p.external_ref or f"#{p.id}" for p in people], dtype=object)
    order = np.argsort(keys.astype(str), kind="stable")
    blocked = plan.method == "blocked" and bool(plan.specs)
    columns = (
        {
            spec.column: np.array(
                [baseline_values(p, [spec])[spec.column] for p in people], dtype=object
            )
            for spec in plan.specs
        }
        if blocked
        else {}
    )
    strata = stratify(columns, list(plan.specs) if blocked else [], n_units=len(people))
    codes = strata.codes
    labels = np.asarray(strata.labels, dtype=object)
    arm_idx = np.empty(len(people), dtype=np.int64)
    method: str
    note: dict[str, object] = {}
    unit_probs = None
    if plan.cluster_field and plan.saturations:
        method = "cluster"
        treated, stratum_per_unit, unit_probs = saturation_assignment.batch(
            plan.saturations, plan.salt, plan.cluster_field, campaign, people, seed
        )
        control, offered = saturation_assignment.offered_index(
            plan.allocation.arms, plan.control_key
        )
        arm_idx = np.where(treated, offered, control).astype(np.int64)
        note = {"saturations": list(plan.saturations)}
    elif plan.cluster_field:
        method = "cluster"
        arm_idx, labels_per_unit, note = _cluster_batch(plan, campaign, people, codes, labels, seed)
        stratum_per_unit = labels_per_unit
    else:
        method = "blocked" if blocked else "complete"
        arm_idx[order] = block_ra(codes[order], plan.allocation, seed)
        stratum_per_unit = labels[codes]
    probs = np.asarray(plan.allocation.probabilities)
    rows = [
        {
            "participant_id": p.id,
            "campaign_id": campaign.id,
            "arm_id": plan.arm_ids[int(a)],
            "stratum": str(stratum_per_unit[i]),
            "method": method,
            "probability": float(probs[int(a)] if unit_probs is None else unit_probs[i]),
            "slot": None,
        }
        for i, (p, a) in enumerate(zip(people, arm_idx, strict=True))
    ]
    table = Assignment.__table__
    for start in range(0, len(rows), 5000):
        db.session.execute(insert(table), rows[start : start + 5000])
    db.session.flush()
    counts = Counter(plan.allocation.arms[int(a)] for a in arm_idx)
    audit.record(
        council_id=campaign.council_id,
        actor=actor,
        action="campaign.randomize",
        object_type="campaign",
        object_id=campaign.id,
        after={
            "method": method,
            "seed": seed,
            "campaign_seed": plan.seed,
            "first_batch": first_batch,
            "participants": len(rows),
            "participant_ids": [people[0].id, people[-1].id],
            "unit_order": "external_ref",
            "arm_counts": dict(counts),
            **note,
        },
    )
    log.info("campaign %s: %d participants randomized in batch", campaign.id, len(rows))
    return len(rows)


def _cluster_batch(
    plan: Plan,
    campaign: Campaign,
    people: list[Participant],
    codes: np.ndarray,
    labels: np.ndarray,
    seed: int,
) -> tuple[np.ndarray, np.ndarray, dict[str, object]]:
    """Clusters randomized together; members of clusters assigned before inherit the arm."""
    field = plan.cluster_field or "cluster"
    cluster_ids = np.array(
        [
            str(getattr(p, field)).strip()
            if getattr(p, field) is not None and str(getattr(p, field)).strip()
            else f"participant:{p.id}"
            for p in people
        ],
        dtype=object,
    )
    column = getattr(Participant, field)
    known = {
        str(c).strip(): (arm_id, stratum)
        for c, arm_id, stratum in db.session.execute(
            select(column, Assignment.arm_id, Assignment.stratum)
            .join(Assignment, Assignment.participant_id == Participant.id)
            .where(Participant.campaign_id == campaign.id, column.is_not(None))
        )
    }
    arm_idx = np.full(len(people), -1, dtype=np.int64)
    stratum_per_unit = np.full(len(people), "", dtype=object)
    inherited = 0
    for i, c in enumerate(cluster_ids):
        if c in known:
            arm_idx[i] = plan.arm_ids.index(known[c][0])
            stratum_per_unit[i] = known[c][1]
            inherited += 1
    new = np.flatnonzero(arm_idx < 0)
    note: dict[str, object] = {"inherited_from_cluster": inherited}
    if len(new):
        sub_order = new[np.argsort(np.asarray([str(x) for x in cluster_ids[new]]), kind="stable")]
        sub_codes = codes[sub_order]
        blocked = len(labels) > 1
        try:
            arms = cluster_ra(
                cluster_ids[sub_order], plan.allocation, seed, sub_codes if blocked else None
            )
            note["clusters_blocked_by_strata"] = blocked
            if blocked:
                stratum_per_unit[sub_order] = labels[sub_codes]
        except RandomizationError:
            # Members of one cluster fall in different strata (ages differ within a
            # household): the clusters cannot be blocked by those strata.
            arms = cluster_ra(cluster_ids[sub_order], plan.allocation, seed, None)
            note["clusters_blocked_by_strata"] = False
        arm_idx[sub_order] = arms
    return arm_idx, stratum_per_unit, note


def on_launch(campaign: Campaign) -> int:
    """Launch hook: a `list` campaign's residents are screened and randomized in batch now;
    a survey-first campaign's imported answers screen out those they already rule out."""
    if campaign.enrolment_mode != "list":
        screening.screen_out_imported(campaign)
        return 0
    return randomize_list(campaign, actor="launch")


def arm_counts_by_stratum(campaign: Campaign) -> dict[str, dict[str, int]]:
    """Assigned participants per stratum and arm, for the console's balance table."""
    arms = {a.id: a.key for a in campaign.arms}
    out: dict[str, dict[str, int]] = {}
    for stratum, arm_id, n in db.session.execute(
        select(Assignment.stratum, Assignment.arm_id, db.func.count())
        .where(Assignment.campaign_id == campaign.id)
        .group_by(Assignment.stratum, Assignment.arm_id)
    ):
        row = out.setdefault(stratum, {key: 0 for key in arms.values()})
        row[arms[arm_id]] = int(n)
    return out


__all__ = [
    "AssignmentError",
    "CampaignNotRunning",
    "arm_counts_by_stratum",
    "assign",
    "assignment_of",
    "on_launch",
    "plan_of",
    "randomize_list",
    "take_slot",
]
