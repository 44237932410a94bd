"""Message channels behind one small interface (`send`, `lookup`), chosen by configuration.

EMAIL_CHANNEL / SMS_CHANNEL (NUDGE_EMAIL_CHANNEL / NUDGE_SMS_CHANNEL) name a channel:
`file` (development default: JSON lines in FILE_CHANNEL_PATH), `smtp` (email only),
`notify` (GOV.UK Notify), or `fakelog` (references only, to NUDGE_FAKE_CHANNEL_LOG,
taking NUDGE_FAKE_CHANNEL_LATENCY seconds per send; for crash tests and benchmarks).
One instance per provider and process, shared by threads.
"""

from __future__ import annotations

import os
import threading

from nudge_app.delivery.channels.base import Channel, LookupResult, SendResult, Throttle

PROVIDERS = ("file", "smtp", "notify", "fakelog")

__all__ = [
    "Channel",
    "LookupResult",
    "PROVIDERS",
    "SendResult",
    "Throttle",
    "ChannelConfigError",
    "channels_for",
    "close_channels",
    "provider",
]

_lock = threading.Lock()


class ChannelConfigError(ValueError):
    """The channel settings are not usable (unknown name, missing key)."""


def _make(name: str, config) -> Channel:
    if name == "file":
        from nudge_app.delivery.channels.file import FileChannel

        return FileChannel(config["FILE_CHANNEL_PATH"])
    if name == "fakelog":
        from nudge_app.delivery.channels.file import FakeLogChannel

        path = config.get("FAKE_CHANNEL_LOG") or os.environ.get("NUDGE_FAKE_CHANNEL_LOG")
        if not path:
            raise ChannelConfigError("the fakelog channel needs NUDGE_FAKE_CHANNEL_LOG")
        latency = config.get("FAKE_CHANNEL_LATENCY") or os.environ.get("NUDGE_FAKE_CHANNEL_LATENCY")
        return FakeLogChannel(path, latency=float(latency or 0))
    if name == "smtp":
        from nudge_app.delivery.channels.smtp import SmtpChannel

        return SmtpChannel(
            host=config["SMTP_HOST"],
            port=int(config["SMTP_PORT"]),
            mail_from=config["MAIL_FROM"],
            username=config.get("SMTP_USERNAME"),
            password=config.get("SMTP_PASSWORD"),
            starttls=bool(config.get("SMTP_STARTTLS", True)),
            timeout=float(config.get("SMTP_TIMEOUT", 30)),
        )
    if name == "notify":
        from nudge_app.delivery.channels.notify import NotifyChannel

        if not config.get("NOTIFY_API_KEY"):
            raise ChannelConfigError("the notify channel needs NOTIFY_API_KEY")
        return NotifyChannel(
            api_key=config["NOTIFY_API_KEY"],
            email_template_id=config.get("NOTIFY_EMAIL_TEMPLATE_ID"),
            sms_template_id=config.get("NOTIFY_SMS_TEMPLATE_ID"),
            base_url=config.get("NOTIFY_BASE_URL") or "https://api.notifications.service.gov.uk",
            rate_per_minute=int(config.get("NOTIFY_RATE_PER_MINUTE") or 3000),
        )
    raise ChannelConfigError(f"unknown channel {name!r}: use one of {', '.join(PROVIDERS)}")


def provider(app, name: str) -> Channel:
    """The app's (cached) instance of one provider."""
    cache = app.extensions.setdefault("nudge_channels", {})
    with _lock:
        if name not in cache:
            cache[name] = _make(name, app.config)
        return cache[name]


def close_channels(app) -> None:
    """Close the app's provider connections (SMTP sessions, HTTP pools, open files)."""
    cache = app.extensions.get("nudge_channels") or {}
    with _lock:
        for channel in cache.values():
            close = getattr(channel, "close", None)
            if close is not None:
                close()
        cache.clear()


def channels_for(app) -> dict[str, Channel]:
    """{"email": channel, "sms": channel} from EMAIL_CHANNEL and SMS_CHANNEL."""
    email = (app.config.get("EMAIL_CHANNEL") or "file").lower()
    sms = (app.config.get("SMS_CHANNEL") or "file").lower()
    if sms == "smtp":
        raise ChannelConfigError("SMS_CHANNEL cannot be smtp: use file or notify")
    return {"email": provider(app, email), "sms": provider(app, sms)}
