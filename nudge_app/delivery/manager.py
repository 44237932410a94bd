"""The outbox's job manager: claim due messages, re-check them, record outcomes.

1. **take** (the dispatch loop): one transaction claims the oldest due rows straight
   into `sending` through the channel of their medium (lease, fence + 1, an attempt
   counted), reads the facts to re-check for the whole batch (launched campaigns' texts
   kept per worker, `facts`), and puts each message to `checks.decide` (send / skip /
   defer); after its commit the messages to send are rendered. Skipped rows end
   `cancelled` / `expired` (or `failed` when they cannot be rendered), deferred ones go
   back to `pending` with a later due time and their reason; both get their attempt
   back. The commit comes before any provider is called. `claim` then `prepare` do the same in
   two steps (rows `leased` in between), for tests that stop a worker half way.
2. **complete**: after the send (outside any transaction), a fenced update records the
   provider's answer; a completion that matches no row (someone took the row over)
   changes nothing and is logged as a possible duplicate. Accepted sends of a batch are
   one `queries.mark_sent`; the rarer outcomes follow `RetryPolicy` row by row.
3. **reclaim**: a row left `sending` after its lease expired (the worker died between
   the provider's answer and our commit, or the answer was ambiguous) is looked up at
   the provider by reference first; only a message the provider does not know is resent.

Functions here flush; the caller's transaction boundary commits (`take`, `claim`,
`prepare` and `reclaim_sending` are themselves boundaries: each ends in one commit).
Every function takes `now`, so the scheduler, the tests and the demo can move the clock.
"""

from __future__ import annotations

import logging
import os
import socket
import uuid
from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from operator import itemgetter
from typing import NamedTuple

from nudge_app.db import utcnow
from nudge_app.delivery import facts, queries
from nudge_app.delivery.channels import Channel, ProviderReceipt, channel_for, channels_for
from nudge_app.delivery.checks import SEND, Defer, Message, PersonState, Policy, decide
from nudge_app.delivery.retry import GiveUp, RetryPolicy
from nudge_app.extensions import db
from nudge_app.services.outbox import RenderError, address_for, provider_reference

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class DispatchSettings:
    batch_size: int = 200
    lease_seconds: float = 120.0
    retry: RetryPolicy = field(default_factory=RetryPolicy)


def settings_for(app) -> DispatchSettings:
    """Dispatch settings from the app's config (config.py reads NUDGE_DISPATCH_*)."""
    c = app.config
    return DispatchSettings(
        batch_size=int(c["DISPATCH_BATCH_SIZE"]),
        lease_seconds=float(c["DISPATCH_LEASE_SECONDS"]),
        retry=RetryPolicy(
            max_attempts=int(c["DISPATCH_MAX_ATTEMPTS"]),
            base=float(c["DISPATCH_BACKOFF_BASE"]),
            cap=float(c["DISPATCH_BACKOFF_CAP"]),
        ),
    )


def new_worker_id() -> str:
    return f"{socket.gethostname()[:40]}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


class Claim(NamedTuple):
    id: int
    fence: int


COUNTERS = (
    "claimed sent retried failed held cancelled expired ambiguous stale resolved resent skipped"
).split()


@dataclass
class Stats:
    claimed: int = 0
    sent: int = 0
    retried: int = 0
    failed: int = 0
    held: int = 0
    cancelled: int = 0
    expired: int = 0
    ambiguous: int = 0
    stale: int = 0
    resolved: int = 0
    resent: int = 0
    skipped: int = 0
    # Why messages were held: reason -> (how many, the earliest time one may go).
    held_for: dict = field(default_factory=dict)

    def hold(self, reason: str, until: datetime) -> None:
        self.held += 1
        n, first = self.held_for.get(reason, (0, until))
        self.held_for[reason] = (n + 1, min(first, until))

    def add(self, other: Stats) -> Stats:
        for name in COUNTERS:
            setattr(self, name, getattr(self, name) + getattr(other, name))
        for reason, (n, until) in other.held_for.items():
            mine, first = self.held_for.get(reason, (0, until))
            self.held_for[reason] = (mine + n, min(first, until))
        return self


class Ready(NamedTuple):
    """A message marked `sending`, rendered, with the channel that will take it (named
    tuples, like `Claim`: dispatch builds one per message)."""

    claim: Claim
    rendered: object  # RenderedMessage
    channel: Channel
    expires_at: datetime | None
    attempts: int
    lease_until: datetime | None = None


def _app():
    from flask import current_app

    return current_app._get_current_object()


def _boundary(work):
    """Run `work()` as one transaction: commit, or roll back and re-raise."""
    try:
        result = work()
        db.session.commit()
    except BaseException:
        db.session.rollback()
        raise
    return result


# ----------------------------------------------------------------------------------- claim


def _claim(worker: str, now: datetime, limit: int, lease_seconds: float) -> list[Claim]:
    pairs = queries.claim(worker, now, limit, now + timedelta(seconds=lease_seconds))
    return sorted((Claim(i, f) for i, f in pairs), key=lambda c: c.id)


def claim(
    worker: str, now: datetime | None = None, limit: int = 100, lease_seconds: float = 120.0
) -> list[Claim]:
    """Lease up to `limit` due rows to `worker` and commit; returns (id, new fence) pairs."""
    now = now or utcnow()
    return _boundary(lambda: _claim(worker, now, limit, lease_seconds))


# --------------------------------------------------------------------------------- prepare


class _CouncilName:
    def __init__(self, name: str):
        self.name = name


class _CampaignView:
    """A campaign as rendering and the rules see it, from one row of `queries.facts`."""

    def __init__(self, row):
        self.id, self.name = row.id, row.name
        self.salt, self.launched_at = row.salt, row.launched_at  # what keeps its texts
        self.activity_name, self.activity_where = row.activity_name, row.activity_where
        self.activity_when = row.activity_when
        self.council = _CouncilName(row.council_name)
        self.policy = Policy(
            row.status, row.timezone or "Europe/London", row.quiet_start, row.quiet_end,
            row.daily_message_cap or 0,
        )  # fmt: skip


class _Outcomes:
    """The batch's rows that end (skip) or wait (defer) instead of being sent: written as
    one executemany per kind, each still fenced. `status` is what the claim made them."""

    def __init__(self, now: datetime, stats: Stats, status: str):
        self.now, self.stats, self.status = now, stats, status
        self.finished: list[dict] = []
        self.held: list[dict] = []

    def finish(self, claim_: Claim, status: str, error_kind: str, error=None) -> None:
        self.finished.append(
            {"m_id": claim_.id, "m_fence": claim_.fence, "m_status": status,
             "m_error_kind": error_kind, "m_last_error": error, "m_now": self.now}
        )  # fmt: skip
        setattr(self.stats, status, getattr(self.stats, status) + 1)

    def defer(self, claim_: Claim, decision: Defer) -> None:
        self.held.append(
            {"m_id": claim_.id, "m_fence": claim_.fence, "m_until": decision.until,
             "m_reason": decision.reason}
        )  # fmt: skip
        self.stats.hold(decision.reason, decision.until)

    def write(self) -> None:
        queries.finish_claimed(self.finished, self.status)
        queries.hold_claimed(self.held, self.status)


def _decide_and_render(
    rows: list,
    claims: dict[int, Claim],
    now: datetime,
    channels: Mapping[str, Channel],
    settings: DispatchSettings,
    stats: Stats,
    claimed_as: str,
    render_later: bool = False,
) -> list:
    """Put every claimed row to `checks.decide`, render the ones to send, and write the
    others' outcomes (flushes, no commit). Rows whose fence or status moved are stale.
    With `render_later`, the ones to send come back unrendered (`_ToRender`) for
    `_render` to render after the commit.

    Per batch: the people, their sends of the last day, the campaigns' rules (and mentors,
    for the rare messages about one) are read; the launched campaigns' texts come from
    what the worker kept (`facts`). Per message only tuples are built.
    """
    outcomes = _Outcomes(now, stats, claimed_as)
    person_ids = list({r.participant_id for r in rows})
    people, recent, campaign_rows = queries.batch_facts(
        person_ids, {r.campaign_id for r in rows}, now, set(claims)
    )
    campaigns = {i: _CampaignView(c) for i, c in campaign_rows.items()}
    arms, steps = facts.texts(campaigns, {r.arm_id for r in rows} - {None},
                              {r.step_id for r in rows} - {None})  # fmt: skip
    mentors = queries.facts("mentors", {r.mentor_id for r in rows})
    lease_until = now + timedelta(seconds=settings.lease_seconds)
    render = None if render_later else facts.renderer(_app().config).render
    ready: list = []
    for row in sorted(rows, key=_by_id):
        (mid, fence, status, campaign_id, participant_id, arm_id, step_id, kind, channel,
         expires_at, attempts, mentor_id) = row  # fmt: skip
        claim_ = claims[mid]
        if fence != claim_.fence or status != claimed_as:
            stats.stale += 1
            continue
        person = people.get(participant_id)
        campaign = campaigns.get(campaign_id)
        if person is None or campaign is None:  # deleted since (the outbox has no foreign keys)
            outcomes.finish(claim_, "cancelled", "opted_out")
            continue
        step = steps.get(step_id) if step_id is not None else None
        sent_today = recent.get(participant_id)
        if sent_today is None:
            sent_today = recent[participant_id] = []
        state = PersonState(
            person.opted_out_at is not None, person.erased_at is not None,
            person.baseline_completed_at is not None, person.joined, person.surveyed, sent_today,
        )  # fmt: skip
        if mentor_id is None:
            mentor, active = None, True
        else:
            mentor = mentors.get(mentor_id)
            active = (
                mentor is not None
                and mentor.stopped_at is None
                and mentor.opted_out_at is None
                and mentor.erased_at is None
            )
        decision = decide(
            Message(kind, step.condition if step is not None else "always", expires_at, active),
            state,
            campaign.policy,
            now,
        )
        if decision is not SEND:
            if isinstance(decision, Defer):
                outcomes.defer(claim_, decision)
            else:
                outcomes.finish(claim_, decision.status, decision.reason)
            continue
        arm = arms.get(arm_id) if arm_id is not None else None
        if (
            render_later
        ):  # what rendering refuses first, seen here so it never counts toward the cap
            try:
                address_for(person, channel)
            except RenderError as exc:
                outcomes.finish(claim_, "failed", exc.kind, str(exc))
                continue
        sent_today.append(now)  # counts toward the cap for the rest of this batch
        if render_later:
            ready.append((row, person, campaign, arm, step, mentor, claim_, channels[channel],
                          expires_at, attempts, lease_until))  # fmt: skip
            continue
        try:
            rendered = render(row, person, campaign, arm, step, mentor=mentor)
        except RenderError as exc:
            sent_today.pop()
            outcomes.finish(claim_, "failed", exc.kind, str(exc))
            continue
        ready.append(
            Ready(
                claim_, rendered, channels[channel], expires_at,
                attempts if claimed_as == "sending" else attempts + 1, lease_until,
            )
        )  # fmt: skip
    outcomes.write()
    return ready


_by_id = itemgetter(0)


def _prepare(
    claims: list[Claim],
    now: datetime,
    channels: Mapping[str, Channel],
    settings: DispatchSettings,
    stats: Stats,
) -> list[Ready]:
    """Decide, render and mark `sending` every leased row (flushes, no commit)."""
    by_id = {c.id: c for c in claims}
    rows = queries.claimed_rows(list(by_id))
    ready = _decide_and_render(rows, by_id, now, channels, settings, stats, "leased")
    by_provider: dict[str, list[tuple[int, int]]] = defaultdict(list)
    for item in ready:
        by_provider[item.channel.name].append((item.claim.id, item.claim.fence))
    marked: set[int] = set()
    lease_until = now + timedelta(seconds=settings.lease_seconds)
    for name, pairs in by_provider.items():
        marked |= queries.mark_sending(pairs, name, lease_until)
    stats.stale += len(ready) - len(marked)
    return [item for item in ready if item.claim.id in marked]


def prepare(
    claims: list[Claim],
    now: datetime | None = None,
    channels: Mapping[str, Channel] | None = None,
    settings: DispatchSettings | None = None,
    stats: Stats | None = None,
) -> list[Ready]:
    """Re-check every leased row, render it and mark it `sending`; commit."""
    if not claims:
        return []
    now = now or utcnow()
    settings = settings or DispatchSettings()
    stats = stats if stats is not None else Stats()
    channels = channels if channels is not None else channels_for(_app())
    return _boundary(lambda: _prepare(claims, now, channels, settings, stats))


def take(
    worker: str,
    now: datetime,
    channels: Mapping[str, Channel],
    settings: DispatchSettings,
    stats: Stats,
) -> list[Ready]:
    """Claim one batch straight into `sending` and re-check it in one transaction, then
    render it.

    The claimed rows are locked until the commit, so no other worker sees them; after it
    they are `sending` through their channel (or ended, or pending again with their
    attempt taken back), exactly as after a claim and a prepare, with one statement and
    one commit fewer per batch. Rendering needs no lock, so it follows the commit (the
    other workers skip our locked rows for a shorter time); the rare message that cannot
    be rendered (no address, no text) is then ended `failed` by a fenced update, its
    attempt taken back, as it would have been in the claiming transaction. A worker that
    dies in between leaves `sending` rows that reclaim resolves, as after any crash.
    """

    def work():
        rows = queries.take(
            worker, now, settings.batch_size, now + timedelta(seconds=settings.lease_seconds),
            {medium: channel.name for medium, channel in channels.items()},
        )  # fmt: skip
        stats.claimed += len(rows)
        claims = {r.id: Claim(r.id, r.fence) for r in rows}
        return _decide_and_render(
            rows, claims, now, channels, settings, stats, "sending", render_later=True
        )

    return _render(_boundary(work), now, stats)


def _render(chosen: list, now: datetime, stats: Stats) -> list[Ready]:
    """Render the messages `take` chose (outside any transaction); end the ones that
    cannot be rendered in one transaction of their own."""
    render = facts.renderer(_app().config).render
    failed = _Outcomes(now, stats, "sending")
    ready: list[Ready] = []
    for (
        row,
        person,
        campaign,
        arm,
        step,
        mentor,
        claim_,
        channel,
        expires_at,
        attempts,
        lease,
    ) in chosen:
        try:
            rendered = render(row, person, campaign, arm, step, mentor=mentor)
        except RenderError as exc:
            failed.finish(claim_, "failed", exc.kind, str(exc))
            continue
        ready.append(Ready(claim_, rendered, channel, expires_at, attempts, lease))
    if failed.finished:
        _boundary(failed.write)
    return ready


# -------------------------------------------------------------------------------- complete


def log_stale(claim_: Claim, outcome: str) -> None:
    log.warning(
        "possible duplicate: message %s was taken over (fence %s is stale); "
        "its %s send result is ignored",
        claim_.id,
        claim_.fence,
        outcome,
    )


def _after_failure(attempts: int, expires_at, error, now, settings) -> tuple[dict, str]:
    """The values and counter for a transient failure, as the retry policy says."""
    step = settings.retry.after_failure(attempts, expires_at, now)
    ended = {"completed_at": now, "lease_owner": None, "lease_until": None, "last_error": error}
    if isinstance(step, GiveUp):
        return {"status": step.status, "error_kind": step.error_kind, **ended}, (
            "failed" if step.status == "failed" else "expired"
        )
    return {
        "status": "pending", "due_at": step.at, "error_kind": "transient", "last_error": error,
        "lease_owner": None, "lease_until": None,
    }, "retried"  # fmt: skip


def complete(
    ready: Ready,
    result: ProviderReceipt,
    now: datetime | None = None,
    settings: DispatchSettings | None = None,
    stats: Stats | None = None,
) -> bool:
    """Record a send's outcome if the row is still ours (same fence); flushes, no commit.

    Returns False (and changes nothing) when the fence moved: another worker took the row
    over, so this send may be a duplicate of theirs.
    """
    now = now or utcnow()
    settings = settings or DispatchSettings()
    stats = stats if stats is not None else Stats()
    claim_ = ready.claim
    if result.outcome == "accepted":
        done = claim_.id in queries.mark_sent([(claim_.id, claim_.fence, result.provider_id)], now)
        counter = "sent"
    else:
        if result.outcome == "permanent":
            values = {
                "status": "failed", "error_kind": "permanent", "last_error": result.error,
                "completed_at": now, "lease_owner": None, "lease_until": None,
            }  # fmt: skip
            counter = "failed"
        elif result.outcome == "retryable":
            values, counter = _after_failure(
                ready.attempts, ready.expires_at, result.error, now, settings
            )
        else:  # ambiguous: leave it `sending` with an expired lease; reclaim asks the provider
            values = {"lease_until": now, "last_error": result.error, "error_kind": "transient"}
            counter = "ambiguous"
        done = queries.update_sending(claim_.id, claim_.fence, **values)
    if done:
        setattr(stats, counter, getattr(stats, counter) + 1)
    else:
        stats.stale += 1
        log_stale(claim_, result.outcome)
    return done


def complete_batch(
    results: list[tuple[Ready, ProviderReceipt]],
    now: datetime,
    settings: DispatchSettings,
    stats: Stats,
) -> None:
    """Record a batch's outcomes: the accepted ones in one statement; flushes, no commit."""
    accepted = [(i, r) for i, r in results if r.outcome == "accepted"]
    done = queries.mark_sent([(i.claim.id, i.claim.fence, r.provider_id) for i, r in accepted], now)
    stats.sent += len(done)
    for item, result in accepted:
        if item.claim.id not in done:
            stats.stale += 1
            log_stale(item.claim, result.outcome)
    for item, result in results:
        if result.outcome != "accepted":
            complete(item, result, now, settings, stats)


# ---------------------------------------------------------------------- expired `sending`


def reclaim_sending(
    worker: str | None = None,
    now: datetime | None = None,
    settings: DispatchSettings | None = None,
    limit: int = 500,
    channels_by_provider: Mapping[str, Channel] | None = None,
) -> Stats:
    """Resolve rows left `sending` past their lease: ask the provider before any resend.

    Found at the provider: `sent`. Not found: back to `pending` (due now, or later by the
    retry policy if the last send failed ambiguously). Provider cannot be asked (SMTP):
    resent, logged as a possible duplicate.
    """
    worker = worker or new_worker_id()
    now = now or utcnow()
    settings = settings or settings_for(_app())
    stats = Stats()
    lease_until = now + timedelta(seconds=settings.lease_seconds)
    taken = _boundary(lambda: queries.take_stale_sending(worker, now, lease_until, limit))
    if not taken:
        return stats
    app = _app()
    answers = []
    for row in taken:
        ref = row.provider_reference or provider_reference(row.id)
        try:
            channel = (channels_by_provider or {}).get(row.provider) or channel_for(
                app, row.provider or "file", row.channel
            )
            answer = channel.lookup(ref)
        except Exception:
            log.exception("lookup of message %s at %s failed", row.id, row.provider)
            answer = None
        answers.append((row, answer))

    def record():
        for row, answer in answers:
            if answer is not None and answer.found:
                done = row.id in queries.mark_sent([(row.id, row.fence, answer.provider_id)], now)
                counter = "resolved"
            else:
                if answer is None:
                    log.warning(
                        "resending message %s: provider %s cannot be asked (possible duplicate)",
                        row.id,
                        row.provider,
                    )
                if row.error_kind == "transient":  # an ambiguous failure: back off
                    values, counter = _after_failure(
                        row.attempts, row.expires_at, None, now, settings
                    )
                elif row.expires_at is not None and row.expires_at <= now:
                    values = {
                        "status": "expired", "error_kind": "expired", "completed_at": now,
                        "lease_owner": None, "lease_until": None,
                    }  # fmt: skip
                    counter = "expired"
                else:
                    values = {"status": "pending", "due_at": now, "lease_owner": None,
                              "lease_until": None}  # fmt: skip
                    counter = "resent"
                done = queries.update_sending(row.id, row.fence, **values)
            if done:
                setattr(stats, counter, getattr(stats, counter) + 1)
            else:
                stats.stale += 1

    _boundary(record)
    return stats
