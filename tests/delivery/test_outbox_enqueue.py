"""Enqueueing: idempotent, arm fixed on the row, follow-ups relative to assignment."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import func, select

from nudge_app.extensions import db
from nudge_app.models import OutboundMessage
from nudge_app.services import outbox


def _rows(**where):
    q = select(OutboundMessage).order_by(OutboundMessage.id)
    for k, v in where.items():
        q = q.where(getattr(OutboundMessage, k) == v)
    return list(db.session.scalars(q))


def test_list_launch_writes_first_messages_and_follow_ups(running_list_campaign, make_participants):
    c = running_list_campaign
    people = make_participants(c, 6)
    make_participants(c, 1, email=False, phone=True)  # phone only: gets the SMS
    make_participants(c, 1, email=False, phone=False)  # no contact: nothing
    n = outbox.on_launch(c)
    db.session.commit()
    nudges = _rows(kind="nudge")
    assert len(nudges) == 7
    assert sum(m.channel == "sms" for m in nudges) == 1
    by_person = {m.participant_id: m for m in nudges}
    for p in people:
        assert by_person[p.id].arm_id == p.assignment.arm_id
        assert by_person[p.id].idempotency_key == f"{c.id}:nudge:{p.id}:email"
    steps = {s.key: s for s in c.follow_up_steps}
    reminders = _rows(kind="reminder")
    assert len(reminders) == 6  # the step has no SMS text: the phone-only person gets none
    for m in reminders:
        assigned = db.session.get(type(people[0]), m.participant_id).assignment.assigned_at
        delta = m.due_at - assigned
        assert abs(delta - timedelta(hours=steps["reminder"].offset_hours)) < timedelta(seconds=1)
        assert abs(
            m.expires_at - m.due_at - timedelta(hours=steps["reminder"].expires_after_hours)
        ) < timedelta(seconds=1)
    assert n == db.session.scalar(select(func.count()).select_from(OutboundMessage))


def test_double_enqueue_creates_nothing(running_list_campaign, make_participants):
    c = running_list_campaign
    make_participants(c, 5)
    first = outbox.on_launch(c)
    db.session.commit()
    before = db.session.scalar(select(func.count()).select_from(OutboundMessage))
    assert outbox.on_launch(c) == 0
    assert outbox.enqueue_steps(c) == 0
    assert outbox.enqueue_missing_follow_ups(outbox.utcnow()) == 0
    db.session.commit()
    assert db.session.scalar(select(func.count()).select_from(OutboundMessage)) == before == first


def test_a_step_partly_enqueued_gets_the_rest_once(running_list_campaign, make_participants):
    # PostgreSQL tries a plain INSERT first and falls back to ON CONFLICT DO NOTHING when
    # a key exists: the rows already there stay as they were, the missing ones are added.
    c = running_list_campaign
    make_participants(c, 6)
    step = c.follow_up_steps[0]
    assert outbox.enqueue_step(c, step) == 6
    db.session.commit()
    kept = _rows(step_id=step.id)[:2]
    kept_ids = {m.id for m in kept}
    for m in _rows(step_id=step.id)[2:]:
        db.session.delete(m)
    db.session.commit()
    assert outbox.enqueue_step(c, step) == 4
    assert outbox.enqueue_step(c, step) == 0
    db.session.commit()
    rows = _rows(step_id=step.id)
    assert len(rows) == 6 and len({m.participant_id for m in rows}) == 6
    assert kept_ids <= {m.id for m in rows}


def test_survey_first_launch_sends_neutral_invitation_then_follow_ups_on_assignment(
    council, make_campaign, make_participants
):
    c = make_campaign(council, "self-efficacy-cleanup")
    c.status = "running"
    people = make_participants(c, 3, arms=[])
    outbox.on_launch(c)
    db.session.commit()
    invitations = _rows(kind="invitation")
    assert len(invitations) == 3 and all(m.arm_id is None for m in invitations)
    assert _rows(kind="reminder") == []
    # The first person completes the baseline and is randomized.
    from nudge_app.models import Assignment

    p = people[0]
    db.session.add(
        Assignment(
            participant_id=p.id, campaign_id=c.id, arm_id=c.arms[1].id, method="blocked",
            probability=0.5,
        )
    )  # fmt: skip
    db.session.flush()
    assert outbox.on_assigned(p) == len(c.follow_up_steps)
    db.session.commit()
    follow_ups = _rows(participant_id=p.id)
    assert {m.kind for m in follow_ups} == {"invitation", "reminder", "survey"}
    assert all(m.arm_id == c.arms[1].id for m in follow_ups if m.kind != "invitation")
    assert outbox.on_assigned(p) == 0


def test_cancel_pending_cancels_open_messages_only(running_list_campaign, make_participants):
    c = running_list_campaign
    p, other = make_participants(c, 2)
    outbox.on_launch(c)
    db.session.commit()
    sent = _rows(participant_id=p.id)[0]
    sent.status = "sent"
    db.session.commit()
    n = outbox.cancel_pending(p.id)
    db.session.commit()
    assert n == len(_rows(participant_id=p.id)) - 1
    statuses = {m.status for m in _rows(participant_id=p.id)}
    assert statuses == {"sent", "cancelled"}
    assert {m.status for m in _rows(participant_id=other.id)} == {"pending"}


def test_render_uses_arm_framing_and_personal_links(running_list_campaign, make_participants, app):
    from nudge_app.links import participant_links
    from nudge_app.models import Arm, Campaign, FollowUpStep, Participant

    c = running_list_campaign
    (p,) = make_participants(c, 1, arms=[c.arms[1]])
    outbox.on_launch(c)
    db.session.commit()
    reminder = _rows(kind="reminder")[0]
    r = outbox.render_message(
        reminder,
        db.session.get(Participant, p.id),
        db.session.get(Campaign, c.id),
        db.session.get(Arm, reminder.arm_id),
        db.session.get(FollowUpStep, reminder.step_id),
    )
    assert c.arms[1].framing in r.text
    links = participant_links(p)
    assert links["opt_out_link"] in r.text and r.unsubscribe_url == links["opt_out_link"]
    assert links["link"].startswith("http://localhost/p/")
    assert r.reference == f"nudge-{reminder.id}" and "@" not in r.reference


def test_on_imported_enqueues_for_new_participants_of_a_running_campaign(
    running_list_campaign, make_participants
):
    c = running_list_campaign
    first = make_participants(c, 2)
    outbox.on_launch(c)
    db.session.commit()
    before = len(_rows())
    late = make_participants(c, 3)
    n = outbox.on_imported(late)
    db.session.commit()
    assert n == 3 * (1 + len(c.follow_up_steps))
    assert len(_rows()) == before + n
    assert {m.participant_id for m in _rows(kind="nudge")} == {p.id for p in first + late}
    assert outbox.on_imported(late) == 0


def test_unknown_channel_setting_is_a_clear_cli_error(app, runner, monkeypatch):
    from nudge_app.cli import main

    monkeypatch.setenv("NUDGE_EMAIL_CHANNEL", "pigeon")
    result = runner.invoke(main, ["scheduler", "--once"])
    assert result.exit_code != 0
    assert "unknown channel 'pigeon'" in result.output and "Traceback" not in result.output
    monkeypatch.setenv("NUDGE_EMAIL_CHANNEL", "notify")
    result = runner.invoke(main, ["scheduler", "--once"])
    assert result.exit_code != 0 and "NOTIFY_API_KEY" in result.output
