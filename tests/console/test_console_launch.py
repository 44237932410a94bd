"""The irreversible steps ask first (issue 19, finding 3): the launch checklist, launch
only with an explicit confirmation, Close with its own, and a draft deleted instead."""

from __future__ import annotations

import html
import re
from datetime import timedelta

from sqlalchemy import func, select

from nudge_app.db import utcnow
from nudge_app.models import (
    AuditEntry,
    Campaign,
    FollowUpStep,
    OutboundMessage,
    Participant,
)

CSV = "external_ref,first_name,email,age,gender,se_safety,se_environment,se_health\n" + "".join(
    f"R{i:02d},Ann{i},ann{i}@example.org,{20 + i},woman,3,3,3\n" for i in range(12)
)


def _count(db_session, model, *where) -> int:
    db_session.expire_all()
    return db_session.scalar(select(func.count()).select_from(model).where(*where))


def _row(page: str, key: str) -> tuple[str, str]:
    """(status word, text) of a checklist line."""
    found = re.search(
        rf'<tr id="check-{key}" class="(\w+)">.*?<td class="check \w+">([^<]+)</td>\s*<td>(.*?)</td>',
        page,
        re.S,
    )
    assert found, key
    return found.group(1), html.unescape(re.sub(r"<[^>]+>", " ", found.group(3)))


def _list_campaign(make_campaign, council, db_session, planned: int = 600):
    from nudge_app.services.participants_import import import_csv

    campaign = make_campaign(council, "council-consultation", planned_sample_size=planned)
    import_csv(campaign, CSV)
    db_session.commit()
    return campaign


def test_checklist_shows_what_the_launch_will_do(signed_in, council, make_campaign, db_session):
    campaign = _list_campaign(make_campaign, council, db_session)
    assert campaign.enrolment_mode == "list"
    client, _, _ = signed_in(council, "designer")
    overview = client.get(f"/campaigns/{campaign.slug}").get_data(as_text=True)
    assert "Review and launch" in overview
    assert f'action="/campaigns/{campaign.slug}/launch"' not in overview  # no one-click launch
    assert f'action="/campaigns/{campaign.slug}/close"' not in overview

    page = client.get(f"/campaigns/{campaign.slug}/launch").get_data(as_text=True)
    state, text = _row(page, "participants")
    assert state == "warn" and "12 of the planned 600 participants are imported (2%)" in text
    state, text = _row(page, "power")
    assert state == "warn" and text.startswith("Not enough") and "12 detect about" in text
    state, text = _row(page, "messages")
    assert state == "ok" and "render for participant R00" in text
    state, text = _row(page, "survey")
    assert state == "ok" and "'follow-up-survey'" in text
    state, text = _row(page, "scheduler")
    assert state == "warn" and "never run" in text
    state, text = _row(page, "sending")
    assert (
        "Quiet hours 20:00 to 08:00 (Europe/London)" in text and "once the scheduler runs" in text
    )
    assert 'name="confirm"' in page and "Launch campaign" in page


def test_launch_without_confirmation_changes_nothing(
    signed_in, council, make_campaign, db_session, console
):
    campaign = _list_campaign(make_campaign, council, db_session)
    client, _, token = signed_in(council, "designer")
    refused = client.post(f"/campaigns/{campaign.slug}/launch", data={"csrf_token": token})
    assert refused.status_code == 422
    assert console.errors(refused.get_data(as_text=True), "confirm") == [
        "Tick the box to confirm the launch: nothing was launched"
    ]
    assert _count(db_session, Campaign, Campaign.status == "draft") == 1
    assert _count(db_session, OutboundMessage) == 0
    assert _count(db_session, AuditEntry, AuditEntry.action == "campaign.launch") == 0

    done = client.post(
        f"/campaigns/{campaign.slug}/launch", data={"csrf_token": token, "confirm": "y"}
    )
    assert done.status_code == 303
    assert _count(db_session, Campaign, Campaign.status == "running") == 1
    assert _count(db_session, OutboundMessage) >= 12
    again = client.get(f"/campaigns/{campaign.slug}/launch", follow_redirects=True)
    assert "it cannot be launched" in again.get_data(as_text=True)


def test_a_survey_step_without_its_link_stops_the_launch_naming_the_step(
    signed_in, council, make_campaign, db_session
):
    """A draft saved before the rule: the checklist and the service both refuse it."""
    from nudge_app.services import campaigns

    campaign = _list_campaign(make_campaign, council, db_session)
    step = db_session.scalar(select(FollowUpStep).where(FollowUpStep.kind == "survey"))
    step.email_body_template = step.email_body_template.replace("{survey_link}", "{link}")
    db_session.commit()
    client, _, token = signed_in(council, "designer")
    page = client.get(f"/campaigns/{campaign.slug}/launch").get_data(as_text=True)
    state, text = _row(page, "survey")
    assert state == "stop"
    assert "survey step 'follow-up-survey': its email body has no {survey_link}" in text
    assert 'id="launch-blocked"' in page and 'name="confirm"' not in page
    refused = client.post(
        f"/campaigns/{campaign.slug}/launch", data={"csrf_token": token, "confirm": "y"}
    )
    assert refused.status_code == 422
    assert _count(db_session, Campaign, Campaign.status == "draft") == 1
    import pytest

    with pytest.raises(campaigns.CampaignStateError, match="follow-up-survey"):
        campaigns.launch_campaign(db_session.get(Campaign, campaign.id))
    db_session.rollback()


def test_scheduler_running_and_quiet_hours_give_the_first_send_time(
    signed_in, council, make_campaign, db_session
):
    from nudge_app.scheduler.heartbeat import beat

    campaign = _list_campaign(make_campaign, council, db_session)
    council.quiet_start = council.quiet_end = "00:00"
    beat("test-scheduler", "scheduler", utcnow() - timedelta(minutes=5))
    db_session.commit()
    client, _, _ = signed_in(council, "designer")
    page = client.get(f"/campaigns/{campaign.slug}/launch").get_data(as_text=True)
    state, text = _row(page, "scheduler")
    assert state == "ok" and text.startswith("The scheduler last ran")
    state, text = _row(page, "sending")
    assert "No quiet hours." in text and "first messages go within a minute of launch" in text


def test_close_asks_and_a_draft_is_deleted_with_its_messages(
    signed_in, council, make_campaign, db_session, console
):
    running = make_campaign(council, status="running")
    client, _, token = signed_in(council, "designer")
    assert 'href="/campaigns/' + running.slug + '/close"' in client.get(
        f"/campaigns/{running.slug}"
    ).get_data(as_text=True)
    refused = client.post(f"/campaigns/{running.slug}/close", data={"csrf_token": token})
    assert refused.status_code == 422 and console.errors(refused.get_data(as_text=True), "confirm")
    assert _count(db_session, Campaign, Campaign.status == "running") == 1
    not_deleted = client.post(
        f"/campaigns/{running.slug}/delete", data={"csrf_token": token, "confirm": "y"}
    )
    assert not_deleted.status_code == 302
    assert _count(db_session, Campaign, Campaign.id == running.id) == 1
    closed = client.post(
        f"/campaigns/{running.slug}/close", data={"csrf_token": token, "confirm": "y"}
    )
    assert closed.status_code == 303
    assert _count(db_session, Campaign, Campaign.status == "closed") == 1

    draft = _list_campaign(make_campaign, council, db_session)
    close_page = client.get(f"/campaigns/{draft.slug}/close").get_data(as_text=True)
    assert 'id="delete-instead"' in close_page
    # An outbox row for the draft (the outbox has no foreign keys): deleting removes it.
    person = db_session.scalar(select(Participant).where(Participant.campaign_id == draft.id))
    db_session.add(
        OutboundMessage(
            campaign_id=draft.id,
            participant_id=person.id,
            kind="nudge",
            channel="email",
            due_at=utcnow(),
            idempotency_key=f"test-{draft.id}",
        )
    )
    db_session.commit()
    page = client.get(f"/campaigns/{draft.slug}/delete").get_data(as_text=True)
    assert "12 imported participants" in page
    kept = client.post(f"/campaigns/{draft.slug}/delete", data={"csrf_token": token})
    assert kept.status_code == 422
    assert _count(db_session, Campaign, Campaign.id == draft.id) == 1
    deleted = client.post(
        f"/campaigns/{draft.slug}/delete",
        data={"csrf_token": token, "confirm": "y"},
        follow_redirects=True,
    )
    assert "deleted, with its 12 participant(s)" in deleted.get_data(as_text=True)
    assert _count(db_session, Campaign, Campaign.id == draft.id) == 0
    assert _count(db_session, Participant, Participant.campaign_id == draft.id) == 0
    assert _count(db_session, OutboundMessage, OutboundMessage.campaign_id == draft.id) == 0
    entry = db_session.scalar(select(AuditEntry).where(AuditEntry.action == "campaign.delete"))
    assert entry.before["participants"] == 12 and entry.before["messages"] == 1


def _templates(page: str) -> list[tuple[str, str, str, str]]:
    """(state, arm, message, result) of each row of the checklist's template table."""
    table = re.search(r'<table class="templates">.*?</table>', page, re.S)
    assert table, "no template-by-template table"
    rows = re.findall(
        r'<tr class="(\w+)"><td>([^<]*)</td><td>([^<]*)</td><td>(.*?)</td></tr>', table.group(0)
    )
    return [
        (state, html.unescape(arm), html.unescape(message), html.unescape(re.sub("<[^>]+>", "", r)))
        for state, arm, message, r in rows
    ]


def test_checklist_renders_every_template_of_every_arm_step_and_channel(
    signed_in, council, make_campaign, db_session
):
    """Review point 4: each arm x (its page, email, text) and each arm x step x channel
    is rendered for a participant and has its own result; one that cannot render is
    named with its reason, the others still shown, and the launch refused."""
    from nudge_app.models import Arm

    campaign = _list_campaign(make_campaign, council, db_session)
    arms = db_session.scalars(select(Arm).where(Arm.campaign_id == campaign.id)).all()
    steps = db_session.scalars(
        select(FollowUpStep).where(FollowUpStep.campaign_id == campaign.id)
    ).all()
    assert len(arms) >= 2 and len(steps) >= 1
    client, _, token = signed_in(council, "designer")
    page = client.get(f"/campaigns/{campaign.slug}/launch").get_data(as_text=True)
    rows = _templates(page)
    expected = {(a.key, m) for a in arms for m in ("web page", "email subject", "email body")}
    expected |= {(a.key, "text message") for a in arms}
    expected |= {
        (a.key, f"{s.kind} {s.key!r}: {m}")
        for a in arms
        for s in steps
        for m in ("email subject", "email body", "text message")
    }
    assert {(arm, message) for _, arm, message, _ in rows} == expected
    assert len(rows) == len(expected)
    for state, arm, message, result in rows:
        written = {
            "web page": "page_template",
            "email subject": "email_subject_template",
            "email body": "email_body_template",
            "text message": "sms_template",
        }[message.rsplit(": ", 1)[-1]]
        owner = next(a for a in arms if a.key == arm)
        if ": " in message:
            owner = next(s for s in steps if f"{s.key!r}" in message)
        if (getattr(owner, written) or "").strip():
            assert state == "ok", (arm, message, result)
            assert result.startswith("Renders:")
            if message.endswith("text message"):
                assert re.search(r"\d fragments? \((GSM-7|Unicode)\)", result), result
        else:
            assert (state, result) == ("empty", "None written: not sent."), (arm, message)

    # A draft saved before today's rules: one arm's text and one step's subject break.
    broken_arm = arms[1]
    broken_arm.sms_template = "Hello {frist_name}, join us: {link}"
    steps[0].email_subject_template = "Your {survey_link"
    db_session.commit()
    page = client.get(f"/campaigns/{campaign.slug}/launch").get_data(as_text=True)
    state, text = _row(page, "messages")
    assert state == "stop"
    written = len(rows) - sum(r[0] == "empty" for r in rows)
    assert f"{1 + len(arms)} of {written} templates do not render" in text  # subject per arm
    stopped = {(a, m): r for s, a, m, r in _templates(page) if s == "stop"}
    step_subject = f"{steps[0].kind} {steps[0].key!r}: email subject"
    assert set(stopped) == {(broken_arm.key, "text message")} | {
        (a.key, step_subject) for a in arms
    }
    assert "unknown placeholder {frist_name}" in stopped[(broken_arm.key, "text message")]
    assert "malformed" in stopped[(arms[0].key, step_subject)]
    assert '<details id="each-template" open>' in page
    refused = client.post(
        f"/campaigns/{campaign.slug}/launch", data={"csrf_token": token, "confirm": "y"}
    )
    assert refused.status_code == 422
    assert _count(db_session, Campaign, Campaign.status == "draft") == 1
