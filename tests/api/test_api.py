"""The JSON API: campaigns, arms, import, enrolment and assignment, events, monitoring."""

from __future__ import annotations

import re

from sqlalchemy import func, select

from nudge_app.models import Event, Participant

CSV = "external_ref,first_name,email,age,se_safety,se_environment,se_health\n" + "".join(
    f"R{i},Ann{i},ann{i}@example.org,{25 + i},2,3,4\n" for i in range(8)
)


def test_campaigns_list_and_detail_with_arms(client, council, make_campaign, api_token):
    campaign = make_campaign(council)
    headers = api_token(council)
    listed = client.get("/api/v1/campaigns", headers=headers)
    assert listed.status_code == 200
    assert [c["slug"] for c in listed.get_json()["campaigns"]] == [campaign.slug]
    detail = client.get(f"/api/v1/campaigns/{campaign.slug}", headers=headers).get_json()
    assert detail["status"] == "draft" and detail["design"]["name"] == campaign.name
    arms = client.get(f"/api/v1/campaigns/{campaign.slug}/arms", headers=headers).get_json()
    assert [(a["key"], a["control"]) for a in arms["arms"]] == [
        ("control", True),
        ("efficacy", False),
    ]
    missing = client.get("/api/v1/campaigns/nope", headers=headers)
    assert missing.status_code == 404
    assert set(missing.get_json()) == {"error", "message", "details"}


def test_import_csv_all_or_nothing(client, council, make_campaign, api_token, db_session):
    campaign = make_campaign(council)
    headers = {**api_token(council), "Content-Type": "text/csv"}
    url = f"/api/v1/campaigns/{campaign.slug}/participants"
    bad = client.post(url, data=CSV + "R9,Bob,bob@example.org,12,1,1,1\n", headers=headers)
    assert bad.status_code == 422
    body = bad.get_json()
    assert body["error"] == "invalid_csv"
    assert body["details"]["problems"] == [
        {"row": 10, "column": "age", "message": "12 is impossible: must be from 16 to 110"}
    ]
    count = select(func.count(Participant.id)).where(Participant.campaign_id == campaign.id)
    assert db_session.scalar(count) == 0
    ok = client.post(url, data=CSV, headers=headers)
    assert ok.status_code == 201 and ok.get_json()["imported"] == 8
    assert db_session.scalar(count) == 8


def test_enrol_assign_event_and_monitoring(client, council, make_campaign, api_token, db_session):
    campaign = make_campaign(council, status="running")  # survey-first
    headers = api_token(council)
    url = f"/api/v1/campaigns/{campaign.slug}"
    person = {
        "external_ref": "crm-1",
        "first_name": "Sam",
        "email": "sam@example.org",
        "age": 44,
        "gender": "woman",
        "se_safety": 2,
        "se_environment": 3,
        "se_health": 3,
        "consent": True,
    }
    first = client.post(f"{url}/enrolments", json=person, headers=headers)
    assert first.status_code == 201, first.get_json()
    body = first.get_json()
    assert body["arm"] in ("control", "efficacy") and body["consent_status"] == "given"
    assert re.match(r"^http://localhost/p/[A-Za-z0-9_-]{43}$", body["link"])
    again = client.post(f"{url}/enrolments", json=person, headers=headers)
    assert again.status_code == 200 and again.get_json()["arm"] == body["arm"]
    got = client.get(f"{url}/assignments/crm-1", headers=headers).get_json()
    assert got["arm"] == body["arm"] and got["stratum"]
    bad = client.post(
        f"{url}/enrolments",
        json={**person, "external_ref": "crm-2", "email": "x@y", "age": 9},
        headers=headers,
    )
    assert bad.status_code == 422
    assert set(bad.get_json()["details"]["fields"]) == {"email", "age"}
    joined = client.post(
        f"{url}/events", json={"external_ref": "crm-1", "kind": "join"}, headers=headers
    )
    assert joined.status_code == 201 and joined.get_json()["recorded"] is True
    repeat = client.post(
        f"{url}/events", json={"external_ref": "crm-1", "kind": "join"}, headers=headers
    )
    assert repeat.status_code == 200 and repeat.get_json()["recorded"] is False
    assert db_session.scalar(select(func.count(Event.id)).where(Event.kind == "join")) == 1
    m = client.get(f"{url}/monitoring", headers=headers).get_json()
    assert m["assigned"] == 1 and m["joins_by_arm"][body["arm"]] == 1
    assert m["srm"]["status"] == "not_enough_data"
    unknown = client.post(
        f"{url}/events", json={"external_ref": "nobody", "kind": "join"}, headers=headers
    )
    assert unknown.status_code == 404


def test_enrolment_refused_when_not_running(client, council, make_campaign, api_token):
    campaign = make_campaign(council)
    response = client.post(
        f"/api/v1/campaigns/{campaign.slug}/enrolments",
        json={"external_ref": "a", "email": "a@example.org"},
        headers=api_token(council),
    )
    assert response.status_code == 409
    assert response.get_json()["error"] == "campaign_not_running"


def test_openapi_describes_every_route_with_auth_and_errors(app, client):
    doc = client.get("/api/v1/openapi.json").get_json()
    assert doc["openapi"].startswith("3.")
    paths = doc["paths"]
    for rule in app.url_map.iter_rules():
        if not rule.endpoint.startswith("api."):
            continue
        path = re.sub(r"<(?:[a-z]+:)?([a-z_]+)>", r"{\1}", rule.rule[len("/api/v1") :])
        path = path.replace("{ref}", "{external_ref}")
        assert path in paths, path
        for method in rule.methods - {"HEAD", "OPTIONS"}:
            op = paths[path][method.lower()]
            if path == "/openapi.json":
                assert op["security"] == []
                continue
            assert op["security"] == [{"bearerAuth": []}]
            assert "401" in op["responses"]
            if "{slug}" in path:
                assert "404" in op["responses"]
