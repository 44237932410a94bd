"""The re-checks before a send, as one pure function: send, skip (why) or defer (until when).

`decide(message, person, policy, now)` looks only at plain values: the message (its
kind, stop condition and expiry), the person's state when the batch was read (opted
out, erased, baseline done, joined, answered the follow-up, sends in the last day) and
the rules in force (the campaign's status, the council's quiet hours, timezone and
daily cap). Dispatch gathers those values for a whole batch and acts on the answers;
the order of the checks below is the order of precedence.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import lru_cache
from typing import NamedTuple

from nudge_app.delivery.quiet import next_allowed

# Waits that have no natural end: look again after this long.
PAUSED_RECHECK = timedelta(minutes=5)
IN_FLIGHT_RECHECK = timedelta(minutes=10)


@dataclass(frozen=True)
class Send:
    """Send it now."""


SEND = Send()


@dataclass(frozen=True)
class Skip:
    """Never send it: the row ends with `status` and `reason` (its error_kind)."""

    status: str  # cancelled / expired
    reason: str  # opted_out / closed / mentor_stopped / expired / stopped


@dataclass(frozen=True)
class Defer:
    """Not yet: back to pending until `until`, because of `reason`."""

    until: datetime
    reason: str  # paused / quiet_hours / daily_cap


# The inputs are named tuples: values like frozen dataclasses, but dispatch builds two
# per message, and a tuple is built in a fraction of a frozen dataclass's time.
class Message(NamedTuple):
    kind: str  # invitation / nudge / reminder / survey / mentor / introduction
    condition: str = "always"  # the step's stop condition: always / not-joined / not-surveyed
    expires_at: datetime | None = None
    # A message about or for a mentor (`mentor`, `introduction`): False once the mentor
    # stopped, opted out or withdrew.
    mentor_active: bool = True


class PersonState(NamedTuple):
    opted_out: bool = False
    erased: bool = False
    baseline_done: bool = False
    joined: bool = False
    surveyed: bool = False
    # sent_at of this person's messages sent in the last day (None: one still in flight).
    sent_today: Sequence[datetime | None] = ()


class Policy(NamedTuple):
    campaign_status: str = "running"
    timezone: str = "Europe/London"
    quiet_start: str = "20:00"
    quiet_end: str = "08:00"
    daily_cap: int = 0  # messages per person per 24 hours; 0: no cap


Decision = Send | Skip | Defer


def decide(message: Message, person: PersonState, policy: Policy, now: datetime) -> Decision:
    """Whether to send `message` to `person` at `now` under `policy`."""
    if person.opted_out or person.erased:
        return Skip("cancelled", "opted_out")
    if policy.campaign_status == "closed":
        return Skip("cancelled", "closed")
    if not message.mentor_active:
        return Skip("cancelled", "mentor_stopped")
    if policy.campaign_status != "running":  # paused: wait for it to resume
        return Defer(now + PAUSED_RECHECK, "paused")
    if message.expires_at is not None and message.expires_at <= now:
        return Skip("expired", "expired")
    if stopped(message, person):
        return Skip("cancelled", "stopped")
    opening = _next_allowed(now, policy.timezone, policy.quiet_start, policy.quiet_end)
    if opening > now:
        return _defer_or_expire(message, opening, "quiet_hours")
    if policy.daily_cap > 0 and len(person.sent_today) >= policy.daily_cap:
        return _defer_or_expire(message, _cap_frees_at(person, policy, now), "daily_cap")
    return SEND


def stopped(message: Message, person: PersonState) -> bool:
    """The stop condition: the invitation (or a mentor's introduction) once the baseline is
    done, a reminder once the person joined, the survey once they answered it."""
    if message.kind in ("invitation", "introduction"):
        return person.baseline_done
    if message.condition == "not-joined" and person.joined:
        return True
    return (message.condition == "not-surveyed" or message.kind == "survey") and person.surveyed


def _cap_frees_at(person: PersonState, policy: Policy, now: datetime) -> datetime:
    """When the oldest send still counting toward the cap is a day old (later if some are
    still in flight, whose time is not known yet)."""
    known = sorted(t for t in person.sent_today if t is not None)
    cap = policy.daily_cap
    until = (
        known[len(known) - cap] + timedelta(days=1)
        if len(known) >= cap
        else now + IN_FLIGHT_RECHECK
    )
    return max(until, now + timedelta(seconds=1))


def _defer_or_expire(message: Message, until: datetime, reason: str) -> Decision:
    if message.expires_at is not None and until >= message.expires_at:
        return Skip("expired", "expired")
    return Defer(until, reason)


# A batch asks the same (now, council) question for each of its rows.
_next_allowed = lru_cache(maxsize=256)(next_allowed)
