"""API enrolment in a campaign with eligibility rules: `"eligible": false` with the rule the
person did not meet, and nothing about anyone else; answers the rules need are required."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from experiments.design import Eligibility
from nudge_app.models import StratumCounter

RULES = ["individual_coproduction >= 1", "collective_coproduction = 0"]


@pytest.fixture
def targeted(council, make_campaign):
    return make_campaign(council, status="running", eligibility=Eligibility(list(RULES)))


def _counters(db_session, campaign) -> int:
    return db_session.scalar(
        select(func.coalesce(func.sum(StratumCounter.next_slot), 0)).where(
            StratumCounter.campaign_id == campaign.id
        )
    )


def test_api_enrolment_says_eligible_false_with_the_rule_and_nothing_else(
    client, council, targeted, api_token, db_session
):
    headers = api_token(council)
    url = f"/api/v1/campaigns/{targeted.slug}/enrolments"
    person = {
        "first_name": "Sam",
        "age": 44,
        "gender": "woman",
        "se_safety": 2,
        "se_environment": 3,
        "se_health": 3,
        "consent": True,
    }
    yes = client.post(
        url,
        json={
            **person,
            "external_ref": "crm-1",
            "email": "sam1@example.org",
            "individual_coproduction": "recycle",
            "collective_coproduction": 0,
        },
        headers=headers,
    )
    assert yes.status_code == 201, yes.get_json()
    assert yes.get_json()["eligible"] is True and yes.get_json()["arm"] is not None
    no = client.post(
        url,
        json={
            **person,
            "external_ref": "crm-2",
            "email": "sam2@example.org",
            "individual_coproduction": "recycle",
            "collective_coproduction": "weekly",
        },
        headers=headers,
    )
    body = no.get_json()
    assert no.status_code == 201, body
    assert body["eligible"] is False
    assert body["failed_rule"] == "collective_coproduction = 0"
    assert body["arm"] is None and body["stratum"] is None
    assert set(body) == {
        "participant_id",
        "external_ref",
        "consent_status",
        "eligible",
        "failed_rule",
        "arm",
        "stratum",
        "probability",
        "assigned_at",
        "link",
    }
    again = client.get(f"/api/v1/campaigns/{targeted.slug}/assignments/crm-2", headers=headers)
    assert again.get_json()["eligible"] is False and again.get_json()["arm"] is None
    missing = client.post(
        url,
        json={**person, "external_ref": "crm-3", "email": "sam3@example.org"},
        headers=headers,
    )
    assert missing.status_code == 422
    assert set(missing.get_json()["details"]["fields"]) == {
        "individual_coproduction",
        "collective_coproduction",
    }
    assert _counters(db_session, targeted) == 1
