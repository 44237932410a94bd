"""GOV.UK Notify: the real client against a local stand-in speaking Notify's v2 endpoints;
delivery receipts through the callback endpoint and the reconcile tick."""

from __future__ import annotations

from datetime import timedelta

import pytest
from notify_standin import API_KEY, EMAIL_TEMPLATE_ID, SMS_TEMPLATE_ID, NotifyStandIn
from sqlalchemy import select, update

from nudge_app.delivery.channels import Throttle
from nudge_app.delivery.channels.notify import NotifyChannel
from nudge_app.extensions import db
from nudge_app.models import OutboundMessage, Participant
from nudge_app.scheduler import run_once
from nudge_app.services import outbox
from nudge_app.services.outbox import RenderedMessage


@pytest.fixture
def notify():
    standin = NotifyStandIn().start()
    yield standin
    standin.stop()


def _channel(standin, key=API_KEY, timeout=5):
    return NotifyChannel(
        key, EMAIL_TEMPLATE_ID, SMS_TEMPLATE_ID, base_url=standin.url, timeout=timeout,
        throttle=Throttle(100_000),
    )  # fmt: skip


def _message(ref="nudge-1", to="ann@example.org", channel="email") -> RenderedMessage:
    return RenderedMessage(
        message_id=int(ref.split("-")[1]), reference=ref, channel=channel, to=to,
        subject="Join us" if channel == "email" else "", text="Dear Ann, join us.",
        unsubscribe_url="https://nudge.example/p/t/opt-out", kind="nudge", campaign_id=1,
    )  # fmt: skip


def test_email_and_sms_are_accepted_with_our_reference(notify):
    channel = _channel(notify)
    email = channel.send(_message("nudge-1"))
    sms = channel.send(_message("nudge-2", to="07700900123", channel="sms"))
    assert email.outcome == sms.outcome == "accepted"
    (n,) = notify.by_reference("nudge-1")
    assert n["id"] == email.provider_id and n["subject"] == "Join us"
    assert n["email_address"] == "ann@example.org"
    assert n["one_click_unsubscribe_url"] == "https://nudge.example/p/t/opt-out"
    (s,) = notify.by_reference("nudge-2")
    assert s["type"] == "sms" and s["body"] == "Dear Ann, join us."
    found = channel.lookup("nudge-1")
    assert found.found and found.provider_id == email.provider_id
    assert channel.lookup("nudge-999").found is False
    receipt = channel.status(email.provider_id)
    assert (receipt.status, receipt.provider_id, receipt.reference) == (
        "delivered",
        email.provider_id,
        "nudge-1",
    )


def test_error_answers_are_classified(notify):
    channel = _channel(notify)
    notify.inject("429")
    assert channel.send(_message("nudge-1")).outcome == "retryable"
    notify.inject("503")
    assert channel.send(_message("nudge-2")).outcome == "ambiguous"
    assert channel.lookup("nudge-2").found is False  # nothing was created: resend is safe
    assert channel.send(_message("nudge-3", to="not-an-address")).outcome == "permanent"
    wrong = _channel(notify, key=API_KEY[:-4] + "0000")
    assert wrong.send(_message("nudge-4")).outcome == "retryable"  # 403: fix the key, keep it
    assert notify.notifications == {}


def test_ambiguous_answers_are_resolved_by_reference(notify):
    channel = _channel(notify, timeout=1)
    notify.inject("500-after-create")
    result = channel.send(_message("nudge-5"))
    assert result.outcome == "ambiguous"
    assert channel.lookup("nudge-5").found  # Notify has it: no resend
    notify.slow_seconds = 2.5
    notify.inject("slow-after-create")
    assert channel.send(_message("nudge-6")).outcome == "ambiguous"  # read timeout
    assert channel.lookup("nudge-6").found


def test_throttle_spaces_sends_to_the_rate():
    clock = [0.0]
    throttle = Throttle(per_minute=60, burst=2, clock=lambda: clock[0])
    assert throttle.wait_time() == 0 and throttle.wait_time() == 0
    assert throttle.wait_time() == pytest.approx(1.0)  # third in the same instant: wait 1 s
    clock[0] = 10.0
    assert throttle.wait_time() == 0  # refilled (up to the burst)


@pytest.fixture
def notify_app(app, notify):
    app.config.update(
        EMAIL_CHANNEL="notify", SMS_CHANNEL="notify", NOTIFY_API_KEY=API_KEY,
        NOTIFY_BASE_URL=notify.url, NOTIFY_EMAIL_TEMPLATE_ID=EMAIL_TEMPLATE_ID,
        NOTIFY_SMS_TEMPLATE_ID=SMS_TEMPLATE_ID, NOTIFY_CALLBACK_TOKEN="cb-token-123",
    )  # fmt: skip
    return app


def _rows():
    db.session.commit()
    return list(db.session.scalars(select(OutboundMessage).order_by(OutboundMessage.id)))


def test_dispatch_through_notify_then_receipts(
    notify_app, notify, client, running_list_campaign, make_participants, daytime
):
    ok, perm, temp = make_participants(running_list_campaign, 3)
    db.session.get(Participant, perm.id).email = "perm-fail@simulator.notify"
    db.session.get(Participant, temp.id).email = "temp-fail@simulator.notify"
    db.session.commit()
    outbox.on_launch(running_list_campaign)
    db.session.commit()
    notify.inject("429", "500")  # a rate limit and a server error on the first two sends
    first = run_once(notify_app, now=daytime)
    assert first.dispatched.sent == 1
    assert first.dispatched.retried == 1 and first.dispatched.ambiguous == 1
    later = daytime + timedelta(minutes=5)
    run_once(notify_app, now=later)  # the ambiguous one is looked up (absent) and backed off
    run_once(notify_app, now=later + timedelta(minutes=5))  # before any reconcile
    nudges = [m for m in _rows() if m.kind == "nudge"]
    assert {m.status for m in nudges} == {"sent"}
    for m in nudges:
        (n,) = notify.by_reference(f"nudge-{m.id}")  # exactly one notification each
        assert m.provider_message_id == n["id"] and m.provider == "notify"
        assert "@" not in m.provider_reference
    # Receipts: wrong token refused; right token records delivered / failures.
    by_person = {m.participant_id: m for m in nudges}
    receipt = notify.receipt(by_person[perm.id].provider_message_id)
    assert client.post("/callbacks/notify", json=receipt).status_code == 401
    bad = {"Authorization": "Bearer wrong"}
    assert client.post("/callbacks/notify", json=receipt, headers=bad).status_code == 401
    good = {"Authorization": "Bearer cb-token-123"}
    answer = client.post("/callbacks/notify", json=receipt, headers=good)
    assert answer.status_code == 200 and answer.get_json()["result"] == "recorded"
    again = client.post("/callbacks/notify", json=receipt, headers=good)  # Notify retries
    assert again.get_json()["result"] == "already final"
    unknown = dict(receipt, reference="nudge-999999", id="x")
    assert client.post("/callbacks/notify", json=unknown, headers=good).status_code == 200
    assert client.post("/callbacks/notify", data="nope", headers=good).status_code == 400
    # The others' receipts never came: the reconcile tick asks Notify.
    run_once(notify_app, now=later + timedelta(hours=2))
    by_person = {m.participant_id: m for m in _rows() if m.kind == "nudge"}
    assert (by_person[perm.id].status, by_person[perm.id].error_kind) == ("failed", "permanent")
    assert (by_person[temp.id].status, by_person[temp.id].error_kind) == ("failed", "temporary")
    assert by_person[ok.id].status == "delivered" and by_person[ok.id].delivered_at
    counts = outbox.counts_by_status(running_list_campaign.id)
    assert counts[("failed", "permanent")] == 1


def test_callback_disabled_without_token(app, client):
    app.config["NOTIFY_CALLBACK_TOKEN"] = None
    response = client.post(
        "/callbacks/notify", json={"status": "delivered"}, headers={"Authorization": "Bearer "}
    )
    assert response.status_code == 404


def test_sms_for_phone_only_participant(
    notify_app, notify, running_list_campaign, make_participants, daytime
):
    (p,) = make_participants(running_list_campaign, 1, email=False, phone=True)
    outbox.on_launch(running_list_campaign)
    db.session.commit()
    db.session.execute(update(OutboundMessage).values(due_at=daytime))
    db.session.commit()
    run_once(notify_app, now=daytime)
    (m,) = [m for m in _rows() if m.kind == "nudge"]
    assert m.channel == "sms" and m.status == "sent"
    (n,) = notify.by_reference(f"nudge-{m.id}")
    assert n["phone_number"] == p.phone and n["type"] == "sms"


def test_invitation_through_notify_carries_the_check_in_code_and_the_page_showing_its_qr(
    notify_app, notify, client, running_list_campaign, make_participants, daytime
):
    """Notify sends our text through a plain template (no image can go with it): the
    e-mail carries the check-in code and the participant's page, which shows its QR."""
    from nudge_app.services.attendance import check_in_code

    (p,) = make_participants(running_list_campaign, 1)
    outbox.on_launch(running_list_campaign)
    db.session.commit()
    assert run_once(notify_app, now=daytime).dispatched.sent == 1
    (m,) = [m for m in _rows() if m.kind == "nudge"]
    (n,) = notify.by_reference(f"nudge-{m.id}")
    code = check_in_code(p.id)
    assert f"Your check-in code for the activity: {code}. Show it at the door." in n["body"]
    page = n["body"].rsplit("a QR code the organiser can scan: ", 1)[1].strip()
    path = "/p/" + page.rsplit("/p/", 1)[1]
    client.post(f"{path}/consent", data={"decision": "agree"})
    baseline = {"age": "40", "gender": "woman", "se_safety": "3", "se_environment": "3"}
    client.post(f"{path}/baseline", data={**baseline, "se_health": "3"})
    shown = client.get(path).get_data(as_text=True)
    assert f"<title>QR code of your check-in code {code}</title>" in shown
