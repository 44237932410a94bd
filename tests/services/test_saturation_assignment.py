"""Saturation designs in the app: a list randomized at launch gets one saturation per
neighbourhood (counts within one) and treated counts within one of s x size; an arriving
member takes their neighbourhood's saturation; the stratum and probability record both."""

from __future__ import annotations

from collections import Counter, defaultdict

import pytest

from experiments.design import load_design
from nudge_app.extensions import db
from nudge_app.models import Assignment, Participant
from nudge_app.services import campaigns, enrolment
from nudge_app.services.assignment import assign
from nudge_app.services.saturation_assignment import saturation_of_label


@pytest.fixture
def design(catalog_path):
    return load_design(str(catalog_path("peer-mentoring")))


def _people(campaign, n=400, hoods=24):
    for i in range(n):
        enrolment.new_participant(
            campaign, external_ref=f"R{i:05d}", neighbourhood=f"hood{i % hoods:02d}",
            email=f"r{i}@example.org", first_name="Ann",
        )  # fmt: skip
    db.session.commit()


def test_list_launch_randomizes_neighbourhoods_to_saturations(council, make_campaign, design):
    campaign = make_campaign(council, design)
    _people(campaign)
    campaigns.launch_campaign(campaign, actor="test")
    db.session.commit()
    rows = db.session.execute(
        db.select(Participant.neighbourhood, Assignment.stratum, Assignment.probability,
                  Assignment.arm_id)
        .join(Assignment, Assignment.participant_id == Participant.id)
    ).all()  # fmt: skip
    assert len(rows) == 400
    mentor_id = next(a.id for a in campaign.arms if a.key == "mentor")
    by_hood = defaultdict(list)
    for hood, stratum, prob, arm_id in rows:
        by_hood[hood].append((saturation_of_label(stratum), prob, arm_id == mentor_id))
    per_level = Counter()
    for members in by_hood.values():
        levels = {s for s, _, _ in members}
        assert len(levels) == 1
        (s,) = levels
        per_level[s] += 1
        treated = sum(t for _, _, t in members)
        assert abs(treated - s * len(members)) < 1
        for _, prob, t in members:
            assert prob == pytest.approx(s if t else 1 - s)
    assert set(per_level) == {0.0, 0.4, 0.8}
    assert max(per_level.values()) - min(per_level.values()) <= 1


def test_arriving_member_takes_their_neighbourhoods_saturation(council, make_campaign, design):
    design.enrolment_mode = "survey-first"
    campaign = make_campaign(council, design, status="running")
    first = enrolment.new_participant(campaign, neighbourhood="Elm Row", consent_status="given")
    a = assign(first)
    others = [
        enrolment.new_participant(campaign, neighbourhood="Elm Row", consent_status="given")
        for _ in range(30)
    ]
    labels = {assign(p).stratum for p in others}
    assert labels == {a.stratum} and saturation_of_label(a.stratum) in (0.0, 0.4, 0.8)
    s = saturation_of_label(a.stratum)
    mentor = sum(p.assignment.arm.key == "mentor" for p in [first, *others])
    if s == 0:
        assert mentor == 0
    for p in [first, *others]:
        treated = p.assignment.arm.key == "mentor"
        assert p.assignment.probability == pytest.approx(s if treated else 1 - s)


def test_monitoring_tests_arm_sizes_by_saturation(council, make_campaign, design):
    """The monitor's sample ratio check of a saturation design: clusters per saturation
    (scipy's Pearson) plus members offered at their cluster's share (binomial z), not
    a count of clusters per arm (every cluster has members in both arms)."""
    import numpy as np
    from scipy import stats

    from nudge_app.services.monitoring import campaign_monitoring

    campaign = make_campaign(council, design)
    _people(campaign, n=600, hoods=30)
    campaigns.launch_campaign(campaign, actor="test")
    db.session.commit()
    mentor_id = next(a.id for a in campaign.arms if a.key == "mentor")
    rows = db.session.execute(
        db.select(Participant.neighbourhood, Assignment.stratum, Assignment.arm_id).join(
            Assignment, Assignment.participant_id == Participant.id
        )
    ).all()
    hood_level = {h: saturation_of_label(s) for h, s, _ in rows}
    per_level = Counter(hood_level.values())
    statistic = stats.chisquare([per_level[x] for x in (0.0, 0.4, 0.8)]).statistic
    for x in (0.4, 0.8):
        at = [a == mentor_id for _, s, a in rows if saturation_of_label(s) == x]
        statistic += (sum(at) - len(at) * x) ** 2 / (len(at) * x * (1 - x))
    status = campaign_monitoring(campaign).srm
    assert status.status == "ok", status.message
    assert status.p_value == pytest.approx(stats.chi2.sf(statistic, 4), rel=1e-8)
    assert "3 strata" in status.message and np.isfinite(status.p_value)
