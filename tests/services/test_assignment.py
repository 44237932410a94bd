"""The assignment service: sticky enrolment-time assignment replayable from the seed, batch
randomization of list campaigns with exact counts, clusters, and refusal when not running."""

from __future__ import annotations

import copy
from collections import Counter

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner
from scipy import stats
from sqlalchemy import func, select

from experiments.design import load_design
from experiments.randomization import (
    Allocation,
    HashedAssigner,
    arm_for_slot,
    block_sequence,
)
from nudge_app.cli.randomize import command as randomize_command
from nudge_app.extensions import db
from nudge_app.models import Assignment, AuditEntry, Participant, StratumCounter
from nudge_app.services import assignment as service
from nudge_app.services import campaigns
from nudge_app.services.enrolment import new_participant
from nudge_app.services.monitoring import campaign_monitoring


def three_arm_design(catalog_path, name="self-efficacy-cleanup", **randomization):
    """A catalog design with three arms, control:efficacy:peer at 2:1:1."""
    design = load_design(str(catalog_path(name)))
    arms = design.arms[:3]
    while len(arms) < 3:
        arms.append(copy.deepcopy(arms[-1]))
    for arm, key, weight in zip(arms, ("control", "efficacy", "peer"), (2, 1, 1), strict=True):
        arm.key, arm.weight, arm.control = key, weight, key == "control"
    design.arms = arms
    for key, value in randomization.items():
        setattr(design.randomization, key, value)
    return design


def add_people(campaign, n, seed=0, consent="given", **fixed):
    rng = np.random.default_rng(seed)
    people = []
    for i in range(n):
        fields = {
            "external_ref": f"ref-{seed}-{i:05d}",
            "first_name": "Resident",
            "email": f"r{seed}-{i}@example.org",
            "age": int(rng.integers(18, 90)),
            "self_efficacy": float(np.round(rng.uniform(1, 5), 2)),
            "consent_status": consent,
        }
        fields.update(fixed)
        people.append(new_participant(campaign, **fields))
    db.session.commit()
    return people


def arm_key(row: Assignment) -> str:
    return row.arm.key


def test_enrolment_assignment_is_sticky_and_replays_from_the_seed(
    council, make_campaign, catalog_path
):
    campaign = make_campaign(council, three_arm_design(catalog_path), status="running")
    people = add_people(campaign, 120, seed=1)
    rows = [service.assign(p) for p in people]
    db.session.commit()
    alloc = Allocation(("control", "efficacy", "peer"), (2, 1, 1))
    seed = campaign.randomization["seed"]
    by_stratum: dict[str, list[Assignment]] = {}
    for p, row in zip(people, rows, strict=True):
        label = "age={}|self_efficacy={}".format(
            "18-34" if p.age < 35 else "35-54" if p.age < 55 else "55+",
            "low" if p.self_efficacy < 2.5 else "middle" if p.self_efficacy < 3.5 else "high",
        )
        assert row.stratum == label
        assert row.method == "blocked"
        assert row.probability == {"control": 0.5, "efficacy": 0.25, "peer": 0.25}[arm_key(row)]
        by_stratum.setdefault(label, []).append(row)
    for label, stratum_rows in by_stratum.items():
        # Slots 0..n-1 in enrolment order, arms exactly the replayed block sequence.
        assert [r.slot for r in stratum_rows] == list(range(len(stratum_rows)))
        replay, _ = block_sequence(seed, label, len(stratum_rows), alloc, [1, 2])
        assert [arm_key(r) for r in stratum_rows] == [alloc.arms[i] for i in replay]
        counter = db.session.scalar(
            select(StratumCounter.next_slot).where(
                StratumCounter.campaign_id == campaign.id, StratumCounter.stratum == label
            )
        )
        assert counter == len(stratum_rows)
    # Sticky: asking again returns the same row and takes no slot.
    again = service.assign(people[0])
    assert again.id == rows[0].id
    assert db.session.scalar(select(func.count()).select_from(Assignment)) == 120
    assert sum(db.session.scalars(select(StratumCounter.next_slot))) == 120


@pytest.mark.parametrize("status", ["draft", "paused", "closed"])
def test_refuses_to_assign_unless_running(council, make_campaign, status):
    campaign = make_campaign(council, status=status)
    [person] = add_people(campaign, 1)
    with pytest.raises(service.CampaignNotRunning, match=f"is {status}"):
        service.assign(person)
    assert db.session.scalar(select(func.count()).select_from(Assignment)) == 0
    assert db.session.scalar(select(func.count()).select_from(StratumCounter)) == 0


def test_simple_method_is_the_hash_of_salt_and_participant(council, make_campaign, catalog_path):
    design = three_arm_design(catalog_path, method="simple")
    campaign = make_campaign(council, design, status="running")
    people = add_people(campaign, 60, seed=2)
    assigner = HashedAssigner(campaign.salt, Allocation(("control", "efficacy", "peer"), (2, 1, 1)))
    for p in people:
        row = service.assign(p)
        assert (arm_key(row), row.method, row.slot, row.stratum) == (
            assigner.assign(p.id).arm,
            "simple",
            None,
            "",
        )
    assert db.session.scalar(select(func.count()).select_from(StratumCounter)) == 0


def test_complete_method_uses_one_sequence_for_the_campaign(council, make_campaign, catalog_path):
    campaign = make_campaign(
        council, three_arm_design(catalog_path, method="complete"), status="running"
    )
    people = add_people(campaign, 40, seed=3)
    rows = [service.assign(p) for p in people]
    assert {r.stratum for r in rows} == {""} and {r.method for r in rows} == {"complete"}
    assert [r.slot for r in rows] == list(range(40))
    seed = campaign.randomization["seed"]
    assert [arm_key(r) for r in rows] == [
        arm_for_slot(seed, "", k, ("control", "efficacy", "peer"), (2, 1, 1), [1, 2])
        for k in range(40)
    ]


def test_arrival_clusters_share_an_arm(council, make_campaign, catalog_path):
    design = three_arm_design(catalog_path, cluster="household")
    campaign = make_campaign(council, design, status="running")
    people = []
    for h in range(30):
        people += add_people(campaign, 3, seed=100 + h, cluster=f"house-{h}")
    [loner] = add_people(campaign, 1, seed=999)
    rows = {p.id: service.assign(p) for p in [*people, loner]}
    db.session.commit()
    for h in range(30):
        members = [p for p in people if p.cluster == f"house-{h}"]
        assert len({rows[p.id].arm_id for p in members}) == 1
        assert {rows[p.id].method for p in members} == {"cluster"}
    # The first member's arm is the hash of the cluster id: replayable without state.
    assigner = HashedAssigner(campaign.salt, Allocation(("control", "efficacy", "peer"), (2, 1, 1)))
    assert arm_key(rows[people[0].id]) == assigner.assign("cluster:house-0").arm
    assert arm_key(rows[loner.id]) == assigner.assign(f"cluster:participant:{loner.id}").arm


def list_design(catalog_path, **randomization):
    design = three_arm_design(catalog_path, "council-consultation", **randomization)
    design.follow_ups = []
    return design


def test_list_campaign_is_randomized_in_batch_at_launch(
    council, make_campaign, catalog_path, tmp_path
):
    campaign = make_campaign(council, list_design(catalog_path), status="draft")
    people = add_people(campaign, 403, seed=4, consent="pending")
    refused = add_people(campaign, 3, seed=5, consent="refused")
    campaigns.launch_campaign(campaign, actor="test")
    db.session.commit()
    rows = {r.participant_id: r for r in db.session.scalars(select(Assignment))}
    assert set(rows) == {p.id for p in people}
    assert not any(p.id in rows for p in refused)
    frame = pd.DataFrame(
        {
            "ref": [p.external_ref for p in people],
            "age": [p.age for p in people],
            "self_efficacy": [p.self_efficacy for p in people],
            "arm": [arm_key(rows[p.id]) for p in people],
            "stratum": [rows[p.id].stratum for p in people],
        }
    )
    assert {rows[p.id].method for p in people} == {"blocked"}
    for _, g in frame.groupby("stratum"):
        counts = g["arm"].value_counts()
        for arm, share in {"control": 0.5, "efficacy": 0.25, "peer": 0.25}.items():
            assert abs(counts.get(arm, 0) - len(g) * share) < 1
    entry = db.session.scalar(select(AuditEntry).where(AuditEntry.action == "campaign.randomize"))
    assert entry.after["participants"] == 403 and entry.after["first_batch"] is True
    # An auditor replays the batch with `nudge randomize` on the exported list.
    src, out = tmp_path / "list.csv", tmp_path / "out.csv"
    frame[["ref", "age", "self_efficacy"]].to_csv(src, index=False)
    result = CliRunner().invoke(
        randomize_command,
        [
            str(src),
            "--arms",
            "control,efficacy,peer",
            "--weights",
            "2,1,1",
            "--id",
            "ref",
            "--strata",
            "age:35,55",
            "--strata",
            "self_efficacy:2.5,3.5",
            "--seed",
            str(campaign.randomization["seed"]),
            "--out",
            str(out),
        ],
    )
    assert result.exit_code == 0, result.output
    assert pd.read_csv(out)["arm"].tolist() == frame["arm"].tolist()


def test_list_import_while_running_randomizes_only_the_newcomers(
    council, make_campaign, catalog_path
):
    campaign = make_campaign(council, list_design(catalog_path), status="draft")
    first = add_people(campaign, 50, seed=6, consent="pending")
    campaigns.launch_campaign(campaign, actor="test")
    db.session.commit()
    before = {r.participant_id: r.arm_id for r in db.session.scalars(select(Assignment))}
    later = add_people(campaign, 41, seed=7, consent="pending")
    assert service.randomize_list(campaign) == 41
    db.session.commit()
    after = {r.participant_id: r.arm_id for r in db.session.scalars(select(Assignment))}
    assert {k: after[k] for k in before} == before
    assert set(after) == {p.id for p in first + later}
    assert service.randomize_list(campaign) == 0  # nobody left: nothing changes
    # An enrolment-time call on a list participant returns the batch assignment.
    assert service.assign(later[0]).arm_id == after[later[0].id]


def test_list_clusters_inherit_across_batches(council, make_campaign, catalog_path):
    campaign = make_campaign(
        council, list_design(catalog_path, cluster="household"), status="draft"
    )
    people = []
    for h in range(24):
        people += add_people(campaign, 2, seed=200 + h, consent="pending", cluster=f"h{h}")
    campaigns.launch_campaign(campaign, actor="test")
    db.session.commit()
    arm_of = {r.participant_id: r.arm_id for r in db.session.scalars(select(Assignment))}
    per_house = {f"h{h}": {arm_of[p.id] for p in people if p.cluster == f"h{h}"} for h in range(24)}
    assert all(len(arms) == 1 for arms in per_house.values())
    counts = Counter(next(iter(a)) for a in per_house.values())
    assert sorted(counts.values()) == [6, 6, 12]  # 24 clusters at 2:1:1, exactly
    newcomer = add_people(campaign, 1, seed=300, consent="pending", cluster="h3")[0]
    service.randomize_list(campaign)
    db.session.commit()
    row = db.session.scalar(select(Assignment).where(Assignment.participant_id == newcomer.id))
    assert {row.arm_id} == per_house["h3"]


def test_arm_counts_by_stratum(council, make_campaign, catalog_path):
    campaign = make_campaign(council, three_arm_design(catalog_path), status="running")
    for p in add_people(campaign, 30, seed=8):
        service.assign(p)
    table = service.arm_counts_by_stratum(campaign)
    assert sum(sum(row.values()) for row in table.values()) == 30
    assert all(set(row) == {"control", "efficacy", "peer"} for row in table.values())
    n = db.session.scalar(select(func.count()).select_from(Participant))
    assert n == 30


def test_list_batch_while_paused_but_not_in_draft_or_closed(council, make_campaign, catalog_path):
    draft = make_campaign(council, list_design(catalog_path), status="draft")
    add_people(draft, 5, seed=9, consent="pending")
    with pytest.raises(service.CampaignNotRunning, match="is draft"):
        service.randomize_list(draft)
    paused = make_campaign(council, list_design(catalog_path), status="paused")
    add_people(paused, 7, seed=10, consent="pending")
    assert service.randomize_list(paused) == 7
    closed = make_campaign(council, list_design(catalog_path), status="closed")
    with pytest.raises(service.CampaignNotRunning, match="is closed"):
        service.randomize_list(closed)


def test_monitoring_counts_households_not_people(council, make_campaign, catalog_path):
    design = three_arm_design(catalog_path, cluster="household")
    campaign = make_campaign(council, design, status="running")
    sizes = [1 + (h * 7) % 9 for h in range(30)]  # households of 1 to 9 people
    people = []
    for h, size in enumerate(sizes):
        people += add_people(campaign, size, seed=500 + h, cluster=f"house-{h}")
    [loner] = add_people(campaign, 1, seed=999)  # no cluster id: a cluster of one
    arm_of = {}
    for p in [*people, loner]:
        row = service.assign(p)
        arm_of[p.cluster or f"alone-{p.id}"] = row.arm.key
    db.session.commit()
    m = campaign_monitoring(campaign)
    households = Counter(arm_of.values())
    assert m.srm.observed == {k: households.get(k, 0) for k in m.arms}
    assert sum(m.srm.observed.values()) == 31 < sum(m.by_arm.values())
    # Test side: Pearson's chi-square of the household counts against 2:1:1.
    obs = np.array([households.get(k, 0) for k in ("control", "efficacy", "peer")])
    ref = stats.chisquare(obs, obs.sum() * np.array([0.5, 0.25, 0.25]))
    assert m.srm.p_value == pytest.approx(ref.pvalue, rel=1e-9)
    assert "clusters" in m.srm.message
    assert m.planned_sample_size == campaign.planned_sample_size
