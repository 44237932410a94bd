"""`nudge demo --campaign peer-mentoring`: a randomized saturation design run through the
platform (list import, batch randomization of neighbourhoods to saturations, nudges,
residents acting on the pages, mentors signing up on their pages and passing their links
on, invited residents enrolling through them); truth.json holds the spillover truth and
the report's intervals cover it."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import func, select

from nudge_app.cli import main


def _demo(runner, tmp_path, n: int, seed: int = 0):
    out = tmp_path / "peer"
    result = runner.invoke(
        main,
        ["demo", "--no-serve", "--campaign", "peer-mentoring", "--participants", str(n),
         "--seed", str(seed), "--out", str(out)],
    )  # fmt: skip
    return result, out


def _check_design(db, n: int) -> None:
    from nudge_app.models import Assignment, Participant

    rows = db.session.execute(
        select(Participant.neighbourhood, Assignment.stratum)
        .join(Assignment, Assignment.participant_id == Participant.id)
        .where(Participant.referred_by.is_(None))  # the list, randomized in batch
    ).all()
    assert len(rows) == n
    per_hood: dict[str, set] = {}
    for hood, stratum in rows:
        per_hood.setdefault(hood, set()).add(stratum)
    assert all(len(s) == 1 for s in per_hood.values())  # one saturation per neighbourhood
    counts = {}
    for (s,) in per_hood.values():
        counts[s] = counts.get(s, 0) + 1
    assert set(counts) == {"saturation=0", "saturation=0.4", "saturation=0.8"}
    assert max(counts.values()) - min(counts.values()) <= 1


def _check_mentoring(db, out, result_output: str) -> int:
    """Mentors signed up on their pages (offered arm only) and invited residents enrolled
    through their links, recorded as referred; the report compares them (`referrals`)."""
    from nudge_app.models import Arm, Assignment, Mentor, Participant

    mentors = db.session.scalars(select(Mentor)).all()
    assert mentors and all(m.note and m.stopped_at is None for m in mentors)
    arms = {
        db.session.scalar(
            select(Arm.key)
            .join(Assignment, Assignment.arm_id == Arm.id)
            .where(Assignment.participant_id == m.participant_id)
        )
        for m in mentors
    }
    assert arms == {"mentor"}  # a saturation design offers the role in the offered arm only
    referred = db.session.scalars(
        select(Participant).where(Participant.referred_by.is_not(None))
    ).all()
    assert referred and {p.referred_by for p in referred} <= {m.id for m in mentors}
    assert all(p.consent_status == "given" and p.assignment is not None for p in referred)
    assert sum(m.opened for m in mentors) >= len(referred)
    report = json.loads((out / "report.json").read_text())
    assert report["referrals"]["n_referred"] == len(referred)
    assert report["referrals"]["mentors"] == len({p.referred_by for p in referred})
    assert f"links enrolled {len(referred):,} invited residents" in result_output
    # The saturation estimates are about the list: the invited are not among them.
    listed = db.session.scalar(
        select(func.count()).select_from(Participant).where(Participant.referred_by.is_(None))
    )
    assert report["n_rows"] == listed
    return len(referred)


def test_peer_mentoring_demo_small(runner, tmp_path, app):
    from nudge_app.extensions import db

    result, out = _demo(runner, tmp_path, n=300)
    assert result.exit_code == 0, result.output
    _check_design(db, 300)
    _check_mentoring(db, out, result.output)
    truth = json.loads((out / "truth.json").read_text())
    assert set(truth["spillover"]) == {"0.4", "0.8"}
    assert set(truth["spillover"]["0.4"]) == {"direct", "spillover_untreated", "total"}
    report = json.loads((out / "report.json").read_text())
    assert [(r["arm"], r["saturation"]) for r in report["spillover"]] == [
        ("mentor", 0.4),
        ("mentor", 0.8),
    ]


@pytest.mark.slow
@pytest.mark.timeout(1800)  # 5,000 residents through the pages: minutes on a loaded machine
def test_peer_mentoring_demo_intervals_cover_the_spillover_truth(runner, tmp_path, app):
    """With the demo's default seed (0). Each 95% interval misses now and then: over 300
    re-runs they cover 92-96% (test_simulate_saturation.py), so some seeds miss one."""
    from nudge_app.extensions import db

    result, out = _demo(runner, tmp_path, n=5000)
    assert result.exit_code == 0, result.output
    _check_design(db, 5000)
    _check_mentoring(db, out, result.output)
    truth = json.loads((out / "truth.json").read_text())["spillover"]
    rows = json.loads((out / "report.json").read_text())["spillover"]
    parts = {"direct": "direct", "spillover": "spillover_untreated", "total": "total"}
    for row in rows:
        true = truth[f"{row['saturation']:g}"]
        for part, key in parts.items():
            assert row[f"{part}_ci_low"] <= true[key] <= row[f"{part}_ci_high"], (part, row, true)
