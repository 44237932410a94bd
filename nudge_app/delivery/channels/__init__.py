"""The channel registry: channel classes registered by name and medium, chosen by settings.

`register(cls)` makes a Channel subclass available under `cls.name` for each medium in
`cls.media`; EMAIL_CHANNEL and SMS_CHANNEL (NUDGE_EMAIL_CHANNEL / NUDGE_SMS_CHANNEL) name
the channel each medium uses. The built-in channels register themselves when their
module is imported, which happens on the first look-up of that channel (listing the
names imports them all):

| name | media | module |
|---|---|---|
| `file` | email, sms | `file`: JSON lines in FILE_CHANNEL_PATH (development default) |
| `fakelog` | email, sms | `fake`: references only, to FAKE_CHANNEL_LOG (crash tests, benchmarks) |
| `smtp` | email | `smtp` |
| `notify` | email / sms | `notify`: GOV.UK Notify, one class per medium |

Adding a channel is one module with its class and `register`, and its tests. One
instance per class and app, shared by threads.
"""

from __future__ import annotations

import importlib
import threading

from nudge_app.delivery.channels.base import (
    CallbackRejected,
    Channel,
    ChannelConfigError,
    LookupResult,
    ProviderReceipt,
    Receipt,
    Throttle,
)

MEDIA = ("email", "sms")
# The module of each built-in channel: a worker imports only the ones it uses (the Notify
# client and `requests` are a tenth of a fake-channel worker's start-up).
BUILT_IN_BY_NAME = {"file": "file", "fakelog": "fake", "smtp": "smtp", "notify": "notify"}
BUILT_IN = tuple(dict.fromkeys(BUILT_IN_BY_NAME.values()))  # the modules, each once

__all__ = [
    "MEDIA",
    "CallbackRejected",
    "Channel",
    "ChannelConfigError",
    "LookupResult",
    "ProviderReceipt",
    "Receipt",
    "Throttle",
    "channel_for",
    "channels_for",
    "close_channels",
    "names",
    "register",
    "unregister",
]

_registry: dict[tuple[str, str], type[Channel]] = {}
_lock = threading.RLock()
_loaded = False


def register(cls: type[Channel]) -> type[Channel]:
    """Make `cls` the channel named `cls.name` for each of its media (usable as a decorator)."""
    for medium in cls.media:
        if medium not in MEDIA:
            raise ValueError(f"{cls.__name__}: unknown medium {medium!r} (use {MEDIA})")
        with _lock:
            _registry[(cls.name, medium)] = cls
    return cls


def unregister(cls: type[Channel]) -> None:
    """Remove a registration (tests that register a stand-in)."""
    with _lock:
        for key in [k for k, v in _registry.items() if v is cls]:
            del _registry[key]


def _load_built_in() -> None:
    global _loaded
    if not _loaded:
        with _lock:
            for module in BUILT_IN:
                importlib.import_module(f"{__name__}.{module}")
            _loaded = True


def names(medium: str | None = None) -> list[str]:
    """Registered channel names (for one medium, or all)."""
    _load_built_in()
    return sorted({n for n, m in _registry if medium in (None, m)})


def channel_class(name: str, medium: str) -> type[Channel]:
    cls = _registry.get((name, medium))
    if cls is None and name in BUILT_IN_BY_NAME:
        importlib.import_module(f"{__name__}.{BUILT_IN_BY_NAME[name]}")
        cls = _registry.get((name, medium))
    if cls is None:
        _load_built_in()
        cls = _registry.get((name, medium))
    if cls is None:
        if any(n == name for n, _ in _registry):
            raise ChannelConfigError(f"the {name} channel cannot send {medium}")
        raise ChannelConfigError(f"unknown channel {name!r}: use one of {', '.join(names(medium))}")
    return cls


def channel_for(app, name: str, medium: str) -> Channel:
    """The app's (cached) instance of the channel named `name` for `medium`."""
    cls = channel_class(name, medium)
    cache = app.extensions.setdefault("nudge_channels", {})
    with _lock:
        if cls not in cache:
            cache[cls] = cls.from_config(app.config)
        return cache[cls]


def channels_for(app) -> dict[str, Channel]:
    """{"email": channel, "sms": channel} from EMAIL_CHANNEL and SMS_CHANNEL."""
    return {
        medium: channel_for(app, (app.config.get(f"{medium.upper()}_CHANNEL") or "file").lower(),
                            medium)
        for medium in MEDIA
    }  # fmt: skip


def named(app, name: str) -> Channel:
    """An instance of the channel `name` for whichever medium it is registered for first
    (callbacks and status checks, which do not depend on the medium)."""
    _load_built_in()
    for medium in MEDIA:
        if (name, medium) in _registry:
            return channel_for(app, name, medium)
    raise ChannelConfigError(f"unknown channel {name!r}")


def close_channels(app) -> None:
    """Close the app's provider connections (SMTP sessions, HTTP pools, open files)."""
    cache = app.extensions.get("nudge_channels") or {}
    with _lock:
        for channel in cache.values():
            channel.close()
        cache.clear()
