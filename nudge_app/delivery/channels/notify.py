"""GOV.UK Notify email and SMS through `notifications-python-client`.

The outbox id is the `reference` (`nudge-<id>`, no personal data), so an ambiguous send
(a timeout or 5xx after the request left) is resolved by searching Notify for the
reference before any resend. A local token bucket per API key keeps under Notify's rate
limit (3,000 a minute per key by default; set NOTIFY_RATE_PER_MINUTE to this process's
share when several schedulers share a key). The Notify templates must be `((subject))` /
`((body))` for email and `((body))` for SMS; the text is rendered by us.

Registered as `notify` twice, for email (`NotifyEmailChannel`) and for SMS
(`NotifySmsChannel`). Notify's delivery callbacks (POSTed to `/callbacks/notify` with
the bearer token NOTIFY_CALLBACK_TOKEN) and status checks become provider-neutral
receipts here.
"""

from __future__ import annotations

import hmac
import threading
from datetime import UTC, datetime

import requests
from notifications_python_client.errors import HTTPError
from notifications_python_client.notifications import NotificationsAPIClient

from nudge_app.delivery.channels import register
from nudge_app.delivery.channels.base import (
    CallbackRejected,
    Channel,
    ChannelConfigError,
    LookupResult,
    ProviderReceipt,
    Receipt,
    Throttle,
    malformed_address,
)
from nudge_app.services.attendance import check_in_note
from nudge_app.services.outbox import RenderedMessage

DEFAULT_BASE_URL = "https://api.notifications.service.gov.uk"

# Notify's final statuses -> (ours, error_kind).
FINAL_STATUSES = {
    "delivered": ("delivered", None),
    "sent": ("delivered", None),  # international SMS: Notify's final "sent"
    "permanent-failure": ("failed", "permanent"),
    "temporary-failure": ("failed", "temporary"),
    "technical-failure": ("failed", "technical"),
    "validation-failed": ("failed", "permanent"),
}
# Statuses a callback may carry that are not final yet (accepted and ignored).
INTERIM_STATUSES = ("created", "sending", "pending")

# One token bucket per API key and process: email and SMS share Notify's per-key limit.
_throttles: dict[str, Throttle] = {}
_throttles_lock = threading.Lock()


def _throttle(api_key: str, per_minute: int) -> Throttle:
    with _throttles_lock:
        if api_key not in _throttles:
            _throttles[api_key] = Throttle(per_minute)
        return _throttles[api_key]


def _email_body(message: RenderedMessage) -> str:
    """The text, with the check-in code and the link to the page showing its QR code
    (Notify sends our text through a plain template: no image can go with it)."""
    if not message.check_in_code:
        return message.text
    return f"{message.text}\n\n{check_in_note(message.check_in_code, message.check_in_page)}"


class NotifyChannel(Channel):
    """Notify for both media (the registered subclasses each carry one)."""

    name = "notify"
    media = ("email", "sms")

    def __init__(
        self,
        api_key: str,
        email_template_id: str | None,
        sms_template_id: str | None,
        base_url: str = DEFAULT_BASE_URL,
        rate_per_minute: int = 3000,
        timeout: float = 30,
        throttle: Throttle | None = None,
        callback_token: str | None = None,
    ):
        if not api_key:
            raise ChannelConfigError("the notify channel needs NOTIFY_API_KEY")
        self.client = NotificationsAPIClient(api_key, base_url=base_url, timeout=timeout)
        self.email_template_id = email_template_id
        self.sms_template_id = sms_template_id
        self.throttle = throttle or Throttle(rate_per_minute)
        self.callback_token = callback_token

    @classmethod
    def from_config(cls, config) -> NotifyChannel:
        key = config.get("NOTIFY_API_KEY")
        if not key:
            raise ChannelConfigError("the notify channel needs NOTIFY_API_KEY")
        rate = int(config.get("NOTIFY_RATE_PER_MINUTE") or 3000)
        return cls(
            api_key=key,
            email_template_id=config.get("NOTIFY_EMAIL_TEMPLATE_ID"),
            sms_template_id=config.get("NOTIFY_SMS_TEMPLATE_ID"),
            base_url=config.get("NOTIFY_BASE_URL") or DEFAULT_BASE_URL,
            throttle=_throttle(key, rate),
            callback_token=config.get("NOTIFY_CALLBACK_TOKEN"),
        )

    def send(self, message: RenderedMessage) -> ProviderReceipt:
        refused = malformed_address(message)
        if refused is not None:
            return refused
        self.throttle.acquire()
        try:
            if message.channel == "email":
                if not self.email_template_id:
                    return ProviderReceipt("permanent", error="NOTIFY_EMAIL_TEMPLATE_ID is not set")
                response = self.client.send_email_notification(
                    email_address=message.to,
                    template_id=self.email_template_id,
                    personalisation={"subject": message.subject, "body": _email_body(message)},
                    reference=message.reference,
                    one_click_unsubscribe_url=message.unsubscribe_url,
                )
            else:
                if not self.sms_template_id:
                    return ProviderReceipt("permanent", error="NOTIFY_SMS_TEMPLATE_ID is not set")
                response = self.client.send_sms_notification(
                    phone_number=message.to,
                    template_id=self.sms_template_id,
                    personalisation={"body": message.text},
                    reference=message.reference,
                )
        except HTTPError as exc:
            return classify(exc)
        except requests.RequestException as exc:  # pragma: no cover - the client wraps these
            return ProviderReceipt(
                "ambiguous", error=f"Notify request failed: {type(exc).__name__}"
            )
        return ProviderReceipt("accepted", provider_id=str(response.get("id")))

    def lookup(self, reference: str) -> LookupResult | None:
        try:
            found = self.client.get_all_notifications(reference=reference)
        except HTTPError:
            return None
        notifications = found.get("notifications") or []
        if not notifications:
            return LookupResult(False)
        n = notifications[0]
        return LookupResult(True, provider_id=str(n.get("id")), status=n.get("status"))

    def status(self, provider_id: str) -> Receipt | None:
        """A receipt when Notify has a final status for the notification, else None."""
        try:
            found = self.client.get_notification_by_id(provider_id)
        except HTTPError:
            return None
        return receipt_from(found.get("status"), found.get("reference"), provider_id)

    def parse_callback(self, request) -> list[Receipt]:
        """Notify's callback body (one notification) as a receipt; interim statuses as none."""
        if not self.callback_token:
            raise CallbackRejected(404, "not_configured", "Notify callbacks are not enabled")
        given = request.headers.get("Authorization", "")
        if not hmac.compare_digest(given.encode(), f"Bearer {self.callback_token}".encode()):
            raise CallbackRejected(401, "unauthorized", "missing or wrong bearer token")
        data = request.get_json(silent=True)
        if not isinstance(data, dict) or not isinstance(data.get("status"), str):
            raise CallbackRejected(400, "bad_request", "a JSON object with a status is needed")
        status = data["status"]
        if status not in FINAL_STATUSES and status not in INTERIM_STATUSES:
            raise CallbackRejected(400, "bad_request", f"unknown status {status[:40]!r}")
        at = _parse_time(data.get("completed_at")) or _parse_time(data.get("sent_at"))
        receipt = receipt_from(status, data.get("reference"), data.get("id"), at)
        return [receipt] if receipt else []

    def close(self) -> None:
        self.client.request_session.close()


@register
class NotifyEmailChannel(NotifyChannel):
    media = ("email",)


@register
class NotifySmsChannel(NotifyChannel):
    media = ("sms",)


def receipt_from(status, reference, provider_id, at: datetime | None = None) -> Receipt | None:
    """Notify's status as a neutral receipt (None while it is not final)."""
    if status not in FINAL_STATUSES:
        return None
    ours, error_kind = FINAL_STATUSES[status]
    return Receipt(
        status=ours, reference=reference, provider_id=str(provider_id) if provider_id else None,
        error_kind=error_kind, at=at, detail=status,
    )  # fmt: skip


def _parse_time(text) -> datetime | None:
    if not text:
        return None
    try:
        value = datetime.fromisoformat(str(text).replace("Z", "+00:00"))
    except ValueError:
        return None
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def classify(exc: HTTPError) -> ProviderReceipt:
    """Notify's error answers as send outcomes."""
    code = exc.status_code
    cause = exc.__cause__
    message = exc.message if exc.response is not None else type(cause).__name__
    detail = f"Notify {code}: {_short(message)}"
    if exc.response is None:
        # No answer: a refused connection sent nothing; a read timeout may have.
        if isinstance(cause, requests.ConnectTimeout | requests.exceptions.SSLError):
            return ProviderReceipt("retryable", error=detail)
        if isinstance(cause, requests.ConnectionError) and not isinstance(
            cause, requests.ReadTimeout
        ):
            return ProviderReceipt("retryable", error=detail)
        return ProviderReceipt("ambiguous", error=detail)
    if code == 429:
        return ProviderReceipt("retryable", error=detail)
    if code >= 500:
        return ProviderReceipt("ambiguous", error=detail)
    if code in (401, 403):  # a key problem: an operator can fix it, keep the message
        return ProviderReceipt("retryable", error=detail)
    return ProviderReceipt("permanent", error=detail)


def _short(message) -> str:
    if isinstance(message, list):
        message = "; ".join(
            str(e.get("message", e)) if isinstance(e, dict) else str(e) for e in message
        )
    return str(message)[:300]
