"""What a dispatch worker keeps between batches: launched campaigns' texts (never the rules
or names, which can change) and its renderer's HMAC states (the same codes and links as
`security.participant_token` and `attendance.check_in_code`)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from sqlalchemy import update

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
