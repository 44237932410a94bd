"""Quiet hours: the next moment a message may be sent, in the council's own timezone.

The window is local wall-clock time (default 20:00 to 08:00), so it follows the
daylight-saving changes: in London 08:00 is 07:00 UTC in summer and 08:00 UTC in winter.
"""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo


def _hhmm(text: str) -> time:
    hours, _, minutes = (text or "").partition(":")
    return time(int(hours), int(minutes or 0))


def is_quiet(local: time, start: time, end: time) -> bool:
    if start == end:
        return False
    if start < end:
        return start <= local < end
    return local >= start or local < end  # the window spans midnight


def next_allowed(now: datetime, timezone: str, quiet_start: str, quiet_end: str) -> datetime:
    """`now` if it is outside the quiet window, else the (UTC) moment the window opens."""
    zone = ZoneInfo(timezone or "Europe/London")
    start, end = _hhmm(quiet_start), _hhmm(quiet_end)
    local = now.astimezone(zone)
    if not is_quiet(local.time(), start, end):
        return now
    day = local.date()
    if local.time() >= end and not (start < end and local.time() < start):
        day = day + timedelta(days=1)
    opening = datetime.combine(day, end, tzinfo=zone)
    # A wall-clock time skipped by a DST change resolves to the later offset; normalize.
    opening = opening.astimezone(UTC)
    return max(opening, now)
