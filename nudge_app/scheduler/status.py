"""What the console shows about delivery: whether the scheduler runs, and why a
campaign's messages wait (quiet hours, the daily cap, a pause) and until when."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo

from flask import current_app

from nudge_app.delivery import queries
from nudge_app.scheduler.heartbeat import SchedulerStatus, scheduler_status

HELD_BECAUSE = {
    "quiet_hours": "quiet hours",
    "daily_cap": "the daily limit of messages per person",
    "paused": "the campaign is paused",
}


def current() -> SchedulerStatus:
    """The scheduler's status with the app's staleness threshold."""
    return scheduler_status(stale_after=float(current_app.config["SCHEDULER_STALE_SECONDS"]))


@dataclass(frozen=True)
class Held:
    reason: str
    count: int
    until: datetime  # in the council's timezone

    def sentence(self) -> str:
        n = f"{self.count} message{'s' if self.count != 1 else ''}"
        return f"{n} held because of {HELD_BECAUSE[self.reason]}, until {self.until:%d %b %H:%M}."


def held_messages(campaign) -> list[Held]:
    zone = ZoneInfo(campaign.council.timezone or "Europe/London")
    return [Held(r, n, first.astimezone(zone)) for r, n, first in queries.held(campaign.id)]
