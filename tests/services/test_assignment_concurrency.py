"""Concurrent enrolment: many processes assign thousands of participants in one campaign.

Every participant must end with exactly one assignment, every stratum's block slots must
be taken once each (0..n-1, no two enrolments on one slot), each arm must be the one the
seed puts at that slot, and every stratum must be within one block of balance. Pairs of
processes start on the same participants, so people also race with themselves.
"""

from __future__ import annotations

import multiprocessing
import secrets
import time
from collections import Counter, defaultdict
from pathlib import Path

import numpy as np
import pytest

from experiments.randomization import Allocation, arm_for_slot, slot_position

SEED = 20261130
ARMS = ("control", "efficacy", "peer")
WEIGHTS = (2, 1, 1)
MULTIPLES = [1, 2]


def settings(url: str, instance: Path) -> dict:
    return {
        "ENV_NAME": "testing",
        "TESTING": True,
        "SECRET_KEY": "testing-secret-key",
        "SQLALCHEMY_DATABASE_URI": url,
        "INSTANCE_PATH": str(instance),
        "FILE_CHANNEL_PATH": str(instance / "outbox.jsonl"),
        "RATELIMIT_ENABLED": False,
        "BASE_URL": "http://localhost",
        "SERVER_NAME": None,
    }


def setup_campaign(url: str, instance: Path, n: int) -> tuple[int, list[int]]:
    """A running survey-first campaign (2:1:1, age x self-efficacy strata) and n people."""
    from sqlalchemy import insert

    from experiments.design import load_design
    from nudge_app import create_app
    from nudge_app.db import utcnow
    from nudge_app.extensions import db
    from nudge_app.models import Participant
    from nudge_app.services import campaigns
    from nudge_app.services.councils import create_council

    catalog = Path(__file__).resolve().parents[2] / "experiments" / "catalog"
    design = load_design(str(catalog / "self-efficacy-cleanup.toml"))
    extra = design.arms[1].__class__(**{**design.arms[1].__dict__, "key": "peer", "name": "Peer"})
    design.arms.append(extra)
    for arm, w in zip(design.arms, WEIGHTS, strict=True):
        arm.weight = w
    design.randomization.seed = SEED
    design.randomization.block_multiples = MULTIPLES
    design.follow_ups = []
    app = create_app(settings(url, instance))
    with app.app_context():
        council = create_council("concurrency", "Concurrency Council")
        campaign = campaigns.create_campaign(council, design, actor="test")
        campaigns.launch_campaign(campaign, actor="test")
        rng = np.random.default_rng(11)
        now = utcnow()
        rows = [
            {
                "campaign_id": campaign.id,
                "external_ref": f"r{i}",
                "access_nonce": secrets.token_hex(16),
                "access_token_hash": secrets.token_hex(32),
                "age": int(rng.integers(18, 90)),
                "self_efficacy": float(np.round(rng.uniform(1, 5), 2)),
                "consent_status": "given",
                "baseline_completed_at": now,
                "created_at": now,
            }
            for i in range(n)
        ]
        table = Participant.__table__
        ids = list(db.session.execute(insert(table).returning(table.c.id), rows).scalars())
        db.session.commit()
        campaign_id = campaign.id
        db.session.remove()
        db.engine.dispose()
    return campaign_id, ids


def worker(url: str, instance: str, ids: list[int], start_at: float, results) -> None:
    """One process: enrol its participants one transaction each, retrying lock timeouts."""
    from sqlalchemy.exc import OperationalError

    from nudge_app import create_app
    from nudge_app.extensions import db
    from nudge_app.models import Participant
    from nudge_app.services.assignment import assign

    app = create_app(settings(url, Path(instance)))
    retries, errors = 0, []
    with app.app_context():
        time.sleep(max(0.0, start_at - time.time()))
        for pid in ids:
            for _attempt in range(10):
                try:
                    participant = db.session.get(Participant, pid)
                    assign(participant)
                    db.session.commit()
                    break
                except OperationalError:
                    db.session.rollback()
                    retries += 1
                except Exception as exc:  # reported to the test, which fails on it
                    db.session.rollback()
                    errors.append(f"{pid}: {type(exc).__name__}: {exc}")
                    break
            else:
                errors.append(f"{pid}: gave up after 10 attempts")
        db.session.remove()
        db.engine.dispose()
    results.put((retries, errors))


def run_workers(url: str, instance: Path, ids: list[int], processes: int, overlap: int) -> int:
    rng = np.random.default_rng(5)
    order = [int(i) for i in rng.permutation(ids)]
    chunks = [order[k::processes] for k in range(processes)]
    # Pairs of processes begin with the same participants: they race for the same person.
    for k in range(0, processes - 1, 2):
        shared = chunks[k][:overlap]
        chunks[k + 1] = shared + chunks[k + 1]
    ctx = multiprocessing.get_context("spawn")
    results = ctx.Queue()
    start_at = time.time() + 8.0  # after every process has imported and built its app
    procs = [
        ctx.Process(target=worker, args=(url, str(instance), chunk, start_at, results))
        for chunk in chunks
    ]
    for p in procs:
        p.start()
    outcomes = [results.get(timeout=900) for _ in procs]
    for p in procs:
        p.join(timeout=60)
        assert p.exitcode == 0
    errors = [e for _, errs in outcomes for e in errs]
    assert errors == [], errors[:5]
    return sum(r for r, _ in outcomes)


def check_database(url: str, instance: Path, campaign_id: int, ids: list[int]) -> None:
    from sqlalchemy import select

    from nudge_app import create_app
    from nudge_app.extensions import db
    from nudge_app.models import Arm, Assignment, StratumCounter

    alloc = Allocation(ARMS, WEIGHTS)
    app = create_app(settings(url, instance))
    with app.app_context():
        rows = db.session.execute(
            select(
                Assignment.participant_id,
                Assignment.stratum,
                Assignment.slot,
                Assignment.probability,
                Assignment.arm_id,
            ).where(Assignment.campaign_id == campaign_id)
        ).all()
        arms = {
            a.id: a.key
            for a in db.session.scalars(select(Arm).where(Arm.campaign_id == campaign_id))
        }
        counters = dict(
            db.session.execute(
                select(StratumCounter.stratum, StratumCounter.next_slot).where(
                    StratumCounter.campaign_id == campaign_id
                )
            ).all()
        )
        db.session.remove()
        db.engine.dispose()
    # Everyone once, nobody twice.
    assert len(rows) == len(ids)
    assert Counter(r.participant_id for r in rows) == Counter(ids)
    by_stratum: dict[str, list] = defaultdict(list)
    for r in rows:
        by_stratum[r.stratum].append(r)
    longest = alloc.unit * max(MULTIPLES)
    for stratum, group in by_stratum.items():
        slots = sorted(r.slot for r in group)
        assert slots == list(range(len(group))), f"{stratum}: slots taken twice or skipped"
        assert counters[stratum] == len(group)
        for r in group:
            assert arms[r.arm_id] == arm_for_slot(SEED, stratum, r.slot, ARMS, WEIGHTS, MULTIPLES)
            assert (
                r.probability == dict(zip(ARMS, alloc.probabilities, strict=True))[arms[r.arm_id]]
            )
        # At most the last block is incomplete, so balance is within one block.
        blocks = Counter(slot_position(SEED, stratum, r.slot, alloc, MULTIPLES)[0] for r in group)
        last = max(blocks)
        for b, n in blocks.items():
            if b != last:
                assert n % alloc.unit == 0 and n in (alloc.unit * m for m in MULTIPLES)
        counts = Counter(arms[r.arm_id] for r in group)
        for arm, p in zip(ARMS, alloc.probabilities, strict=True):
            assert abs(counts[arm] - len(group) * p) <= longest * p, (stratum, counts)


@pytest.mark.slow
@pytest.mark.timeout(1800)  # 5,000 transactions; minutes on a loaded 2-core machine
def test_eight_processes_enrol_5000_on_postgresql(pg_url, tmp_path):
    campaign_id, ids = setup_campaign(pg_url, tmp_path, 5000)
    run_workers(pg_url, tmp_path, ids, processes=8, overlap=60)
    check_database(pg_url, tmp_path, campaign_id, ids)


@pytest.mark.slow
@pytest.mark.timeout(1800)
def test_four_processes_enrol_on_sqlite(tmp_path):
    from nudge_app.cli.db import upgrade

    url = f"sqlite:///{tmp_path / 'concurrency.sqlite3'}"
    upgrade(url)
    campaign_id, ids = setup_campaign(url, tmp_path, 2000)
    run_workers(url, tmp_path, ids, processes=4, overlap=60)
    check_database(url, tmp_path, campaign_id, ids)
