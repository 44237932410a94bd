"""The transaction boundary (nudge_app.boundary) and the one place that answers domain
errors (nudge_app.app), on every family of entry points: console, participant pages, API,
a CLI command and a scheduler job.

A failure is injected after a real service has done its real writes and flushed them;
a fresh connection, not the app's session, then says what the database holds.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime

import pytest
from sqlalchemy import create_engine, text

from nudge_app.errors import DomainError

PASSWORD = "correct horse battery staple"


class RefusedLate(DomainError):
    """A domain rule that refuses only after the service has written (test-only)."""

    http_status = 409
    code = "refused_late"


def fails_after(real, error: Exception):
    """The real service, then `error`: its writes are flushed when the error is raised."""

    def service(*args, **kwargs):
        from nudge_app.extensions import db

        real(*args, **kwargs)
        db.session.flush()
        raise error

    return service


@pytest.fixture
def stored(app):
    """stored(sql, **params) -> one value, read on a connection of its own: what was
    committed, whatever the app's session still holds."""
    from nudge_app.extensions import db

    engine = create_engine(db.engine.url.render_as_string(hide_password=False))

    def ask(sql: str, **params):
        with engine.connect() as conn:
            return conn.execute(text(sql), params).scalar()

    yield ask
    engine.dispose()


def csrf_token(client, path: str) -> str:
    match = re.search(r'name="csrf_token" value="([^"]+)"', client.get(path).get_data(as_text=True))
    assert match, f"no CSRF token on {path}"
    return match.group(1)


@pytest.fixture
def designer(app, council):
    """post(path, data, headers) -> response, from a designer of `council` signed in."""
    from nudge_app.extensions import db
    from nudge_app.services.staff import create_user

    user = create_user(council, "designer@testshire.gov.uk", "designer", PASSWORD)
    db.session.commit()
    client = app.test_client()
    signed_in = client.post(
        "/login",
        data={
            "email": user.email,
            "password": PASSWORD,
            "csrf_token": csrf_token(client, "/login"),
        },
    )
    assert signed_in.status_code == 302
    token = csrf_token(client, "/")

    def post(path: str, data: dict | None = None, headers: dict | None = None):
        return client.post(path, data={**(data or {}), "csrf_token": token}, headers=headers)

    return post


NEW_CAMPAIGN = {"source": "catalog", "catalog": "self-efficacy-cleanup"}


# --- console ----------------------------------------------------------------------------


def test_console_a_crash_after_the_service_wrote_keeps_nothing(designer, stored, monkeypatch):
    from nudge_app.services import campaigns

    crash = fails_after(campaigns.create_campaign, RuntimeError("disk on fire"))
    monkeypatch.setattr(campaigns, "create_campaign", crash)

    response = designer("/campaigns/new", data=NEW_CAMPAIGN)

    assert response.status_code == 500
    assert stored("SELECT count(*) FROM campaign") == 0
    assert stored("SELECT count(*) FROM audit_entry WHERE action LIKE 'campaign.%'") == 0


def test_console_the_same_request_commits_when_the_service_succeeds(designer, stored):
    response = designer("/campaigns/new", data=NEW_CAMPAIGN)

    assert response.status_code == 302
    assert stored("SELECT count(*) FROM campaign") == 1


def test_console_domain_error_is_a_page_with_status_message_and_field(
    designer, stored, monkeypatch
):
    from nudge_app.services import campaigns

    refusal = RefusedLate("the council's quota of campaigns is used up", field="name")
    monkeypatch.setattr(
        campaigns, "create_campaign", fails_after(campaigns.create_campaign, refusal)
    )

    response = designer("/campaigns/new", data=NEW_CAMPAIGN)

    assert response.status_code == 409
    assert response.mimetype == "text/html"
    page = response.get_data(as_text=True)
    assert 'data-field="name">the council&#39;s quota of campaigns is used up</p>' in page
    assert "Error code: 409" in page
    assert stored("SELECT count(*) FROM campaign") == 0


def test_console_domain_error_is_json_for_a_client_asking_for_json(designer, stored, monkeypatch):
    from nudge_app.services import campaigns

    refusal = RefusedLate("the council's quota of campaigns is used up", field="name")
    monkeypatch.setattr(
        campaigns, "create_campaign", fails_after(campaigns.create_campaign, refusal)
    )

    response = designer("/campaigns/new", data=NEW_CAMPAIGN, headers={"Accept": "application/json"})

    assert response.status_code == 409
    assert response.get_json() == {
        "error": "refused_late",
        "message": "the council's quota of campaigns is used up",
        "field": "name",
        "details": None,
    }
    assert stored("SELECT count(*) FROM campaign") == 0


def test_console_a_step_refused_after_writing_is_undone_before_the_redirect(
    designer, council, make_campaign, stored, monkeypatch
):
    from nudge_app.console import campaigns as pages
    from nudge_app.services import campaigns

    campaign = make_campaign(council)
    refused = fails_after(campaigns.launch_campaign, campaigns.CampaignStateError("refused late"))
    monkeypatch.setitem(pages.LIFECYCLE, "launch", (refused, "launched"))

    response = designer(f"/campaigns/{campaign.slug}/launch", data={"confirm": "y"})

    assert response.status_code == 303  # the refusal is shown on the campaign's page
    query = "SELECT status, launched_at FROM campaign WHERE id = :id"
    assert stored(query.replace(", launched_at", ""), id=campaign.id) == "draft"
    assert stored(query.replace("status, ", ""), id=campaign.id) is None
    assert stored("SELECT count(*) FROM audit_entry WHERE action = 'campaign.launch'") == 0


# --- participant pages ------------------------------------------------------------------


@pytest.fixture
def person(council, make_campaign):
    """A listed resident of a running campaign, and their token."""
    from nudge_app.extensions import db
    from nudge_app.services import enrolment

    campaign = make_campaign(council, status="running")
    participant = enrolment.new_participant(campaign, first_name="Ann", email="ann@example.org")
    db.session.commit()
    return participant, enrolment.token_of(participant)


@pytest.mark.parametrize(
    "error, status",
    [(RuntimeError("disk on fire"), 500), (None, 303)],
    ids=["crash", "step-out-of-order"],
)
def test_participant_consent_failing_after_writing_keeps_nothing(
    client, person, stored, monkeypatch, error, status
):
    from nudge_app.services import enrolment

    participant, token = person
    # StepOutOfOrder is answered with a redirect to the right step: the route discards.
    error = error or enrolment.StepOutOfOrder("refused late")
    monkeypatch.setattr(enrolment, "give_consent", fails_after(enrolment.give_consent, error))

    response = client.post(f"/p/{token}/consent", data={"decision": "agree"})

    assert response.status_code == status
    assert (
        stored("SELECT consent_status FROM participant WHERE id = :id", id=participant.id)
        != "given"
    )
    assert stored("SELECT count(*) FROM event WHERE kind = 'consent'") == 0


def test_participant_consent_is_stored_when_the_service_succeeds(client, person, stored):
    participant, token = person

    assert client.post(f"/p/{token}/consent", data={"decision": "agree"}).status_code == 303
    assert stored("SELECT count(*) FROM event WHERE kind = 'consent'") == 1


# --- API --------------------------------------------------------------------------------


@pytest.fixture
def api(client, council, make_campaign):
    """(post(path, json) -> response, campaign) with a council token."""
    from nudge_app.extensions import db
    from nudge_app.services.staff import create_token

    campaign = make_campaign(council, status="running")
    headers = {"Authorization": f"Bearer {create_token(council, 'tests').secret}"}
    db.session.commit()

    def post(path: str, body: dict):
        return client.post(f"/api/v1/campaigns/{campaign.slug}{path}", json=body, headers=headers)

    return post, campaign


# A resident with the baseline a survey-first campaign needs, who consents.
PERSON = {
    "external_ref": "R1",
    "first_name": "Sam",
    "email": "sam@example.org",
    "age": 44,
    "gender": "woman",
    "se_safety": 2,
    "se_environment": 3,
    "se_health": 3,
    "consent": True,
}


def test_api_domain_error_after_writing_is_json_and_keeps_nothing(api, stored, monkeypatch):
    from nudge_app.services import enrolment

    post, _ = api
    refusal = RefusedLate("this reference is reserved", field="external_ref")
    monkeypatch.setattr(
        enrolment, "new_participant", fails_after(enrolment.new_participant, refusal)
    )

    response = post("/enrolments", PERSON)

    assert response.status_code == 409
    assert response.get_json() == {
        "error": "refused_late",
        "message": "this reference is reserved",
        "field": "external_ref",
        "details": None,
    }
    assert stored("SELECT count(*) FROM participant") == 0
    assert stored("SELECT count(*) FROM assignment") == 0
    # commit_now: the token's use stands although the request failed.
    assert stored("SELECT count(*) FROM api_token WHERE last_used_at IS NOT NULL") == 1


def test_api_a_crash_after_writing_is_a_json_500_and_keeps_nothing(api, stored, monkeypatch):
    from nudge_app.services import enrolment

    post, _ = api
    crash = fails_after(enrolment.new_participant, RuntimeError("disk on fire"))
    monkeypatch.setattr(enrolment, "new_participant", crash)

    response = post("/enrolments", PERSON)

    assert response.status_code == 500
    assert response.get_json()["error"] == "internal_error"
    assert stored("SELECT count(*) FROM participant") == 0


def test_api_the_same_request_commits_when_the_service_succeeds(api, stored):
    post, _ = api

    response = post("/enrolments", PERSON)

    assert response.status_code == 201, response.get_json()
    assert stored("SELECT count(*) FROM participant") == 1
    assert stored("SELECT count(*) FROM assignment") == 1


# --- CLI command ------------------------------------------------------------------------


def test_cli_command_failing_after_writing_keeps_nothing(runner, stored, monkeypatch):
    from nudge_app.cli import main
    from nudge_app.services import councils

    refusal = councils.CouncilError("the name is taken by a neighbouring council")
    monkeypatch.setattr(councils, "create_council", fails_after(councils.create_council, refusal))

    result = runner.invoke(main, ["council", "create", "eastshire", "--name", "Eastshire"])

    assert result.exit_code == 1
    assert "the name is taken by a neighbouring council" in result.output
    assert stored("SELECT count(*) FROM council WHERE slug = 'eastshire'") == 0


def test_cli_command_commits_once_it_succeeds(runner, stored):
    from nudge_app.cli import main

    result = runner.invoke(main, ["council", "create", "eastshire", "--name", "Eastshire"])

    assert result.exit_code == 0, result.output
    assert stored("SELECT count(*) FROM council WHERE slug = 'eastshire'") == 1


# --- scheduler job ----------------------------------------------------------------------


@pytest.fixture
def ended_campaign(app, council, make_campaign):
    """A running campaign whose end date has passed."""
    from nudge_app.extensions import db

    campaign = make_campaign(council, status="running")
    campaign.end_date = "2020-01-31"
    db.session.commit()
    return campaign


def test_scheduler_job_failing_after_writing_keeps_nothing(app, ended_campaign, stored):
    from nudge_app.scheduler import ticks
    from nudge_app.scheduler.process import Runner

    def close_then_fail():
        assert ticks.close_campaigns(datetime.now(UTC)) == 1
        raise RuntimeError("disk on fire")

    Runner(app)._job("close_campaigns", close_then_fail)()  # logs the failure, goes on

    status = "SELECT status FROM campaign WHERE id = :id"
    assert stored(status, id=ended_campaign.id) == "running"
    assert stored("SELECT count(*) FROM audit_entry WHERE action = 'campaign.close'") == 0


def test_scheduler_job_commits_once_it_succeeds(app, ended_campaign, stored):
    from nudge_app.scheduler import ticks
    from nudge_app.scheduler.process import Runner

    Runner(app)._job("close_campaigns", ticks.close_campaigns)()

    assert stored("SELECT status FROM campaign WHERE id = :id", id=ended_campaign.id) == "closed"
