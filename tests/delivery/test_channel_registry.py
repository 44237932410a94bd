"""The channel registry: a test-only "log" channel, added by one registration and nothing
else, carries messages through dispatch, reclaim, callbacks and reconcile."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select

from nudge_app.delivery import channels
from nudge_app.delivery.channels import (
    CallbackRejected,
    Channel,
    ChannelConfigError,
    LookupResult,
    ProviderReceipt,
    Receipt,
)
from nudge_app.extensions import db
from nudge_app.models import OutboundMessage
from nudge_app.scheduler import run_once
from nudge_app.services import outbox


class LogChannel(Channel):
    """Keeps every message in a list; the first send of each reference can be made to
    get lost on the way back (ambiguous), as a timed-out provider would."""

    name = "log"
    media = ("email", "sms")
    lost_answers: set[str] = set()

    def __init__(self, token: str):
        self.token = token
        self.log: list = []
        self.delivered: set[str] = set()

    @classmethod
    def from_config(cls, config):
        return cls(config["SECRET_KEY"][:8])

    def send(self, message):
        self.log.append(message)
        if message.reference in self.lost_answers:
            self.lost_answers.discard(message.reference)
            return ProviderReceipt("ambiguous", error="answer lost")
        return ProviderReceipt("accepted", provider_id=f"log-{message.reference}")

    def lookup(self, reference):
        return LookupResult(any(m.reference == reference for m in self.log), f"log-{reference}")

    def parse_callback(self, request):
        if request.headers.get("X-Log-Token") != self.token:
            raise CallbackRejected(401, "unauthorized", "wrong token")
        return [Receipt("delivered", reference=ref) for ref in request.get_json()["delivered"]]

    def status(self, provider_id):
        ref = provider_id.removeprefix("log-")
        return Receipt("delivered", provider_id=provider_id) if ref in self.delivered else None


@pytest.fixture
def log_channel(app):
    channels.register(LogChannel)
    app.config.update(EMAIL_CHANNEL="log", SMS_CHANNEL="log")
    yield lambda: channels.channel_for(app, "log", "email")
    channels.unregister(LogChannel)


def _rows():
    db.session.commit()
    return list(db.session.scalars(select(OutboundMessage).order_by(OutboundMessage.id)))


def test_a_registered_channel_carries_messages_end_to_end(
    app, client, log_channel, running_list_campaign, make_participants, daytime
):
    people = make_participants(running_list_campaign, 3)
    outbox.on_launch(running_list_campaign)
    db.session.commit()
    nudges = [m for m in _rows() if m.kind == "nudge"]
    LogChannel.lost_answers = {f"nudge-{nudges[0].id}"}
    first = run_once(app, now=daytime)
    assert (first.dispatched.sent, first.dispatched.ambiguous) == (2, 1)
    channel = log_channel()
    assert sorted(m.to for m in channel.log) == sorted(p.email for p in people)
    # The ambiguous one is looked up in the log channel (it has it): sent, never resent.
    run_once(app, now=daytime + timedelta(minutes=5))
    nudges = [m for m in _rows() if m.kind == "nudge"]
    assert {(m.status, m.provider) for m in nudges} == {("sent", "log")}
    assert len(channel.log) == 3
    # Its callbacks: authenticated by the channel itself, receipts recorded neutrally.
    body = {"delivered": [f"nudge-{nudges[0].id}", f"nudge-{nudges[1].id}"]}
    assert client.post("/callbacks/log", json=body).status_code == 401
    answer = client.post("/callbacks/log", json=body, headers={"X-Log-Token": "testing-"})
    assert answer.status_code == 200
    assert answer.get_json() == {"results": ["recorded", "recorded"]}
    # The third is reported by a status check (reconcile), as Notify's are.
    channel.delivered.add(f"nudge-{nudges[2].id}")
    run_once(app, now=daytime + timedelta(hours=1))
    assert {m.status for m in _rows() if m.kind == "nudge"} == {"delivered"}


def test_unknown_channels_are_refused_clearly(app, client):
    app.config["EMAIL_CHANNEL"] = "carrier-pigeon"
    with pytest.raises(ChannelConfigError, match="unknown channel 'carrier-pigeon'.*smtp"):
        channels.channels_for(app)
    app.config.update(EMAIL_CHANNEL="file", SMS_CHANNEL="smtp")
    with pytest.raises(ChannelConfigError, match="smtp channel cannot send sms"):
        channels.channels_for(app)
    response = client.post("/callbacks/carrier-pigeon", json={})
    assert response.status_code == 404 and response.get_json()["error"] == "not_configured"
    assert client.post("/callbacks/file", json={}).status_code == 404  # takes no callbacks


def test_built_in_channels_are_registered():
    assert channels.names("email") == ["fakelog", "file", "notify", "smtp"]
    assert channels.names("sms") == ["fakelog", "file", "notify"]
