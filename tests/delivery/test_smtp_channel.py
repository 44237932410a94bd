"""SMTP email through a real local SMTP server (aiosmtpd): headers, body, STARTTLS, and a
Message-ID that stays the same when a message is retried."""

from __future__ import annotations

import email
import email.policy
import socket
import ssl
import subprocess
from datetime import timedelta

import pytest
from sqlalchemy import select

from nudge_app.delivery.channels.smtp import SmtpChannel
from nudge_app.extensions import db
from nudge_app.models import OutboundMessage
from nudge_app.services import outbox
from nudge_app.services.outbox import RenderedMessage

aiosmtpd_controller = pytest.importorskip("aiosmtpd.controller")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Recorder:
    """An aiosmtpd handler that keeps every DATA it sees; the first `fail` are refused (451)."""

    def __init__(self, fail: int = 0, code: str = "451 4.3.0 Try again later"):
        self.seen = []  # (accepted?, parsed message)
        self.fail, self.code = fail, code

    async def handle_DATA(self, server, session, envelope):
        msg = email.message_from_bytes(envelope.content, policy=email.policy.default)
        if self.fail > 0:
            self.fail -= 1
            self.seen.append((False, msg, envelope))
            return self.code
        self.seen.append((True, msg, envelope))
        return "250 Message accepted for delivery"


@pytest.fixture
def smtp_server():
    started = []

    def start(handler, **kwargs):
        port = _free_port()
        controller = aiosmtpd_controller.Controller(
            handler, hostname="127.0.0.1", port=port, **kwargs
        )
        controller.start()
        started.append(controller)
        return port

    yield start
    for controller in started:
        controller.stop()


def _message(**changes) -> RenderedMessage:
    values = dict(
        message_id=7, reference="nudge-7", channel="email", to="ann@example.org",
        subject="Join the clean-up", text="Dear Ann,\n\nJoin us <today> & bring gloves.",
        unsubscribe_url="https://nudge.example/p/tok/opt-out", kind="nudge", campaign_id=1,
    )  # fmt: skip
    values.update(changes)
    return RenderedMessage(**values)


def test_headers_body_and_list_unsubscribe(smtp_server):
    handler = Recorder()
    port = smtp_server(handler)
    channel = SmtpChannel("127.0.0.1", port, "Testshire <nudge@testshire.gov.uk>", starttls=False,
                          timeout=5)  # fmt: skip
    result = channel.send(_message())
    channel.close()
    assert result.outcome == "accepted"
    ((accepted, msg, envelope),) = handler.seen
    assert accepted and envelope.rcpt_tos == ["ann@example.org"]
    assert msg["Message-ID"] == "<nudge-7@testshire.gov.uk>" == result.provider_id
    assert msg["Subject"] == "Join the clean-up"
    assert msg["List-Unsubscribe"] == "<https://nudge.example/p/tok/opt-out>"
    assert msg["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    text = msg.get_body(("plain",)).get_content().replace("\r\n", "\n")
    html = msg.get_body(("html",)).get_content()
    assert text.strip() == "Dear Ann,\n\nJoin us <today> & bring gloves."
    assert "Join us &lt;today&gt; &amp; bring gloves." in html and "<today>" not in html


def test_refusals_are_classified(smtp_server):
    port = smtp_server(Recorder(fail=1, code="550 5.1.1 No such user"))
    channel = SmtpChannel("127.0.0.1", port, "nudge@testshire.gov.uk", starttls=False, timeout=5)
    assert channel.send(_message()).outcome == "permanent"
    port = smtp_server(Recorder(fail=1))
    channel2 = SmtpChannel("127.0.0.1", port, "nudge@testshire.gov.uk", starttls=False, timeout=5)
    assert channel2.send(_message()).outcome == "retryable"
    channel.close()
    channel2.close()
    closed = _free_port()  # nothing listens: connection refused, nothing was sent
    channel3 = SmtpChannel("127.0.0.1", closed, "nudge@testshire.gov.uk", starttls=False,
                           timeout=2)  # fmt: skip
    assert channel3.send(_message()).outcome == "retryable"


def test_starttls(smtp_server, tmp_path):
    key, cert = tmp_path / "key.pem", tmp_path / "cert.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key),
         "-out", str(cert), "-days", "1", "-subj", "/CN=127.0.0.1",
         "-addext", "subjectAltName=IP:127.0.0.1"],
        check=True, capture_output=True,
    )  # fmt: skip
    server_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_ctx.load_cert_chain(cert, key)
    handler = Recorder()
    port = smtp_server(handler, tls_context=server_ctx, require_starttls=True)
    client_ctx = ssl.create_default_context(cafile=str(cert))
    channel = SmtpChannel("127.0.0.1", port, "nudge@testshire.gov.uk", starttls=True, timeout=5,
                          ssl_context=client_ctx)  # fmt: skip
    assert channel.send(_message()).outcome == "accepted"
    channel.close()
    assert len(handler.seen) == 1
    # Without STARTTLS the server refuses to take mail.
    plain = SmtpChannel("127.0.0.1", port, "nudge@testshire.gov.uk", starttls=False, timeout=5)
    assert plain.send(_message()).outcome in ("retryable", "permanent")
    plain.close()
    assert len(handler.seen) == 1


def test_retry_through_dispatch_keeps_the_message_id(
    app, smtp_server, running_list_campaign, make_participants, daytime
):
    from nudge_app.scheduler import run_once

    handler = Recorder(fail=1)
    port = smtp_server(handler)
    app.config.update(EMAIL_CHANNEL="smtp", SMTP_HOST="127.0.0.1", SMTP_PORT=port,
                      SMTP_STARTTLS=False, SMTP_TIMEOUT=5, MAIL_FROM="nudge@testshire.gov.uk")  # fmt: skip
    (p,) = make_participants(running_list_campaign, 1)
    outbox.on_launch(running_list_campaign)
    db.session.commit()
    first = run_once(app, now=daytime)
    assert first.dispatched.retried == 1
    db.session.commit()
    row = db.session.scalar(select(OutboundMessage).where(OutboundMessage.kind == "nudge"))
    assert row.status == "pending" and row.error_kind == "transient"
    run_once(app, now=row.due_at + timedelta(seconds=1))
    db.session.commit()
    db.session.refresh(row)
    assert row.status == "sent" and row.attempts == 2
    (refused, m1, _), (accepted, m2, env) = handler.seen
    assert not refused and accepted
    assert m1["Message-ID"] == m2["Message-ID"] == f"<nudge-{row.id}@testshire.gov.uk>"
    assert row.provider_message_id == m2["Message-ID"]
    assert env.rcpt_tos == [p.email]
    assert m2.get_body(("plain",)).get_content() == m1.get_body(("plain",)).get_content()


@pytest.mark.parametrize(
    "to", ["ann@example.org\r\nBcc: all@example.org", "ann\x00@example.org", "no-at-sign"]
)
def test_malformed_address_is_a_permanent_failure(smtp_server, to):
    handler = Recorder()
    port = smtp_server(handler)
    channel = SmtpChannel("127.0.0.1", port, "nudge@testshire.gov.uk", starttls=False, timeout=5)
    result = channel.send(_message(to=to))
    channel.close()
    assert result.outcome == "permanent" and "malformed" in result.error
    assert handler.seen == []


def test_stored_crlf_address_fails_once_through_dispatch_and_is_not_retried(
    app, smtp_server, running_list_campaign, make_participants, daytime
):
    """A contact stored before the import refused line breaks fails for good at once."""
    from nudge_app.scheduler import run_once

    handler = Recorder()
    port = smtp_server(handler)
    app.config.update(EMAIL_CHANNEL="smtp", SMTP_HOST="127.0.0.1", SMTP_PORT=port,
                      SMTP_STARTTLS=False, SMTP_TIMEOUT=5, MAIL_FROM="nudge@testshire.gov.uk")  # fmt: skip
    (p,) = make_participants(running_list_campaign, 1)
    p.email = "ann@example.org\r\nBcc: everyone@example.org"
    outbox.on_launch(running_list_campaign)
    db.session.commit()
    first = run_once(app, now=daytime)
    assert first.dispatched.failed == 1 and first.dispatched.retried == 0
    db.session.commit()
    row = db.session.scalar(select(OutboundMessage).where(OutboundMessage.kind == "nudge"))
    assert row.status == "failed" and row.error_kind == "permanent"
    assert handler.seen == []


def test_invitation_through_smtp_carries_the_check_in_code_and_its_qr_image(
    app, smtp_server, running_list_campaign, make_participants, daytime
):
    """Through the scheduler to a real SMTP server: the invitation's text names the
    participant's check-in code and its HTML shows the QR code, a PNG sent with it."""
    from nudge_app.scheduler import run_once
    from nudge_app.services.attendance import check_in_code

    handler = Recorder()
    port = smtp_server(handler)
    app.config.update(EMAIL_CHANNEL="smtp", SMTP_HOST="127.0.0.1", SMTP_PORT=port,
                      SMTP_STARTTLS=False, SMTP_TIMEOUT=5, MAIL_FROM="nudge@testshire.gov.uk")  # fmt: skip
    (p,) = make_participants(running_list_campaign, 1)
    outbox.on_launch(running_list_campaign)
    db.session.commit()
    assert run_once(app, now=daytime).dispatched.sent == 1
    ((accepted, msg, env),) = handler.seen
    code = check_in_code(p.id)
    assert accepted and env.rcpt_tos == [p.email]
    assert f"Your check-in code for the activity: {code}." in msg.get_body(("plain",)).get_content()
    html = msg.get_body(("html",)).get_content()
    (png,) = [part for part in msg.walk() if part.get_content_type() == "image/png"]
    assert f'src="cid:{png["Content-ID"][1:-1]}"' in html and code in html
    assert png.get_content()[:8] == b"\x89PNG\r\n\x1a\n"
