"""The participant journey through the test client: entry, consent, baseline, nudge page,
join, follow-up, opt-out, erasure and deletion, each recorded exactly once."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from participant_helpers import FORM_KEY_RE, csrf_of
from sqlalchemy import func, select

from nudge_app.extensions import db
from nudge_app.models import (
    Assignment,
    AuditEntry,
    Event,
    OutboundMessage,
    Participant,
    SurveyResponse,
)


def count(model, *where):
    return db.session.scalar(select(func.count()).select_from(model).where(*where))


def events(pid, kind=None):
    where = [Event.participant_id == pid]
    if kind:
        where.append(Event.kind == kind)
    return count(Event, *where)


def test_unknown_token_gets_the_friendly_404(client):
    r = client.get("/p/not-a-real-token-at-all")
    assert r.status_code == 404
    html = r.get_data(as_text=True)
    assert "Page not found" in html and "copied in full" in html
    assert '<html lang="en">' in html


def test_ping_is_trivial(client):
    r = client.get("/p/ping")
    assert r.status_code == 200 and r.get_data(as_text=True) == "ok"


def test_draft_campaign_links_are_not_found(council, make_campaign, make_person, client):
    campaign = make_campaign(council)
    _, token = make_person(campaign)
    assert client.get(f"/p/{token}").status_code == 404
    assert client.get(f"/p/join/{campaign.open_code}").status_code == 404


@pytest.mark.parametrize("status,code,text", [("paused", 503, "paused"), ("closed", 410, "ended")])
def test_paused_or_closed_campaign_says_so_and_records_nothing(
    council, make_campaign, make_person, client, status, code, text
):
    campaign = make_campaign(council, status=status)
    p, token = make_person(campaign)
    r = client.get(f"/p/{token}")
    assert r.status_code == code and text in r.get_data(as_text=True)
    r = client.get(f"/p/join/{campaign.open_code}")
    assert r.status_code == code
    assert count(Event) == 0


def test_personal_link_consent_page_stores_only_the_visit(running, make_person, client):
    p, token = make_person(running)
    for _ in range(3):
        r = client.get(f"/p/{token}")
        assert r.status_code == 200
    html = r.get_data(as_text=True)
    for needle in ("What we keep", "For how long", "Article 6(1)(a)", "withdraw", "I agree"):
        assert needle in html
    assert events(p.id) == 1 and events(p.id, "visit") == 1
    db.session.refresh(p)
    assert p.consent_status == "pending" and p.consented_at is None


def test_head_request_records_nothing(running, make_person, client):
    p, token = make_person(running)
    assert client.head(f"/p/{token}").status_code == 200
    assert client.head(f"/p/join/{running.open_code}").status_code == 200
    assert count(Event) == 0


def test_baseline_before_consent_is_refused(running, make_person, client):
    p, token = make_person(running)
    assert client.get(f"/p/{token}").status_code == 200
    r = client.post(
        f"/p/{token}/baseline",
        data={
            "age": "30",
            "gender": "man",
            "se_safety": "1",
            "se_environment": "1",
            "se_health": "1",
        },
    )
    assert r.status_code == 303
    db.session.refresh(p)
    assert p.baseline_completed_at is None and p.age is None


def test_personal_posts_are_authenticated_by_the_token_open_posts_need_csrf(
    running, make_person, client
):
    p, token = make_person(running)
    # The personal page's forms carry no CSRF token and set no session cookie: the
    # unguessable token in the URL is the credential (as for RFC 8058 one-click).
    page = client.get(f"/p/{token}")
    assert "csrf_token" not in page.get_data(as_text=True)
    assert "session=" not in page.headers.get("Set-Cookie", "")
    assert client.post(f"/p/{token}/consent", data={"decision": "agree"}).status_code == 303
    db.session.refresh(p)
    assert p.consent_status == "given"
    # The open link has no token: a post without the CSRF token creates nobody.
    url = f"/p/join/{running.open_code}"
    r = client.post(url, data={"decision": "agree", "form_key": "x" * 20})
    assert r.status_code == 400
    assert count(Participant) == 1


def test_bad_baseline_answers_are_named_and_nothing_is_stored(running, make_person, journey):
    p, token = make_person(running)
    journey.consent(token)
    r = journey.baseline(token, age="7", gender="", se_health="9")
    assert r.status_code == 422
    html = r.get_data(as_text=True)
    assert "There is a problem" in html
    assert 'href="#age-field"' in html and 'href="#gender-field"' in html
    assert 'href="#se_health-field"' in html and 'href="#se_safety-field"' not in html
    assert 'value="7"' in html  # the answers typed are kept
    db.session.refresh(p)
    assert p.baseline_completed_at is None
    assert count(SurveyResponse) == 0 and count(Assignment) == 0


def test_full_journey_records_each_step_once(running, make_person, journey, client):
    p, token = make_person(running)
    assert journey.consent(token).status_code == 303
    assert journey.consent(token).status_code == 303  # twice: still one consent
    r = journey.baseline(
        token,
        age="",
        birth_year="1990",
        se_safety="2",
        se_environment="3",
        se_health="5",
        individual_coproduction=["recycle", "secure_home"],
    )
    assert r.status_code == 303
    db.session.expire_all()
    p = db.session.get(Participant, p.id)
    assert p.consent_status == "given" and p.consent_basis == "consent"
    assert p.birth_year == 1990 and p.age is not None and p.gender == "woman"
    assert p.self_efficacy == pytest.approx(10 / 3)
    assert sorted(p.individual_coproduction) == ["recycle", "secure_home"]
    assignment = p.assignment
    assert assignment is not None

    first = client.get(f"/p/{token}")
    html = first.get_data(as_text=True)
    assert first.status_code == 200
    assert f'data-arm="{assignment.arm.key}"' in html
    assert "Dear Ann," in html and "Central Library" in html
    assert "I&#39;ll take part" in html or "I'll take part" in html
    for _ in range(3):  # revisits: same arm, no new events
        again = client.get(f"/p/{token}").get_data(as_text=True)
        assert f'data-arm="{assignment.arm.key}"' in again
    assert events(p.id, "exposure") == 1

    # A link scanner's GET (and HEAD) of the join URL never joins.
    assert client.get(f"/p/{token}/join").status_code == 303
    assert client.head(f"/p/{token}/join").status_code == 303
    assert events(p.id, "join") == 0

    assert journey.join(token, contact="email").status_code == 303
    assert journey.post_form(f"/p/{token}", f"/p/{token}/join", {}).status_code == 303
    assert events(p.id, "join") == 1
    page = client.get(f"/p/{token}").get_data(as_text=True)
    assert "you said you will take part" in page

    counts = {k: events(p.id, k) for k in ("visit", "consent", "baseline", "exposure", "join")}
    assert counts == {"visit": 1, "consent": 1, "baseline": 1, "exposure": 1, "join": 1}
    assert count(Assignment, Assignment.participant_id == p.id) == 1
    assert count(SurveyResponse, SurveyResponse.participant_id == p.id) == 1
    # The follow-ups were scheduled by the outbox with the assignment.
    assert count(OutboundMessage, OutboundMessage.participant_id == p.id) >= 1

    page = client.get(f"/p/{token}/opt-out").get_data(as_text=True)
    assert "Stop all messages" in page
    assert events(p.id, "opt_out") == 0  # a GET only shows the button
    r = client.post(f"/p/{token}/opt-out", data={})
    assert r.status_code == 200 and "no more messages" in r.get_data(as_text=True)
    assert (
        count(
            OutboundMessage,
            OutboundMessage.participant_id == p.id,
            OutboundMessage.status.in_(("pending", "leased")),
        )
        == 0
    )
    assert events(p.id, "opt_out") == 1
    db.session.refresh(p)
    assert p.opted_out_at is not None


def test_baseline_submitted_twice_is_stored_once(running, make_person, journey):
    p, token = make_person(running)
    journey.consent(token)
    journey.baseline(token, age="40")
    journey.baseline(token, age="70", se_safety="5")  # a second tab: ignored
    db.session.expire_all()
    p = db.session.get(Participant, p.id)
    assert p.age == 40 and p.se_safety == 2
    assert count(SurveyResponse, SurveyResponse.participant_id == p.id) == 1
    assert events(p.id, "baseline") == 1


def test_open_enrolment_creates_the_person_only_after_consent(running, client):
    url = f"/p/join/{running.open_code}"
    page = client.get(url)
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert count(Participant) == 0
    assert count(Event, Event.kind == "visit", Event.participant_id.is_(None)) == 1

    declined = client.post(url, data={"csrf_token": csrf_of(html), "decision": "decline"})
    assert "Nothing about you has been saved" in declined.get_data(as_text=True)
    assert count(Participant) == 0

    form = {
        "csrf_token": csrf_of(html),
        "form_key": FORM_KEY_RE.search(html).group(1),
        "decision": "agree",
    }
    r1 = client.post(url, data=form)
    assert r1.status_code == 303
    location = r1.headers["Location"]
    assert location.startswith("/p/") and len(location.split("/")[-1]) >= 43
    p = db.session.scalars(select(Participant)).one()
    assert p.consent_status == "given" and p.campaign_id == running.id
    # A double click posts the same form again: the same person, not a second one.
    other = running.__class__  # noqa: F841
    client.delete_cookie(f"nudge_open_{running.id}", path="/p/")
    r2 = client.post(url, data=form)
    assert r2.headers["Location"] == location
    assert count(Participant) == 1

    # The person's page continues with the baseline survey.
    baseline_page = client.get(location).get_data(as_text=True)
    assert "A few questions about you" in baseline_page


def test_open_link_remembers_the_person(running, client):
    url = f"/p/join/{running.open_code}"
    html = client.get(url).get_data(as_text=True)
    r = client.post(
        url,
        data={
            "csrf_token": csrf_of(html),
            "decision": "agree",
            "form_key": FORM_KEY_RE.search(html).group(1),
        },
    )
    again = client.get(url)
    assert again.status_code == 303 and again.headers["Location"] == r.headers["Location"]


def test_unknown_open_code_is_not_found(client, running):
    assert client.get("/p/join/nope").status_code == 404


def test_one_click_unsubscribe_needs_no_csrf_token(running, make_person, client):
    p, token = make_person(running)
    r = client.post(f"/p/{token}/opt-out", data={"List-Unsubscribe": "One-Click"})
    assert r.status_code == 200
    db.session.refresh(p)
    assert p.opted_out_at is not None
    assert events(p.id, "opt_out") == 1
    # Again (the mail client retries): still one event.
    client.post(f"/p/{token}/opt-out", data={"List-Unsubscribe": "One-Click"})
    assert events(p.id, "opt_out") == 1


def test_opt_out_cancels_every_pending_message(running, make_person, client):
    from nudge_app.db import utcnow

    p, token = make_person(running)
    for n, status in enumerate(("pending", "pending", "leased", "sent")):
        db.session.add(
            OutboundMessage(
                campaign_id=running.id,
                participant_id=p.id,
                kind="reminder",
                channel="email",
                due_at=utcnow(),
                status=status,
                idempotency_key=f"t:{n}:{p.id}",
            )
        )
    db.session.commit()
    client.post(f"/p/{token}/opt-out", data={"List-Unsubscribe": "One-Click"})
    statuses = sorted(
        db.session.scalars(
            select(OutboundMessage.status).where(OutboundMessage.participant_id == p.id)
        )
    )
    assert statuses == ["cancelled", "cancelled", "cancelled", "sent"]


def test_list_person_refusing_consent_is_opted_out(running, make_person, journey):
    p, token = make_person(running)
    r = journey.post_form(f"/p/{token}", f"/p/{token}/consent", {"decision": "decline"})
    assert "will not contact you again" in r.get_data(as_text=True)
    db.session.refresh(p)
    assert p.consent_status == "refused" and p.opted_out_at is not None


def test_erasure_wipes_personal_details_and_keeps_pseudonymous_rows(
    running, make_person, journey, client
):
    p, token = make_person(
        running,
        phone="+447700900123",
        external_ref="R-1",
        neighbourhood="Old Town",
        cluster="street-9",
    )
    journey.consent(token)
    journey.baseline(token)
    client.get(f"/p/{token}")
    journey.join(token)
    assert client.get(f"/p/{token}/withdraw").status_code == 200
    r = client.post(f"/p/{token}/withdraw", data={"choice": "erase"})
    assert r.status_code == 200 and "erased your name" in r.get_data(as_text=True)
    db.session.expire_all()
    p = db.session.get(Participant, p.id)
    assert (p.first_name, p.email, p.phone, p.external_ref, p.neighbourhood) == (None,) * 5
    assert p.erased_at is not None and p.opted_out_at is not None
    assert p.age == 34 and p.self_efficacy == pytest.approx(3.0) and p.cluster == "street-9"
    assert p.assignment is not None
    assert events(p.id, "exposure") == 1 and events(p.id, "join") == 1
    assert events(p.id, "erasure") == 1
    # The old link is dead.
    assert client.get(f"/p/{token}").status_code == 404


def test_full_deletion_removes_the_rows_and_the_audit_counts_it(
    running, make_person, journey, client
):
    from nudge_app.services.enrolment import deleted_count

    keep, _ = make_person(running, first_name="Bo")
    p, token = make_person(running)
    journey.consent(token)
    journey.baseline(token)
    client.get(f"/p/{token}")
    assert client.get(f"/p/{token}/withdraw").status_code == 200
    r = client.post(f"/p/{token}/withdraw", data={"choice": "delete"})
    assert r.status_code == 200 and "deleted everything" in r.get_data(as_text=True)
    db.session.expire_all()
    assert db.session.get(Participant, p.id) is None
    for model in (Event, SurveyResponse, OutboundMessage, Assignment):
        assert count(model, model.participant_id == p.id) == 0
    assert db.session.get(Participant, keep.id) is not None
    audit = db.session.scalars(
        select(AuditEntry).where(AuditEntry.action == "participant.delete")
    ).one()
    assert audit.object_type == "campaign" and audit.object_id == str(running.id)
    assert str(p.id) not in str(audit.after) or audit.after["deleted"] == 1
    assert deleted_count(running) == 1
    assert client.get(f"/p/{token}").status_code == 404


def test_withdraw_without_a_choice_is_named(running, make_person, client):
    p, token = make_person(running)
    assert client.get(f"/p/{token}/withdraw").status_code == 200
    r = client.post(f"/p/{token}/withdraw", data={})
    assert r.status_code == 422 and 'href="#choice-field"' in r.get_data(as_text=True)
    db.session.refresh(p)
    assert p.erased_at is None


def test_follow_up_survey_is_an_outcome_stored_once(running, make_person, journey, client):
    p, token = make_person(running)
    journey.consent(token)
    journey.baseline(token)
    url = f"/p/{token}/follow-up"
    bad = journey.post_form(url, url, {"participated": "maybe"})
    assert bad.status_code == 422
    data = {"participated": "yes", "se_safety": "4", "se_environment": "4", "se_health": "5"}
    assert journey.post_form(url, url, data).status_code == 303
    page = client.get(url).get_data(as_text=True)
    assert "Thank you for your answers" in page
    # A second submission (an old tab) changes nothing.
    again = journey.post_form(url, url, {**data, "participated": "no"})
    assert again.status_code == 200 and "Thank you" in again.get_data(as_text=True)
    db.session.expire_all()
    response = db.session.scalars(
        select(SurveyResponse).where(SurveyResponse.kind == "follow_up")
    ).one()
    assert response.participated is True
    assert response.self_efficacy == pytest.approx(13 / 3)
    p = db.session.get(Participant, p.id)
    assert p.self_efficacy == pytest.approx(3.0)  # the baseline moderator is untouched
    assert events(p.id, "survey") == 1


def test_list_campaign_confirms_imported_baseline(
    council, make_campaign, make_person, journey, client
):
    campaign = make_campaign(council, "council-consultation", status="running")
    p, token = make_person(
        campaign,
        age=61,
        gender="man",
        se_safety=2,
        se_environment=2,
        se_health=5,
        self_efficacy=3.0,
        neighbourhood="Riverside",
    )
    journey.consent(token)
    page = client.get(f"/p/{token}").get_data(as_text=True)
    assert "Is this still right?" in page and "61" in page
    assert 'name="age"' not in page  # not asked again
    r = journey.post_form(f"/p/{token}", f"/p/{token}/baseline", {"decision": "confirm"})
    assert r.status_code == 303
    nudge = client.get(f"/p/{token}").get_data(as_text=True)
    assert "data-arm=" in nudge
    db.session.expire_all()
    p = db.session.get(Participant, p.id)
    assert p.age == 61 and p.assignment is not None
    baseline = db.session.scalars(select(SurveyResponse)).one()
    assert baseline.answers["confirmed_imported"] is True


def test_language_switch_and_campaign_language(council, make_campaign, make_person, client):
    campaign = make_campaign(council, status="running", language="fr")
    p, token = make_person(campaign)
    html = client.get(f"/p/{token}").get_data(as_text=True)
    assert '<html lang="fr">' in html and "Ce que nous conservons" in html
    r = client.get(f"/p/{token}?lang=de")
    assert '<html lang="de">' in r.get_data(as_text=True)
    assert "nudge_lang=de" in r.headers.get("Set-Cookie", "")
    html = client.get(f"/p/{token}").get_data(as_text=True)  # the choice is remembered
    assert '<html lang="de">' in html
    html = client.get(f"/p/{token}?lang=en").get_data(as_text=True)
    assert '<html lang="en">' in html and "What we keep" in html


def test_error_page_is_translated(client):
    html = client.get("/p/unknown-token?lang=fr").get_data(as_text=True)
    assert '<html lang="fr">' in html and "Page introuvable" in html


def test_rate_limit_on_public_routes(database_url, tmp_path):
    from nudge_app import create_app

    instance = tmp_path / "rl"
    instance.mkdir()
    app = create_app(
        {
            "ENV_NAME": "testing",
            "TESTING": True,
            "SECRET_KEY": "testing-secret-key",
            "SQLALCHEMY_DATABASE_URI": database_url,
            "INSTANCE_PATH": str(instance),
            "RATELIMIT_ENABLED": True,
            "RATELIMIT_STORAGE_URI": "memory://",
        }
    )
    client = app.test_client()
    codes = [client.get("/p/ping").status_code for _ in range(125)]
    assert codes[:120] == [200] * 120
    assert codes[-1] == 429
    with app.app_context():
        db.engine.dispose()


def test_cached_revisits_follow_every_change_of_state(running, make_person, journey, client):
    """Revisits are served from a page cache; opting out, pausing, joining, switching
    language and erasure must each show at once."""
    from nudge_app.services import campaigns

    p, token = make_person(running, first_name="Cass")
    journey.consent(token)
    journey.baseline(token)
    for _ in range(3):  # first view, then cached revisits
        html = client.get(f"/p/{token}").get_data(as_text=True)
        assert "Dear Cass," in html and "Will you take part?" in html
    from nudge_app.participant.routes import _page_cache

    assert any(key[0] == token for key in _page_cache.pages)  # the revisits were cached
    assert '<html lang="fr">' in client.get(f"/p/{token}?lang=fr").get_data(as_text=True)
    client.get(f"/p/{token}?lang=en")
    journey.join(token)
    assert "you said you will take part" in client.get(f"/p/{token}").get_data(as_text=True)
    campaigns.pause_campaign(db.session.get(type(running), running.id), actor="test")
    db.session.commit()
    assert client.get(f"/p/{token}").status_code == 503
    campaigns.resume_campaign(db.session.get(type(running), running.id), actor="test")
    db.session.commit()
    assert client.get(f"/p/{token}").status_code == 200
    client.post(f"/p/{token}/opt-out", data={"List-Unsubscribe": "One-Click"})
    assert "You have already stopped" in client.get(f"/p/{token}").get_data(as_text=True)
    client.post(f"/p/{token}/withdraw", data={"choice": "erase"})
    assert client.get(f"/p/{token}").status_code == 404
    assert events(p.id, "exposure") == 1 and events(p.id, "join") == 1


def test_consent_pages_of_two_people_carry_their_own_token(running, make_person, client):
    """The consent page is rendered once per campaign and language, then shared: each
    person's copy must link to their own pages only."""
    first, first_token = make_person(running, email="a@example.org")
    second, second_token = make_person(running, email="b@example.org")
    pages = {}
    for token in (first_token, second_token, first_token):
        response = client.get(f"/p/{token}")
        assert response.status_code == 200
        pages.setdefault(token, []).append(response.get_data(as_text=True))
    for token, other in ((first_token, second_token), (second_token, first_token)):
        for html in pages[token]:
            assert f'action="/p/{token}/consent"' in html
            assert f"/p/{token}/opt-out" in html and f"/p/{token}/withdraw" in html
            assert other not in html and "\x00" not in html
    french = client.get(f"/p/{second_token}?lang=fr").get_data(as_text=True)
    assert 'lang="fr"' in french and second_token in french and first_token not in french


def test_a_shared_consent_page_records_the_visit_and_goes_to_nobody_else(
    running, make_person, client
):
    """After the first person, the consent page is answered from the shared copy without
    loading the person: the visit is still recorded once, and an opted-out person, a
    screened-out one or a paused campaign still get their own page, not the consent."""
    _, first_token = make_person(running, email="a@example.org")
    second, second_token = make_person(running, email="b@example.org")
    opted, opted_token = make_person(running, email="c@example.org")
    screened, screened_token = make_person(running, email="d@example.org")
    assert client.get(f"/p/{first_token}").status_code == 200  # renders the shared copy
    for _ in range(2):
        html = client.get(f"/p/{second_token}").get_data(as_text=True)
        assert f'action="/p/{second_token}/consent"' in html and first_token not in html
    assert events(second.id, "visit") == 1
    opted.opted_out_at = datetime.now(UTC)
    screened.screened_at = datetime.now(UTC)
    screened.screened_out_rule = "age >= 18"
    db.session.commit()
    assert "I agree" not in client.get(f"/p/{opted_token}").get_data(as_text=True)
    assert "I agree" not in client.get(f"/p/{screened_token}").get_data(as_text=True)
    running.status = "paused"
    db.session.commit()
    assert client.get(f"/p/{second_token}").status_code == 503


def test_a_consent_page_from_the_shared_copy_keeps_the_private_page_headers(
    running, make_person, client
):
    """The shared copy skips rendering, not the response's headers: a personal-token page
    is never stored, never sends a referrer and keeps the strict policy."""
    _, first_token = make_person(running, email="a@example.org")
    _, second_token = make_person(running, email="b@example.org")
    for token in (first_token, second_token):  # the second comes from the shared copy
        h = client.get(f"/p/{token}").headers
        assert h["Cache-Control"] == "no-store"
        assert h["Referrer-Policy"] == "no-referrer"
        csp = h["Content-Security-Policy"]
        assert "unsafe-inline" not in csp and "frame-ancestors 'none'" in csp


def test_consent_keeps_the_language_the_page_was_read_in(running, make_person, client):
    participant, token = make_person(running)
    r = client.post(f"/p/{token}/consent?lang=fr", data={"decision": "agree"})
    assert r.status_code == 303
    db.session.expire_all()
    stored = db.session.get(Participant, participant.id)
    assert stored.consent_status == "given" and stored.locale == "fr"
    assert stored.consent_version_id is not None
    # Consenting again (a second tab) records nothing new but the language it was read in.
    client.post(f"/p/{token}/consent?lang=de", data={"decision": "agree"})
    db.session.expire_all()
    assert db.session.get(Participant, participant.id).locale == "de"
    assert events(participant.id, "consent") == 1
