"""Dispatch renders a batch from cached texts: the same messages as rendering each alone.

The reference here fills each message's template with `templating.render` and values
worked out in the test from the participant, campaign and arm rows, message by message.
"""

from __future__ import annotations

import pytest

from experiments.design import PLACEHOLDERS
from nudge_app.extensions import db
from nudge_app.links import participant_links
from nudge_app.models import Arm, Campaign, FollowUpStep, OutboundMessage, Participant
from nudge_app.services import outbox
from nudge_app.services.attendance import check_in_code
from nudge_app.templating import render

EVERY = " ".join("{" + name + "}" for name in PLACEHOLDERS)


def _alone(message, person, campaign, arm, step) -> dict:
    """What one message should say, rendered on its own."""
    values = {
        "first_name": person.first_name or "resident",
        "council": campaign.council.name,
        "campaign": campaign.name,
        "activity": campaign.activity_name,
        "activity_where": campaign.activity_where,
        "activity_when": campaign.activity_when,
        "neighbourhood": person.neighbourhood or "",
        "framing": arm.framing if arm is not None else "",
        **participant_links(person),
    }
    subject, body, sms = outbox.templates_for(message.kind, arm, step)
    email = message.channel == "email"
    carries_code = email and message.kind in outbox.CHECK_IN_KINDS
    return {
        "to": person.email if email else person.phone,
        "subject": render(subject, values) if email else "",
        "text": render(body if email else sms, values),
        "unsubscribe_url": values["opt_out_link"],
        "check_in_code": check_in_code(person.id) if carries_code else None,
        "check_in_page": values["link"] if carries_code else None,
        "reference": f"nudge-{message.id}",
    }


def _rows():
    for m in db.session.query(OutboundMessage).order_by(OutboundMessage.id):
        yield (
            m,
            db.session.get(Participant, m.participant_id),
            db.session.get(Campaign, m.campaign_id),
            db.session.get(Arm, m.arm_id) if m.arm_id else None,
            db.session.get(FollowUpStep, m.step_id) if m.step_id else None,
        )


def test_a_batch_renders_each_message_as_it_would_be_rendered_alone(
    running_list_campaign, make_participants
):
    c = running_list_campaign
    first = c.arms[0]
    first.email_subject_template = "{{literal}} {first_name} }}"
    first.email_body_template = "Dear {first_name}, {{not a field}}: " + EVERY
    first.sms_template = EVERY + " }}{{"
    step = c.follow_up_steps[0]
    step.email_body_template = "Step for {first_name} in {neighbourhood}: " + EVERY
    people = make_participants(c, 6, phone=True)
    people[1].first_name = None
    people[2].neighbourhood = "Northgate"
    people[3].email = None
    outbox.on_launch(c)
    db.session.commit()

    renderer = outbox.MessageRenderer()  # one for the whole batch, as dispatch uses it
    rows = list(_rows())
    kinds = {(m.kind, m.channel, m.arm_id, m.step_id) for m, *_ in rows}
    assert len(rows) > 12 and len({m.arm_id for m, *_ in rows}) >= 2 and len(kinds) > 4, kinds
    for message, person, campaign, arm, step_ in rows:
        got = renderer.render(message, person, campaign, arm, step_)
        expected = _alone(message, person, campaign, arm, step_)
        assert {k: getattr(got, k) for k in expected} == expected, (message.kind, message.id)
        assert got == outbox.render_message(message, person, campaign, arm, step_)
    texts = {renderer.render(*r).text for r in rows if r[0].channel == "sms" and r[3] is first}
    assert any("}{" in t and "Person" in t for t in texts)


def test_a_batch_refuses_what_it_cannot_render_for_every_message_it_concerns(
    running_list_campaign, make_participants
):
    c = running_list_campaign
    c.arms[1].email_body_template = "  "
    make_participants(c, 4, arms=[c.arms[1]])
    outbox.on_launch(c)
    db.session.commit()
    renderer = outbox.MessageRenderer()
    nudges = [r for r in _rows() if r[0].kind == "nudge"]
    assert len(nudges) == 4
    for message, person, campaign, arm, step in nudges:
        with pytest.raises(outbox.RenderError) as caught:
            renderer.render(message, person, campaign, arm, step)
        assert caught.value.kind == "no_template"
    message, person, campaign, arm, step = nudges[0]
    person.erased_at = person.created_at
    with pytest.raises(outbox.RenderError) as caught:
        outbox.MessageRenderer().render(message, person, campaign, arm, step)
    assert caught.value.kind == "no_contact"
