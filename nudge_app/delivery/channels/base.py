"""The channel interface (as warehouse's email interfaces): what dispatch and receipts need
from a provider, and the provider-neutral values that cross it.

A channel is a class registered under a `name` for the media it carries (`email`,
`sms`). It is built from the app's settings (`from_config`), and

- `send(message) -> ProviderReceipt` never raises for a provider's answer; the outcome is
  accepted (the provider took it; `provider_id` names it there), retryable (it did not,
  and trying later may work: a timeout before sending, a rate limit), permanent (it never
  will: invalid address, refused recipient) or ambiguous (we cannot tell whether it took
  the message: a read timeout after the request left). Dispatch asks `lookup` before
  resending an ambiguous one.
- `lookup(reference)` says whether the provider has a message of ours (found / not
  found), or None when it cannot be asked (SMTP).
- `parse_callback(request) -> [Receipt]` turns a provider's delivery callback into
  provider-neutral receipts, or raises CallbackRejected (wrong token, bad body).
- `status(provider_id) -> Receipt | None` asks the provider about one message, for the
  reconcile tick (None: nothing final to report, or it cannot be asked).
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, ClassVar, Literal, NamedTuple

from nudge_app.services.outbox import RenderedMessage

Outcome = Literal["accepted", "retryable", "permanent", "ambiguous"]


class ProviderReceipt(NamedTuple):
    """A provider's answer to one send (a named tuple: one per message sent)."""

    outcome: Outcome
    provider_id: str | None = None
    error: str | None = None


@dataclass(frozen=True)
class LookupResult:
    found: bool
    provider_id: str | None = None
    status: str | None = None  # the provider's status, when it gives one


# A line break or other control character in an address (it would end up in an SMTP
# header), or an email address without one @: no provider will ever take it.
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")


def malformed_address(message: RenderedMessage) -> ProviderReceipt | None:
    """A permanent failure for an address that can never be sent to, so it is not
    retried; None when the address is well formed enough to try."""
    to = message.to or ""
    bad = _CONTROL.search(to) or not to.strip()
    if message.channel == "email":
        bad = bad or to.count("@") != 1 or " " in to.strip()
    if bad:
        return ProviderReceipt("permanent", error=f"malformed {message.channel} address")
    return None


@dataclass(frozen=True)
class Receipt:
    """A final delivery report, whatever the provider: delivered, or failed and why.

    `reference` is ours (`nudge-<id>`); when a provider does not echo it back, the row is
    found by `provider_id`. `error_kind` (failed only) is `permanent` (stop using the
    address), `temporary` (the provider gave up after its own retries) or `technical`.
    """

    status: Literal["delivered", "failed"]
    reference: str | None = None
    provider_id: str | None = None
    error_kind: str | None = None
    at: datetime | None = None
    detail: str | None = None  # the provider's own word for it, kept on failed rows


class CallbackRejected(Exception):
    """A callback the channel will not take: answered with `status` and `message`."""

    def __init__(self, status: int, error: str, message: str):
        super().__init__(message)
        self.status, self.error, self.message = status, error, message


class ChannelConfigError(ValueError):
    """The channel settings are not usable (unknown name, missing key)."""


class Channel:
    """Base class of every channel; subclasses set `name` and `media` and implement `send`."""

    name: ClassVar[str]
    media: ClassVar[tuple[str, ...]]

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> Channel:
        """An instance from the app's settings (raise ChannelConfigError if unusable)."""
        return cls()

    def send(self, message: RenderedMessage) -> ProviderReceipt:
        raise NotImplementedError

    def lookup(self, reference: str) -> LookupResult | None:
        return None

    def parse_callback(self, request) -> list[Receipt]:
        raise CallbackRejected(404, "not_found", f"the {self.name} channel takes no callbacks")

    def status(self, provider_id: str) -> Receipt | None:
        return None

    def close(self) -> None:
        """Close connections and files (end of process, end of a test)."""


class Throttle:
    """A token bucket shared by the threads of one process: at most `per_minute` sends."""

    def __init__(self, per_minute: int, burst: int | None = None, clock=time.monotonic):
        self.rate = max(per_minute, 1) / 60.0
        self.capacity = float(burst if burst is not None else max(1, min(per_minute, 50)))
        self.tokens = self.capacity
        self.clock = clock
        self.updated = clock()
        self.lock = threading.Lock()

    def wait_time(self) -> float:
        """Take a token; returns how long the caller must sleep first (0 if none)."""
        with self.lock:
            now = self.clock()
            self.tokens = min(self.capacity, self.tokens + (now - self.updated) * self.rate)
            self.updated = now
            self.tokens -= 1.0
            return 0.0 if self.tokens >= 0 else -self.tokens / self.rate

    def acquire(self) -> None:
        delay = self.wait_time()
        if delay > 0:
            time.sleep(delay)
