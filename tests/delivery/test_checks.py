"""The pre-send re-checks as a pure function, without a database: a table of cases, then
every combination of the inputs against a test-side statement of the rules."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta

import pytest

from nudge_app.delivery.checks import (
    IN_FLIGHT_RECHECK,
    PAUSED_RECHECK,
    SEND,
    Defer,
    Message,
    PersonState,
    Policy,
    Skip,
    decide,
)
from nudge_app.delivery.retry import GiveUp, Retry, RetryPolicy

NOON = datetime(2026, 7, 1, 11, 0, tzinfo=UTC)  # 12:00 in London (BST)
NIGHT = datetime(2026, 7, 1, 21, 30, tzinfo=UTC)  # 22:30 in London
NEXT_MORNING = datetime(2026, 7, 2, 7, 0, tzinfo=UTC)  # 08:00 in London
H = timedelta(hours=1)

CASES = [
    # (case, message, person, policy, now, expected)
    ("plain send", Message("nudge"), PersonState(), Policy(), NOON, SEND),
    ("opted out", Message("nudge"), PersonState(opted_out=True), Policy(), NOON,
     Skip("cancelled", "opted_out")),
    ("erased", Message("reminder"), PersonState(erased=True), Policy(), NOON,
     Skip("cancelled", "opted_out")),
    ("opt-out beats a closed campaign", Message("nudge"), PersonState(opted_out=True),
     Policy("closed"), NOON, Skip("cancelled", "opted_out")),
    ("closed campaign", Message("nudge"), PersonState(), Policy("closed"), NOON,
     Skip("cancelled", "closed")),
    ("paused campaign waits", Message("nudge"), PersonState(), Policy("paused"), NOON,
     Defer(NOON + PAUSED_RECHECK, "paused")),
    ("paused beats expiry", Message("nudge", expires_at=NOON - H), PersonState(),
     Policy("paused"), NOON, Defer(NOON + PAUSED_RECHECK, "paused")),
    ("expired", Message("nudge", expires_at=NOON), PersonState(), Policy(), NOON,
     Skip("expired", "expired")),
    ("not yet expired", Message("nudge", expires_at=NOON + H), PersonState(), Policy(), NOON,
     SEND),
    ("invitation after the baseline", Message("invitation"), PersonState(baseline_done=True),
     Policy(), NOON, Skip("cancelled", "stopped")),
    ("invitation to someone who joined elsewhere still goes", Message("invitation"),
     PersonState(joined=True), Policy(), NOON, SEND),
    ("reminder not-joined, joined", Message("reminder", "not-joined"), PersonState(joined=True),
     Policy(), NOON, Skip("cancelled", "stopped")),
    ("reminder not-joined, not joined", Message("reminder", "not-joined"), PersonState(),
     Policy(), NOON, SEND),
    ("reminder always, joined", Message("reminder", "always"), PersonState(joined=True),
     Policy(), NOON, SEND),
    ("survey answered", Message("survey"), PersonState(surveyed=True), Policy(), NOON,
     Skip("cancelled", "stopped")),
    ("reminder not-surveyed, answered", Message("reminder", "not-surveyed"),
     PersonState(surveyed=True), Policy(), NOON, Skip("cancelled", "stopped")),
    ("stopped beats quiet hours", Message("survey"), PersonState(surveyed=True), Policy(),
     NIGHT, Skip("cancelled", "stopped")),
    ("quiet hours", Message("nudge"), PersonState(), Policy(), NIGHT,
     Defer(NEXT_MORNING, "quiet_hours")),
    ("quiet hours past expiry", Message("nudge", expires_at=NIGHT + H), PersonState(), Policy(),
     NIGHT, Skip("expired", "expired")),
    ("no quiet hours", Message("nudge"), PersonState(), Policy(quiet_start="00:00",
     quiet_end="00:00"), NIGHT, SEND),
    ("quiet hours in the council's own zone", Message("nudge"), PersonState(),
     Policy(timezone="America/New_York"), NIGHT, SEND),  # 17:30 in New York
    ("cap reached", Message("reminder"), PersonState(sent_today=(NOON - 3 * H, NOON - H)),
     Policy(daily_cap=2), NOON, Defer(NOON - 3 * H + timedelta(days=1), "daily_cap")),
    ("cap not reached", Message("reminder"), PersonState(sent_today=(NOON - H,)),
     Policy(daily_cap=2), NOON, SEND),
    ("no cap", Message("reminder"), PersonState(sent_today=(NOON - H,) * 5), Policy(), NOON,
     SEND),
    ("cap reached by a send in flight", Message("reminder"),
     PersonState(sent_today=(NOON - H, None)), Policy(daily_cap=2), NOON,
     Defer(NOON + IN_FLIGHT_RECHECK, "daily_cap")),
    ("cap frees after expiry", Message("reminder", expires_at=NOON + 2 * H),
     PersonState(sent_today=(NOON - H,)), Policy(daily_cap=1), NOON, Skip("expired", "expired")),
    ("quiet hours beat the cap", Message("reminder"), PersonState(sent_today=(NIGHT - H,)),
     Policy(daily_cap=1), NIGHT, Defer(NEXT_MORNING, "quiet_hours")),
]  # fmt: skip


@pytest.mark.parametrize(
    ("message", "person", "policy", "now", "expected"),
    [case[1:] for case in CASES],
    ids=[case[0] for case in CASES],
)
def test_decide_table(message, person, policy, now, expected):
    assert decide(message, person, policy, now) == expected


def _expected(message: Message, person: PersonState, policy: Policy, now: datetime):
    """The rules written out again, independently, for the exhaustive check."""
    if person.opted_out or person.erased:
        return Skip("cancelled", "opted_out")
    if policy.campaign_status == "closed":
        return Skip("cancelled", "closed")
    if policy.campaign_status == "paused":
        return Defer(now + PAUSED_RECHECK, "paused")
    if message.expires_at and message.expires_at <= now:
        return Skip("expired", "expired")
    stop = {
        "invitation": person.baseline_done,
        "survey": person.surveyed,
    }.get(message.kind, False)
    stop = stop or (message.kind != "invitation" and (
        (message.condition == "not-joined" and person.joined)
        or (message.condition == "not-surveyed" and person.surveyed)
    ))  # fmt: skip
    if stop:
        return Skip("cancelled", "stopped")
    wait = None
    if now == NIGHT:  # the only quiet moment among the clocks below (London, 20:00-08:00)
        wait = Defer(NEXT_MORNING, "quiet_hours")
    elif policy.daily_cap and len(person.sent_today) >= policy.daily_cap:
        wait = Defer(NOON - 3 * H + timedelta(days=1), "daily_cap")
    if wait is None:
        return SEND
    if message.expires_at and wait.until >= message.expires_at:
        return Skip("expired", "expired")
    return wait


def test_decide_every_combination():
    kinds = ["invitation", "nudge", "reminder", "survey"]
    conditions = ["always", "not-joined", "not-surveyed"]
    expiries = [None, "past", "soon", "late"]
    flags = list(itertools.product([False, True], repeat=5))
    statuses = ["running", "paused", "closed"]
    caps = [0, 2]
    sends = [(), (NOON - 3 * H, NOON - H)]
    clocks = [NOON, NIGHT]
    checked = 0
    for kind, condition, expiry, flag, status, cap, sent, now in itertools.product(
        kinds, conditions, expiries, flags, statuses, caps, sends, clocks
    ):
        expires_at = {
            None: None, "past": now - H, "soon": now + 2 * H, "late": now + timedelta(days=3),
        }[expiry]  # fmt: skip
        opted_out, erased, baseline, joined, surveyed = flag
        message = Message(kind, condition, expires_at)
        person = PersonState(opted_out, erased, baseline, joined, surveyed, sent)
        policy = Policy(status, daily_cap=cap)
        assert decide(message, person, policy, now) == _expected(message, person, policy, now), (
            message, person, policy, now,
        )  # fmt: skip
        checked += 1
    assert checked == 4 * 3 * 4 * 32 * 3 * 2 * 2 * 2


def test_decide_is_pure():
    person = PersonState(sent_today=[NOON - H])
    before = list(person.sent_today)
    for _ in range(3):
        assert decide(Message("reminder"), person, Policy(daily_cap=2), NOON) == SEND
    assert person.sent_today == before


class _Fixed:
    """A random source that always returns the same point of the jitter interval."""

    def __init__(self, u):
        self.u = u

    def uniform(self, a, b):
        return a + (b - a) * self.u


@pytest.mark.parametrize(
    ("attempts", "expires_in", "u", "expected"),
    [
        (1, None, 0.5, Retry(NOON + timedelta(seconds=30))),
        (2, None, 0.5, Retry(NOON + timedelta(seconds=60))),
        (3, None, 0.0, Retry(NOON + timedelta(seconds=120 * 0.9))),
        (3, None, 1.0, Retry(NOON + timedelta(seconds=120 * 1.1))),
        (7, None, 0.5, Retry(NOON + timedelta(seconds=1920))),
        (8, None, 0.5, GiveUp("failed", "transient")),
        (12, None, 0.5, GiveUp("failed", "transient")),
        (1, timedelta(seconds=31), 0.5, Retry(NOON + timedelta(seconds=30))),
        (1, timedelta(seconds=30), 0.5, GiveUp("expired", "expired")),
        (6, timedelta(hours=2), 0.5, Retry(NOON + timedelta(seconds=960))),
    ],
)
def test_retry_policy(attempts, expires_in, u, expected):
    policy = RetryPolicy(max_attempts=8, base=30, cap=3600, jitter=0.1)
    expires_at = NOON + expires_in if expires_in is not None else None
    assert policy.after_failure(attempts, expires_at, NOON, _Fixed(u)) == expected


def test_retry_delay_is_capped():
    policy = RetryPolicy(max_attempts=20, base=30, cap=3600, jitter=0.0)
    assert [policy.delay(n) for n in (1, 2, 7, 8, 9, 15)] == [30, 60, 1920, 3600, 3600, 3600]
