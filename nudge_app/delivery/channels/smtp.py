"""SMTP email: STARTTLS, timeouts, a Message-ID stable across retries, one-click unsubscribe.

The Message-ID is derived from our reference (`<nudge-<id>@domain>`), so a resend of the
same outbox row carries the same Message-ID and receiving systems can spot the repeat.
SMTP offers no way to ask whether a message was taken, so `lookup` returns None: an
ambiguous send (the connection broke after DATA) is resent and logged as a possible
duplicate.
"""

from __future__ import annotations

import smtplib
import ssl
import threading
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid, parseaddr

from nudge_app.db import utcnow
from nudge_app.delivery.channels import register
from nudge_app.delivery.channels.base import (
    Channel,
    LookupResult,
    ProviderReceipt,
    malformed_address,
)
from nudge_app.services.attendance import check_in_note, qr_png
from nudge_app.services.outbox import RenderedMessage
from nudge_app.templating import html_paragraphs


@register
class SmtpChannel(Channel):
    name = "smtp"
    media = ("email",)

    def __init__(
        self,
        host: str,
        port: int,
        mail_from: str,
        username: str | None = None,
        password: str | None = None,
        starttls: bool = True,
        timeout: float = 30,
        ssl_context: ssl.SSLContext | None = None,
    ):
        self.host, self.port, self.mail_from = host, port, mail_from
        self.username, self.password = username, password
        self.starttls, self.timeout = starttls, timeout
        self.ssl_context = ssl_context
        domain = parseaddr(mail_from)[1].rpartition("@")[2] or "localhost"
        self.domain = domain
        self._conn: smtplib.SMTP | None = None
        self._lock = threading.Lock()

    @classmethod
    def from_config(cls, config) -> SmtpChannel:
        return cls(
            host=config["SMTP_HOST"],
            port=int(config["SMTP_PORT"]),
            mail_from=config["MAIL_FROM"],
            username=config.get("SMTP_USERNAME"),
            password=config.get("SMTP_PASSWORD"),
            starttls=bool(config.get("SMTP_STARTTLS", True)),
            timeout=float(config.get("SMTP_TIMEOUT", 30)),
        )

    def build(self, message: RenderedMessage) -> EmailMessage:
        """The MIME message: plain text with an HTML alternative and the list headers."""
        msg = EmailMessage()
        msg["From"] = self.mail_from
        msg["To"] = message.to
        msg["Subject"] = message.subject
        msg["Date"] = format_datetime(utcnow())
        msg["Message-ID"] = f"<{message.reference}@{self.domain}>"
        msg["Auto-Submitted"] = "auto-generated"
        if message.unsubscribe_url:
            msg["List-Unsubscribe"] = f"<{message.unsubscribe_url}>"
            msg["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
        code = message.check_in_code
        if not code:
            msg.set_content(message.text)
            msg.add_alternative(
                f"<!doctype html><html><body>{html_paragraphs(message.text)}</body></html>",
                subtype="html",
            )
            return msg
        # The activity's door: the check-in code as text and as a QR code (a PNG sent
        # with the message, which mail programs show without fetching anything).
        note = check_in_note(code)
        msg.set_content(f"{message.text}\n\n{note}")
        cid = make_msgid(domain=self.domain)
        msg.add_alternative(
            "<!doctype html><html><body>"
            f"{html_paragraphs(message.text)}{html_paragraphs(note)}"
            f'<p><img src="cid:{cid[1:-1]}" alt="QR code of check-in code {code}" '
            'width="150" height="150"></p></body></html>',
            subtype="html",
        )
        msg.get_payload()[1].add_related(
            qr_png(code), "image", "png", cid=cid, filename="check-in-code.png"
        )
        return msg

    def _connect(self) -> smtplib.SMTP:
        conn = smtplib.SMTP(self.host, self.port, timeout=self.timeout)
        try:
            conn.ehlo()
            if self.starttls:
                conn.starttls(context=self.ssl_context or ssl.create_default_context())
                conn.ehlo()
            if self.username:
                conn.login(self.username, self.password or "")
        except BaseException:
            conn.close()
            raise
        return conn

    def _drop(self) -> None:
        if self._conn is not None:
            try:
                self._conn.close()
            except OSError:
                pass
            self._conn = None

    def send(self, message: RenderedMessage) -> ProviderReceipt:
        refused = malformed_address(message)
        if refused is not None:
            return refused
        try:
            mime = self.build(message)
        except ValueError as exc:  # a header the email package will not write
            return ProviderReceipt("permanent", error=f"cannot build the message: {exc}"[:200])
        with self._lock:
            try:
                if self._conn is None:
                    self._conn = self._connect()
                else:
                    try:  # a pooled connection may have timed out on the server side
                        if self._conn.noop()[0] != 250:
                            raise smtplib.SMTPServerDisconnected("noop failed")
                    except (smtplib.SMTPException, OSError):
                        self._drop()
                        self._conn = self._connect()
            except smtplib.SMTPAuthenticationError as exc:
                self._drop()
                return ProviderReceipt(
                    "retryable", error=f"SMTP authentication failed ({exc.smtp_code})"
                )
            except (smtplib.SMTPException, OSError, ssl.SSLError) as exc:
                self._drop()
                return ProviderReceipt(
                    "retryable", error=f"SMTP connection failed: {type(exc).__name__}"
                )
            try:
                refused = self._conn.send_message(mime)
            except smtplib.SMTPRecipientsRefused as exc:
                code = next(iter(exc.recipients.values()))[0]
                return _by_code(code, "recipient refused")
            except smtplib.SMTPSenderRefused as exc:
                return _by_code(exc.smtp_code, "sender refused")
            except smtplib.SMTPDataError as exc:
                return _by_code(exc.smtp_code, "message refused")
            except (smtplib.SMTPServerDisconnected, TimeoutError, OSError) as exc:
                # The server may or may not have queued the message.
                self._drop()
                return ProviderReceipt(
                    "ambiguous", error=f"SMTP connection lost: {type(exc).__name__}"
                )
            except smtplib.SMTPException as exc:
                self._drop()
                return ProviderReceipt("retryable", error=f"SMTP error: {type(exc).__name__}")
        if refused:
            code = next(iter(refused.values()))[0]
            return _by_code(code, "recipient refused")
        return ProviderReceipt("accepted", provider_id=mime["Message-ID"])

    def lookup(self, reference: str) -> LookupResult | None:
        return None  # SMTP cannot be asked

    def close(self) -> None:
        with self._lock:
            if self._conn is not None:
                try:
                    self._conn.quit()
                except (smtplib.SMTPException, OSError):
                    pass
            self._conn = None


def _by_code(code: int, what: str) -> ProviderReceipt:
    if 500 <= code < 600:
        return ProviderReceipt("permanent", error=f"{what} ({code})")
    return ProviderReceipt("retryable", error=f"{what} ({code})")
