"""Introductions the platform sends for a mentor to residents of their neighbourhood:
written to the outbox and sent by the real scheduler round to the file channel, with the
mentor's note and invitation link; never to a resident who opted out, is on the council's
suppression list, is already through the baseline or lives elsewhere; at most the
campaign's number per mentor; and once the mentor stops, nothing more goes out, to them
or for them."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import select
from test_mentoring import HIGH, accept, become_mentor, joined_person

from experiments.design import Mentoring
from nudge_app.db import utcnow
from nudge_app.extensions import db
from nudge_app.models import Mentor, OutboundMessage, Participant
from nudge_app.scheduler import run_once
from nudge_app.services import suppression

NOTE = "Come and tidy Elm Street with me {first_name}!"


@pytest.fixture
def campaign(council, make_campaign):
    return make_campaign(
        council,
        status="running",
        mentoring=Mentoring(
            offer_to=["self_efficacy >= 4"], invite_limit=5, link_days=30, introductions=2
        ),
    )


def noon():
    return (utcnow() + timedelta(days=1)).replace(hour=12, minute=0, second=0, microsecond=0)


def lines(app) -> list[dict]:
    path = Path(app.config["FILE_CHANNEL_PATH"])
    if not path.exists():
        return []
    return [json.loads(x) for x in path.read_text(encoding="utf-8").splitlines()]


def rows(**where) -> list[OutboundMessage]:
    db.session.commit()
    q = select(OutboundMessage).order_by(OutboundMessage.id)
    for k, v in where.items():
        q = q.where(getattr(OutboundMessage, k) == v)
    return list(db.session.scalars(q))


def neighbours(make_person, campaign, journey):
    """Elm: three reachable, one opted out, one suppressed, one through the baseline;
    Oak: one elsewhere."""
    made = {}
    for name in ("Cal", "Dee", "Eve"):
        made[name] = make_person(campaign, first_name=name, neighbourhood="Elm")[0]
    out, _ = make_person(campaign, first_name="Out", neighbourhood="Elm")
    out.opted_out_at = utcnow()
    sup, _ = make_person(campaign, first_name="Sup", neighbourhood="Elm")
    suppression.suppress(sup, "withdrawal")
    done, token = make_person(campaign, first_name="Don", neighbourhood="Elm")
    journey.consent(token)
    journey.baseline(token, se_safety="2", se_environment="2", se_health="2")
    made["elsewhere"] = make_person(campaign, first_name="Oak", neighbourhood="Oak")[0]
    db.session.commit()
    return made, {out.id, sup.id, done.id, made["elsewhere"].id}


def test_introductions_go_through_the_outbox_to_neighbours_within_the_limit(
    app, campaign, make_person, journey, client
):
    made, never = neighbours(make_person, campaign, journey)
    mentor_person, token = joined_person(
        make_person, journey, campaign, HIGH, first_name="Bea", neighbourhood="Elm"
    )
    link = become_mentor(client, token, note=NOTE, show_name=True)
    page = client.get(f"/p/{token}/mentor").get_data(as_text=True)
    assert 'id="introduced-count">0<' in page and 'id="introduce"' in page
    r = client.post(f"/p/{token}/mentor/introduce")
    assert r.status_code == 303
    written = rows(kind="introduction")
    assert len(written) == 2  # the campaign's limit per mentor, of three reachable
    assert {m.participant_id for m in written}.isdisjoint(never)
    mentor = db.session.scalar(select(Mentor))
    assert all(m.mentor_id == mentor.id and m.status == "pending" for m in written)
    page = client.get(f"/p/{token}/mentor").get_data(as_text=True)
    assert 'id="introduced-count">2<' in page and 'id="introduce"' not in page
    assert client.post(f"/p/{token}/mentor/introduce").status_code == 303
    assert len(rows(kind="introduction")) == 2  # none past the limit

    # The scheduler sends them (file channel): the note as written, the link, the stop.
    result = run_once(app, now=noon())
    assert result.dispatched.sent >= 2
    sent = [x for x in lines(app) if x["kind"] == "introduction"]
    introduced = {db.session.get(Participant, m.participant_id).email for m in written}
    assert sorted(x["to"] for x in sent) == sorted(introduced)
    for x in sent:
        assert NOTE in x["text"] and link in x["text"] and "Bea, a neighbour in Elm" in x["text"]
        assert mentor_person.email not in x["text"] and "/opt-out" in x["text"]
    assert all(m.status == "sent" for m in rows(kind="introduction"))

    # An introduced neighbour follows the link and is enrolled as referred.
    accept(app, link)
    assert (
        db.session.scalar(select(Participant.id).where(Participant.referred_by == mentor.id))
        is not None
    )


def test_a_mentor_who_stops_gets_no_more_messages_and_none_go_out_for_them(
    app, campaign, make_person, journey, client
):
    neighbours(make_person, campaign, journey)
    mentor_person, token = joined_person(
        make_person, journey, campaign, HIGH, first_name="Bea", neighbourhood="Elm"
    )
    link = become_mentor(client, token, note="Hello")
    client.post(f"/p/{token}/mentor/introduce")
    accept(app, link)  # someone accepts: the mentor's update message is written
    assert len(rows(kind="mentor")) == 1 and len(rows(kind="introduction")) == 2
    assert client.post(f"/p/{token}/mentor/stop").status_code == 303
    before = len(lines(app))
    run_once(app, now=noon())
    after = lines(app)[before:]
    assert not [x for x in after if x["kind"] in ("mentor", "introduction")]
    assert not [x for x in after if x["to"] == mentor_person.email]
    for m in rows(kind="mentor") + rows(kind="introduction"):
        assert m.status == "cancelled" and m.error_kind == "mentor_stopped"
    # The stopped mentor cannot ask for introductions any more.
    assert client.post(f"/p/{token}/mentor/introduce").status_code == 404


def test_dispatch_checks_the_mentor_again_at_send_time(app, campaign, make_person, journey, client):
    """A mentor who opted out after an introduction was written (the row still pending):
    the scheduler's round cancels it instead of sending it."""
    neighbours(make_person, campaign, journey)
    mentor_person, token = joined_person(
        make_person, journey, campaign, HIGH, first_name="Bea", neighbourhood="Elm"
    )
    become_mentor(client, token)
    client.post(f"/p/{token}/mentor/introduce")
    person = db.session.get(Participant, mentor_person.id)
    person.opted_out_at = utcnow()  # as a concurrent opt-out leaves it, before any cancel
    db.session.commit()
    before = len(lines(app))
    run_once(app, now=noon())
    assert not [x for x in lines(app)[before:] if x["kind"] == "introduction"]
    assert {(m.status, m.error_kind) for m in rows(kind="introduction")} == {
        ("cancelled", "mentor_stopped")
    }
