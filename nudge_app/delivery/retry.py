"""Retry policy as data: when a failed send is tried again, and when it stops for good.

Transient failures back off exponentially with jitter (base x 2^(n-1), +-jitter, capped),
never past the message's expiry, and become final after `max_attempts`. Permanent
failures never come here: they stop at once.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import datetime, timedelta


@dataclass(frozen=True)
class Retry:
    """Try again at `at`."""

    at: datetime


@dataclass(frozen=True)
class GiveUp:
    """Stop: the row ends with `status` (`failed` / `expired`) and `error_kind`."""

    status: str
    error_kind: str


@dataclass(frozen=True)
class RetryPolicy:
    max_attempts: int = 8
    base: float = 30.0
    cap: float = 3600.0
    jitter: float = 0.1

    def delay(self, attempts: int, rng: random.Random | None = None) -> float:
        """Seconds before retry number `attempts` (1-based): base x 2^(n-1), +-jitter, capped."""
        rng = rng or random
        delay = min(self.cap, self.base * 2 ** max(attempts - 1, 0))
        return delay * (1 + rng.uniform(-self.jitter, self.jitter))

    def after_failure(
        self,
        attempts: int,
        expires_at: datetime | None,
        now: datetime,
        rng: random.Random | None = None,
    ) -> Retry | GiveUp:
        """What follows a transient failure of the `attempts`-th send."""
        if attempts >= self.max_attempts:
            return GiveUp("failed", "transient")
        at = now + timedelta(seconds=self.delay(attempts, rng))
        if expires_at is not None and at >= expires_at:
            return GiveUp("expired", "expired")
        return Retry(at)
