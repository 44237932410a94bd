"""What a dispatch worker keeps between batches: launched campaigns' texts (never the rules
or names, which can change) and its renderer's HMAC states (the same codes and links as
`security.participant_token` and `attendance.check_in_code`)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from sqlalchemy import select, update

from nudge_app.delivery import dispatch, facts
from nudge_app.extensions import db
from nudge_app.models import Arm, Council
from nudge_app.security import participant_token
from nudge_app.services import outbox
from nudge_app.services.attendance import check_in_code


def _lines(app) -> list[dict]:
    text = Path(app.config["FILE_CHANNEL_PATH"]).read_text(encoding="utf-8")
    return [json.loads(x) for x in text.splitlines()]


def _launch(campaign, make_participants, n):
    make_participants(campaign, n)
    outbox.on_launch(campaign)
    db.session.commit()


@pytest.mark.parametrize("key", ["k", "x" * 32, "y" * 64, "z" * 65, "é" * 70])
def test_kept_hmac_states_give_the_same_links_and_codes(key):
    renderer = outbox.MessageRenderer(key, "https://example.org/")
    for n in [*range(1, 200), 10**9 + 7]:
        nonce = f"nonce-{n}-" + "q" * (n % 50)
        assert renderer.token(nonce) == participant_token(key, nonce)
        assert renderer.check_in_code(n) == check_in_code(n, key)


def test_launched_texts_are_kept_but_names_and_rules_are_read_every_batch(
    app, running_list_campaign, make_participants, daytime
):
    c = running_list_campaign
    _launch(c, make_participants, 2)
    assert dispatch.dispatch_due(now=daytime).sent == 2
    assert any(key[0] == c.id for key in facts._texts)
    # Texts of a launched campaign never change (the editor refuses); written behind its
    # back here, the worker keeps the text it read.
    for arm in c.arms:
        kept = arm.email_body_template
        db.session.execute(
            update(Arm).where(Arm.id == arm.id).values(email_body_template="CHANGED {link}")
        )
    # The council's name and the campaign's status can change at any time: read afresh.
    db.session.execute(update(Council).where(Council.id == c.council_id).values(name="Renamed"))
    db.session.commit()
    make_participants(c, 2)
    outbox.enqueue_first_messages(c)
    db.session.commit()
    assert dispatch.dispatch_due(now=daytime).sent == 2
    last = _lines(app)[-2:]
    assert all("CHANGED" not in line["text"] for line in last)
    assert all("Renamed" in line["subject"] + line["text"] for line in last), last
    assert kept  # the texts were real


def test_a_campaign_launched_again_elsewhere_with_the_same_id_is_read_again(
    app, running_list_campaign, make_participants, daytime
):
    c = running_list_campaign
    _launch(c, make_participants, 1)
    assert dispatch.dispatch_due(now=daytime).sent == 1
    before = {k for k in facts._texts if k[0] == c.id}
    # Same id, another salt (as a campaign of another database would have): a new entry.
    c.salt = "another-salt"
    for arm in c.arms:
        arm.email_body_template = "Other database {link}"
    make_participants(c, 1)
    outbox.enqueue_first_messages(c)
    db.session.commit()
    assert dispatch.dispatch_due(now=daytime).sent == 1
    assert {k for k in facts._texts if k[0] == c.id} - before
    assert _lines(app)[-1]["text"].startswith("Other database ")


def test_statements_run_on_the_driver_read_what_sqlalchemy_reads(
    app, running_list_campaign, make_participants, daytime
):
    """On PostgreSQL the hot statements run straight on psycopg (`queries._OnDriver`): the
    same rows, column for column, as the same statement executed through SQLAlchemy."""
    from datetime import timedelta

    from nudge_app.delivery import queries
    from nudge_app.models import OutboundMessage

    if db.session.get_bind().dialect.name != "postgresql":
        pytest.skip("the driver path is PostgreSQL's (NUDGE_TEST_DATABASE_URL)")
    c = running_list_campaign
    people = make_participants(c, 5, phone=True)
    people[1].opted_out_at = daytime
    people[2].neighbourhood = "Northgate"
    outbox.on_launch(c)
    db.session.commit()
    ids = [p.id for p in people]
    # Some of them sent a day ago, one still in flight: what the cap reads.
    first = db.session.scalars(select(OutboundMessage).order_by(OutboundMessage.id)).all()
    first[0].status, first[0].sent_at = "sent", daytime - timedelta(hours=3)
    first[1].status = "sending"
    db.session.commit()
    cases = [
        (queries._PEOPLE, {"ids": ids}),
        (queries._RECENT, {"ids": ids, "since": daytime - timedelta(days=1)}),
        (queries._CAMPAIGNS, {"ids": [c.id]}),
        (queries._CAMPAIGN_TEXTS["arms"], {"ids": [c.id]}),
        (queries._CAMPAIGN_TEXTS["steps"], {"ids": [c.id]}),
    ]
    for statement, params in cases:
        on_driver = [tuple(r) for r in statement.rows(dict(params))]
        core = statement.build("postgresql")
        through_sqlalchemy = [tuple(r) for r in db.session.execute(core, params).all()]
        assert on_driver and sorted(on_driver) == sorted(through_sqlalchemy), core
        names = [col.key for col in core.selected_columns]
        assert list(statement.rows(dict(params))[0]._fields) == names
    db.session.rollback()
    taken = queries.take("w", daytime, 3, daytime + timedelta(minutes=2),
                         {"email": "file", "sms": "file"})  # fmt: skip
    # Four nudges (the opted-out person gets none), two of them sent or in flight above.
    assert len(taken) == 2 and all(r.status == "sending" for r in taken)
    assert list(taken[0]._fields) == [col.key for col in queries.CLAIMED]
    done = queries.mark_sent([(r.id, r.fence, f"p{r.id}") for r in taken], daytime)
    assert done == {r.id for r in taken}
    db.session.commit()
    sent = db.session.scalars(select(OutboundMessage).where(OutboundMessage.id.in_(done))).all()
    assert {(m.status, m.provider_message_id, m.sent_at) for m in sent} == {
        ("sent", f"p{m.id}", daytime) for m in sent
    }


def test_messages_that_cannot_be_rendered_end_failed_with_their_attempt_back(
    app, running_list_campaign, make_participants, daytime
):
    """Rendering follows the claiming commit: a message without an address (seen before the
    commit) or without a text (seen when rendering) still ends `failed`, its attempt and
    provider taken back, and the others of the batch are sent."""
    from nudge_app.models import OutboundMessage

    c = running_list_campaign
    people = make_participants(c, 3)
    outbox.on_launch(c)
    db.session.commit()
    nudges = {m.participant_id: m for m in db.session.scalars(select(OutboundMessage))}
    # No address any more; and a text that is gone (written behind the editor's back).
    people[0].email = None
    for arm in c.arms:
        arm.email_body_template = "" if arm.id == nudges[people[1].id].arm_id else "Hi {link}"
    db.session.commit()
    facts._texts.clear()
    stats = dispatch.dispatch_due(now=daytime)
    assert (stats.sent, stats.failed) == (1, 2), stats
    db.session.commit()
    ended = {
        m.participant_id: m
        for m in db.session.scalars(select(OutboundMessage).where(OutboundMessage.kind == "nudge"))
    }
    assert ended[people[0].id].error_kind == "no_contact"
    assert ended[people[1].id].error_kind == "no_template"
    for p in people[:2]:
        m = ended[p.id]
        assert (m.status, m.attempts, m.provider, m.lease_owner) == ("failed", 0, None, None)
    assert ended[people[2].id].status == "sent" and ended[people[2].id].attempts == 1
