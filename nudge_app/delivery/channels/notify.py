"""GOV.UK Notify email and SMS through `notifications-python-client`.

The outbox id is the `reference` (`nudge-<id>`, no personal data), so an ambiguous send
(a timeout or 5xx after the request left) is resolved by searching Notify for the
reference before any resend. A local token bucket keeps under Notify's rate limit
(3,000 a minute per key by default; set NOTIFY_RATE_PER_MINUTE to this process's share
when several schedulers share a key). The Notify templates must be `((subject))` /
`((body))` for email and `((body))` for SMS; the text is rendered by us.
"""

from __future__ import annotations

import requests
from notifications_python_client.errors import HTTPError
from notifications_python_client.notifications import NotificationsAPIClient

from nudge_app.delivery.channels.base import (
    LookupResult,
    SendResult,
    Throttle,
    malformed_address,
)
from nudge_app.services.outbox import RenderedMessage

# Notify's statuses -> ours (receipts and status queries).
FINAL_STATUSES = {
    "delivered": ("delivered", None),
    "sent": ("delivered", None),  # international SMS: Notify's final "sent"
    "permanent-failure": ("failed", "permanent"),
    "temporary-failure": ("failed", "temporary"),
    "technical-failure": ("failed", "technical"),
    "validation-failed": ("failed", "permanent"),
}


class NotifyChannel:
    name = "notify"

    def __init__(
        self,
        api_key: str,
        email_template_id: str | None,
        sms_template_id: str | None,
        base_url: str = "https://api.notifications.service.gov.uk",
        rate_per_minute: int = 3000,
        timeout: float = 30,
        throttle: Throttle | None = None,
    ):
        if not api_key:
            raise ValueError("NOTIFY_API_KEY is not set: the notify channel needs it")
        self.client = NotificationsAPIClient(api_key, base_url=base_url, timeout=timeout)
        self.email_template_id = email_template_id
        self.sms_template_id = sms_template_id
        self.throttle = throttle or Throttle(rate_per_minute)

    def send(self, message: RenderedMessage) -> SendResult:
        refused = malformed_address(message)
        if refused is not None:
            return refused
        self.throttle.acquire()
        try:
            if message.channel == "email":
                if not self.email_template_id:
                    return SendResult("permanent", error="NOTIFY_EMAIL_TEMPLATE_ID is not set")
                response = self.client.send_email_notification(
                    email_address=message.to,
                    template_id=self.email_template_id,
                    personalisation={"subject": message.subject, "body": message.text},
                    reference=message.reference,
                    one_click_unsubscribe_url=message.unsubscribe_url,
                )
            else:
                if not self.sms_template_id:
                    return SendResult("permanent", error="NOTIFY_SMS_TEMPLATE_ID is not set")
                response = self.client.send_sms_notification(
                    phone_number=message.to,
                    template_id=self.sms_template_id,
                    personalisation={"body": message.text},
                    reference=message.reference,
                )
        except HTTPError as exc:
            return classify(exc)
        except requests.RequestException as exc:  # pragma: no cover - the client wraps these
            return SendResult("ambiguous", error=f"Notify request failed: {type(exc).__name__}")
        return SendResult("accepted", provider_id=str(response.get("id")))

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

    def close(self) -> None:
        self.client.request_session.close()

    def status(self, provider_id: str) -> str | None:
        """The provider's current status of a notification (None if it cannot be asked)."""
        try:
            return self.client.get_notification_by_id(provider_id).get("status")
        except HTTPError:
            return None


def classify(exc: HTTPError) -> SendResult:
    """Notify's error answers as send outcomes."""
    code = exc.status_code
    cause = exc.__cause__
    message = exc.message if exc.response is not None else type(cause).__name__
    detail = f"Notify {code}: {_short(message)}"
    if exc.response is None:
        # No answer: a refused connection sent nothing; a read timeout may have.
        if isinstance(cause, requests.ConnectTimeout | requests.exceptions.SSLError):
            return SendResult("retryable", error=detail)
        if isinstance(cause, requests.ConnectionError) and not isinstance(
            cause, requests.ReadTimeout
        ):
            return SendResult("retryable", error=detail)
        return SendResult("ambiguous", error=detail)
    if code == 429:
        return SendResult("retryable", error=detail)
    if code >= 500:
        return SendResult("ambiguous", error=detail)
    if code in (401, 403):  # a key problem: an operator can fix it, keep the message
        return SendResult("retryable", error=detail)
    return SendResult("permanent", error=detail)


def _short(message) -> str:
    if isinstance(message, list):
        message = "; ".join(
            str(e.get("message", e)) if isinstance(e, dict) else str(e) for e in message
        )
    return str(message)[:300]
