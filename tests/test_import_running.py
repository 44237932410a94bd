"""Import into a running list campaign randomizes the newcomers in batch and schedules their
first message; monitoring counts them by arm and stratum and checks the sample ratio."""

from __future__ import annotations

import numpy as np
import pytest
from sqlalchemy import func, select

from experiments.analysis.srm import design_srm
from nudge_app.models import Assignment, OutboundMessage, Participant
from nudge_app.services.monitoring import campaign_monitoring
from nudge_app.services.participants_import import import_csv


def people(n: int, start: int = 0, prefix: str = "P") -> str:
    return "external_ref,first_name,email,age,se_safety,se_environment,se_health\n" + "".join(
        f"{prefix}{i},Kim{i},kim{i}@example.org,{20 + i % 60},{1 + i % 5},{1 + i % 3},{1 + i % 4}\n"
        for i in range(start, start + n)
    )


def test_import_into_running_list_campaign_randomizes_and_schedules(
    council, make_campaign, db_session
):
    campaign = make_campaign(council, "council-consultation")
    assert campaign.enrolment_mode == "list"
    import_csv(campaign, people(30))
    db_session.commit()
    assert db_session.scalar(select(func.count(Assignment.id))) == 0  # draft: not yet
    from nudge_app.services.campaigns import launch_campaign

    launch_campaign(campaign, actor="test")
    db_session.commit()
    assert db_session.scalar(select(func.count(Assignment.id))) == 30
    result = import_csv(campaign, people(20, start=100, prefix="N"))
    db_session.commit()
    assert result.imported == 20 and result.randomized == 20
    new_ids = select(Participant.id).where(Participant.external_ref.like("N%"))
    assigned_new = db_session.scalar(
        select(func.count(Assignment.id)).where(Assignment.participant_id.in_(new_ids))
    )
    assert assigned_new == 20
    messages = db_session.scalar(
        select(func.count(OutboundMessage.id)).where(
            OutboundMessage.participant_id.in_(new_ids), OutboundMessage.kind == "nudge"
        )
    )
    assert messages == 20 and result.messages >= 20

    m = campaign_monitoring(campaign)
    assert m.participants == 50 and m.assigned == 50
    assert sum(m.by_arm.values()) == 50
    assert sum(sum(row.values()) for row in m.by_stratum.values()) == 50
    assert sum(sum(row[k] for k in m.arms) for row in m.by_day) == 50
    weights = {a.key: a.weight for a in campaign.arms}
    # The test the design calls for: arm counts within the strata of assignment, against
    # the probabilities recorded there.
    rows = db_session.execute(
        select(Assignment.stratum, Assignment.arm_id, Assignment.probability)
    ).all()
    keys = {a.id: a.key for a in campaign.arms}
    arms = list(m.arms)
    labels = sorted({r.stratum for r in rows})
    expected = design_srm(
        np.array([arms.index(keys[r.arm_id]) for r in rows]),
        arms,
        weights,
        strata=np.array([labels.index(r.stratum) for r in rows]),
        probability=np.array([r.probability for r in rows]),
    )
    assert m.srm.status == ("mismatch" if expected.flagged else "ok")
    assert m.srm.p_value == pytest.approx(expected.p_value, rel=1e-9)
    assert sum(m.srm.expected.values()) == pytest.approx(50)
    assert m.messages["scheduled"] >= 50


def test_monitoring_flags_a_sample_ratio_mismatch(council, make_campaign, db_session):
    from nudge_app.services.monitoring import _srm

    weights = {"control": 1.0, "a": 1.0}
    assert _srm({"control": 500, "a": 380}, weights).status == "mismatch"
    assert _srm({"control": 500, "a": 490}, weights).status == "ok"
    assert _srm({"control": 1, "a": 0}, weights).status == "not_enough_data"
