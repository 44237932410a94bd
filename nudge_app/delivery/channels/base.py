"""The channel interface: `send` a rendered message, `lookup` one by our reference.

`send` never raises for a provider's answer; it returns a SendResult whose outcome is:
- accepted: the provider took the message (provider_id names it there);
- retryable: it did not, and trying again later may work (timeout before sending, 5xx
  without a message created, rate limit);
- permanent: it never will (invalid address, refused recipient);
- ambiguous: we cannot tell whether the provider took it (a read timeout after the
  request was sent); the dispatcher asks `lookup` before any resend.
`lookup` answers found / not found, or None when the provider cannot be asked.
"""

from __future__ import annotations

import re
import threading
import time
from dataclasses import dataclass
from typing import Literal, Protocol

from nudge_app.services.outbox import RenderedMessage

Outcome = Literal["accepted", "retryable", "permanent", "ambiguous"]


@dataclass(frozen=True)
class SendResult:
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


def malformed_address(message: RenderedMessage) -> SendResult | None:
    """A permanent failure for an address that can never be sent to, so it is not
    retried; None when the address is well formed enough to try."""
    to = message.to or ""
    bad = _CONTROL.search(to) or not to.strip()
    if message.channel == "email":
        bad = bad or to.count("@") != 1 or " " in to.strip()
    if bad:
        return SendResult("permanent", error=f"malformed {message.channel} address")
    return None


class Channel(Protocol):
    """What dispatch needs from a provider."""

    name: str

    def send(self, message: RenderedMessage) -> SendResult: ...

    def lookup(self, reference: str) -> LookupResult | None: ...


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
