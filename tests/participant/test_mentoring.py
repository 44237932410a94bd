"""Peer mentoring through the pages: the mentor role offered by the campaign's rule after
joining, the mentor's consent, note and link, invited residents enrolled with
`referred_by`, counts only, limits, expiry, forged links, and stopping."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from participant_helpers import csrf_of

from experiments.design import Mentoring
from nudge_app.db import utcnow
from nudge_app.extensions import db
from nudge_app.models import Mentor, OutboundMessage, Participant

FORM_KEY_RE = re.compile(r'name="form_key" value="([^"]+)"')
LINK_RE = re.compile(r'id="referral-link" readonly value="([^"]+)"')
HIGH = {"se_safety": "5", "se_environment": "4", "se_health": "5"}  # self-efficacy 4.67
LOW = {"se_safety": "1", "se_environment": "2", "se_health": "2"}


@pytest.fixture
def mentoring_campaign(council, make_campaign):
    return make_campaign(
        council,
        status="running",
        mentoring=Mentoring(offer_to=["self_efficacy >= 4"], invite_limit=2, link_days=30),
    )


def joined_person(make_person, journey, campaign, answers, **fields):
    person, token = make_person(campaign, **fields)
    journey.consent(token)
    journey.baseline(token, **answers)
    journey.join(token, contact="email")
    return person, token


def become_mentor(client, token, note="Come along, it's fun!", show_name=True) -> str:
    data = {"decision": "agree", "note": note}
    if show_name:
        data["show_first_name"] = "on"
    r = client.post(f"/p/{token}/mentor", data=data)
    assert r.status_code == 303, r.get_data(as_text=True)
    page = client.get(f"/p/{token}/mentor").get_data(as_text=True)
    return LINK_RE.search(page).group(1).replace("http://localhost", "")


def accept(app, path: str, new_client: bool = True):
    """A resident opens the invitation link in their own browser and agrees."""
    c = app.test_client()
    page = c.get(path)
    assert page.status_code == 200, page.get_data(as_text=True)
    html = page.get_data(as_text=True)
    data = {"decision": "agree", "form_key": FORM_KEY_RE.search(html).group(1)}
    if "csrf_token" in html:
        data["csrf_token"] = csrf_of(html)
    r = c.post(path, data=data)
    assert r.status_code == 303, r.get_data(as_text=True)
    return c, r.headers["Location"].rsplit("/", 1)[-1]


def test_offer_follows_the_rule_and_joining(mentoring_campaign, make_person, journey, client):
    _, low = joined_person(make_person, journey, mentoring_campaign, LOW)
    assert "become a mentor" not in client.get(f"/p/{low}").get_data(as_text=True).lower()
    assert client.get(f"/p/{low}/mentor").status_code == 404
    person, token = make_person(mentoring_campaign)
    journey.consent(token)
    journey.baseline(token, **HIGH)
    assert client.get(f"/p/{token}/mentor").status_code == 404  # not joined yet
    journey.join(token, contact="email")
    page = client.get(f"/p/{token}").get_data(as_text=True)
    assert f"/p/{token}/mentor" in page
    offer = client.get(f"/p/{token}/mentor").get_data(as_text=True)
    assert "never who" in offer and 'name="note"' in offer


def test_campaign_without_mentoring_offers_nothing(running, make_person, journey, client):
    _, token = joined_person(make_person, journey, running, HIGH)
    assert client.get(f"/p/{token}/mentor").status_code == 404


def test_invited_resident_is_enrolled_with_referred_by(
    app, mentoring_campaign, make_person, journey, client
):
    mentor_person, token = joined_person(
        make_person, journey, mentoring_campaign, HIGH, first_name="Bea"
    )
    path = become_mentor(client, token)
    assert path.startswith("/p/r/")
    mentor = db.session.query(Mentor).one()
    code = path.rsplit("/", 1)[-1]
    assert code not in (mentor.referral_code_hash, mentor.referral_nonce)  # hashed at rest
    landing = app.test_client().get(path).get_data(as_text=True)
    assert "Bea invites you" in landing and "Come along, it&#39;s fun!" in landing
    assert mentor_person.email not in landing
    invited, invited_token = accept(app, path)
    journey_page = invited.get(f"/p/{invited_token}").get_data(as_text=True)
    assert 'name="se_safety"' in journey_page  # the normal baseline comes next
    person = db.session.query(Participant).filter(Participant.referred_by == mentor.id).one()
    assert person.consent_status == "given"
    # The mentor sees counts only and hears (through the outbox) that someone joined.
    page = client.get(f"/p/{token}/mentor").get_data(as_text=True)
    assert re.search(r'id="opened-count">2<', page) and re.search(r'id="accepted-count">1<', page)
    message = db.session.query(OutboundMessage).filter_by(kind="mentor").one()
    assert message.participant_id == mentor_person.id and message.status == "pending"
    from nudge_app.services.outbox import render_message

    rendered = render_message(message, mentor_person, mentoring_campaign, None, None)
    assert rendered.to == mentor_person.email and f"/p/{token}/mentor" in rendered.text
    assert "Someone you invited" in rendered.subject


def test_already_enrolled_resident_keeps_their_arm(
    app, mentoring_campaign, make_person, journey, client
):
    _, token = joined_person(make_person, journey, mentoring_campaign, HIGH)
    path = become_mentor(client, token)
    invited, invited_token = accept(app, path)
    invited.post(f"/p/{invited_token}/baseline", data=LOW | {"age": "40", "gender": "man"})
    person = db.session.query(Participant).filter(Participant.referred_by.isnot(None)).one()
    arm = person.assignment.arm_id
    again = invited.get(path)  # the same browser opens another invitation
    assert again.status_code == 303 and again.headers["Location"].endswith(invited_token)
    db.session.refresh(person)
    assert person.assignment.arm_id == arm
    assert db.session.query(Participant).filter(Participant.referred_by.isnot(None)).count() == 1


def test_limit_expiry_forgery_and_stop_give_clear_pages(
    app, mentoring_campaign, make_person, journey, client
):
    _, token = joined_person(make_person, journey, mentoring_campaign, HIGH)
    path = become_mentor(client, token)
    accept(app, path)
    accept(app, path)
    full = app.test_client().get(path)
    assert full.status_code == 410 and 'data-reason="full"' in full.get_data(as_text=True)
    forged = app.test_client().get(path[:-4] + "AAAA")
    assert forged.status_code == 404
    assert "This invitation link is not valid" in forged.get_data(as_text=True)
    mentor = db.session.query(Mentor).one()
    mentor.invite_limit = 10
    mentor.expires_at = utcnow() - timedelta(minutes=1)
    db.session.commit()
    expired = app.test_client().get(path)
    assert expired.status_code == 410 and 'data-reason="expired"' in expired.get_data(as_text=True)
    mentor.expires_at = utcnow() + timedelta(days=1)
    db.session.commit()
    pending = db.session.query(OutboundMessage).filter_by(kind="mentor", status="pending").count()
    assert pending == 2
    assert client.post(f"/p/{token}/mentor/stop").status_code == 303
    stopped = client.get(f"/p/{token}/mentor").get_data(as_text=True)
    assert "You have stopped being a mentor" in stopped
    gone = app.test_client().get(path)
    assert gone.status_code == 410 and 'data-reason="stopped"' in gone.get_data(as_text=True)
    statuses = {m.status for m in db.session.query(OutboundMessage).filter_by(kind="mentor")}
    assert statuses == {"cancelled"}


def test_long_note_is_refused_and_nothing_saved(mentoring_campaign, make_person, journey, client):
    _, token = joined_person(make_person, journey, mentoring_campaign, HIGH)
    r = client.post(f"/p/{token}/mentor", data={"decision": "agree", "note": "x" * 281})
    assert r.status_code == 422 and "at most 280 characters" in r.get_data(as_text=True)
    assert db.session.query(Mentor).count() == 0


def test_card_has_a_qr_code_of_the_link(mentoring_campaign, make_person, journey, client):
    _, token = joined_person(make_person, journey, mentoring_campaign, HIGH)
    path = become_mentor(client, token)
    card = client.get(f"/p/{token}/mentor/card").get_data(as_text=True)
    assert "<svg" in card and path in card


def test_report_compares_referred_residents_with_the_control_arm(
    app, mentoring_campaign, make_person, journey, client
):
    """The campaign report's `referrals` (JSON, schema-valid) and its HTML panel: the
    residents enrolled through mentors' links against the control arm's other members,
    the difference equal to statsmodels OLS on the same rows."""
    import jsonschema
    import numpy as np
    import statsmodels.api as sm

    from experiments.report import schema
    from nudge_app.services.reporting import campaign_report

    mentors = []
    for _ in range(3):
        _, token = joined_person(make_person, journey, mentoring_campaign, HIGH)
        mentors.append(become_mentor(client, token))
    for i in range(6):  # residents who came in otherwise, half of them joining
        person, token = make_person(mentoring_campaign)
        journey.consent(token)
        journey.baseline(token, **LOW)
        if i % 2:
            journey.join(token, contact="email")
    for k, path in enumerate(mentors):
        for j in range(2):
            invited, token = accept(app, path)
            invited.post(f"/p/{token}/baseline", data=LOW | {"age": "40", "gender": "man"})
            if (k + j) % 3:
                invited.post(
                    f"/p/{token}/join", data={"contact": "email", "email": "x@example.org"}
                )
    db.session.commit()
    report = campaign_report(mentoring_campaign)
    data = report.to_dict()
    jsonschema.validate(data, schema())
    got = data["referrals"]
    from nudge_app.models import Event

    control = next(a.id for a in mentoring_campaign.arms if a.is_control)
    joined_ids = {e.participant_id for e in db.session.query(Event).filter_by(kind="join")}
    rows = [
        (p.referred_by is not None, p.id)
        for p in db.session.query(Participant).filter_by(campaign_id=mentoring_campaign.id)
        if p.assignment is not None
        and (p.referred_by is not None or p.assignment.arm_id == control)
    ]
    referred = np.array([r for r, _ in rows], float)
    y = np.array([pid in joined_ids for _, pid in rows], float)
    ols = sm.OLS(y, np.column_stack([np.ones(len(y)), referred])).fit()
    assert got["n_referred"] == 6 and got["mentors"] == 3
    assert got["n_comparison"] == int((referred == 0).sum())
    assert got["estimate"] == pytest.approx(ols.params[1], rel=1e-10)
    assert got["ci_low"] < got["estimate"] < got["ci_high"]
    html = report.to_html()
    assert 'id="referrals"' in html and "Not randomized" in html
