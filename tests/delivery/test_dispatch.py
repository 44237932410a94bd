"""Dispatch: claims, re-checks at send time, fencing, retries, quiet hours, caps, receipts."""

from __future__ import annotations

import json
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select, update

from nudge_app.delivery import dispatch
from nudge_app.delivery.dispatch import DispatchSettings
from nudge_app.delivery.retry import RetryPolicy
from nudge_app.extensions import db
from nudge_app.links import participant_links
from nudge_app.models import Event, OutboundMessage, Participant
from nudge_app.scheduler import run_once
from nudge_app.services import outbox
from nudge_app.templating import render


def _messages(**where):
    db.session.commit()  # end this session's read snapshot: workers committed since
    q = select(OutboundMessage).order_by(OutboundMessage.id)
    for k, v in where.items():
        q = q.where(getattr(OutboundMessage, k) == v)
    return list(db.session.scalars(q))


def _lines(app) -> list[dict]:
    text = Path(app.config["FILE_CHANNEL_PATH"]).read_text(encoding="utf-8")
    return [json.loads(x) for x in text.splitlines()]


def _launch(campaign, make_participants, n=3, **kw):
    people = make_participants(campaign, n, **kw)
    outbox.on_launch(campaign)
    db.session.commit()
    return people


def test_run_once_sends_first_messages_to_the_file_channel(
    app, running_list_campaign, make_participants, daytime
):
    people = _launch(running_list_campaign, make_participants, 4)
    result = run_once(app, now=daytime)
    assert result.dispatched.sent == 4
    lines = _lines(app)
    assert len(lines) == 4
    nudges = {m.participant_id: m for m in _messages(kind="nudge")}
    arms = {a.id: a for a in running_list_campaign.arms}
    for p, line in zip(sorted(people, key=lambda p: p.id), lines, strict=True):
        m = nudges[p.id]
        assert m.status == "sent" and m.attempts == 1 and m.sent_at == daytime
        assert line["reference"] == f"nudge-{m.id}" and line["to"] == p.email
        assert line["subject"]
        arm = arms[m.arm_id]
        context = {
            "first_name": p.first_name,
            "council": running_list_campaign.council.name,
            "activity": running_list_campaign.activity_name,
            "activity_where": running_list_campaign.activity_where,
            "activity_when": running_list_campaign.activity_when,
            "framing": arm.framing,
            **participant_links(p),
        }
        assert line["text"] == render(arm.email_body_template, context)
        assert line["subject"] == render(arm.email_subject_template, context)
    # A second round sends nothing again.
    assert run_once(app, now=daytime).dispatched.sent == 0


def test_concurrent_claims_return_disjoint_rows(app, running_list_campaign, make_participants):
    _launch(running_list_campaign, make_participants, 40)
    now = datetime.now(UTC) + timedelta(minutes=1)
    results: dict[int, list] = {}
    errors = []

    def worker(k):
        try:
            with app.app_context():
                got = []
                while True:
                    claims = dispatch.claim(f"w{k}", now, limit=3, lease_seconds=60)
                    if not claims:
                        break
                    got += [c.id for c in claims]
                results[k] = got
                db.session.remove()
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    claimed = [i for got in results.values() for i in got]
    nudges = {m.id for m in _messages(kind="nudge")}
    assert sorted(claimed) == sorted(nudges)  # every due row once, none twice
    assert len(set(claimed)) == len(claimed)
    owners = {m.id: m.lease_owner for m in _messages(kind="nudge")}
    for k, got in results.items():
        assert all(owners[i] == f"w{k}" for i in got)


def test_stale_workers_completion_changes_nothing(
    app, running_list_campaign, make_participants, daytime, scripted, caplog
):
    _launch(running_list_campaign, make_participants, 1)
    channel = scripted()
    channels = {"email": channel, "sms": channel}
    settings = DispatchSettings(lease_seconds=60)
    # Worker A claims and prepares (row now `sending`) but stalls before sending.
    a_claims = dispatch.claim("A", daytime, 10, 60)
    a_ready = dispatch.prepare(a_claims, daytime, channels, settings)
    assert len(a_ready) == 1
    # Its lease expires; reclaim asks the provider (unknown: A never sent) and requeues;
    # worker B sends it.
    later = daytime + timedelta(minutes=5)
    stats = dispatch.reclaim_sending(
        "B", later, settings, channels_by_provider={"scripted": channel}
    )
    assert stats.resent == 1
    b = dispatch.dispatch_batch("B", later, channels, settings)
    assert b.sent == 1
    (row,) = _messages(kind="nudge")
    before = (row.status, row.fence, row.sent_at, row.provider_message_id, row.attempts)
    # A wakes up, sends (a duplicate at the provider) and tries to complete: refused.
    result = a_ready[0].channel.send(a_ready[0].rendered)
    with caplog.at_level("WARNING"):
        assert dispatch.complete(a_ready[0], result, later + timedelta(seconds=1)) is False
    db.session.commit()
    (row,) = _messages(kind="nudge")
    assert (row.status, row.fence, row.sent_at, row.provider_message_id, row.attempts) == before
    assert "possible duplicate" in caplog.text


def test_opt_out_committed_after_enqueueing_cancels_the_send(
    app, running_list_campaign, make_participants, daytime, scripted
):
    p, q, r = _launch(running_list_campaign, make_participants, 3)
    channel = scripted()
    channels = {"email": channel, "sms": channel}
    # p opts out after enqueueing (the participant pages also call cancel_pending; here
    # only the flag is set, to show dispatch re-checks at send time).
    db.session.get(Participant, p.id).opted_out_at = daytime - timedelta(hours=1)
    db.session.commit()
    # q opts out while a worker holds the claim: cancel_pending bumps the fence.
    claims = dispatch.claim("W", daytime, 10, 60)
    assert len(claims) == 3
    assert outbox.cancel_pending(q.id) == 3  # the claimed nudge and two follow-ups
    db.session.commit()
    ready = dispatch.prepare(claims, daytime, channels, DispatchSettings())
    dispatch.send_all(ready, daytime)
    assert [m.to for m in channel.sent] == [r.email]
    by_person = {m.participant_id: m for m in _messages(kind="nudge")}
    assert (by_person[p.id].status, by_person[p.id].error_kind) == ("cancelled", "opted_out")
    assert (by_person[q.id].status, by_person[q.id].error_kind) == ("cancelled", "opted_out")
    assert by_person[r.id].status == "sent"
    # The follow-ups of the person who opted out are never sent either.
    run_once(app, now=daytime + timedelta(days=40))
    assert {m.status for m in _messages(participant_id=p.id)} == {"cancelled"}


def test_erased_participant_gets_nothing(app, running_list_campaign, make_participants, daytime):
    (p,) = _launch(running_list_campaign, make_participants, 1)
    person = db.session.get(Participant, p.id)
    person.erased_at, person.email, person.first_name = daytime, None, None
    db.session.commit()
    run_once(app, now=daytime)
    assert {m.status for m in _messages(participant_id=p.id)} <= {"cancelled", "pending"}
    assert not _messages(status="sent")


def test_transient_errors_back_off_then_fail_after_max_attempts(
    app, running_list_campaign, make_participants, daytime, scripted
):
    _launch(running_list_campaign, make_participants, 1)
    channel = scripted(outcomes=["retryable"] * 10)
    channels = {"email": channel, "sms": channel}
    settings = DispatchSettings(retry=RetryPolicy(max_attempts=4, base=30, cap=3600))
    now = daytime
    dues = []
    for _ in range(4):
        stats = dispatch.dispatch_due("W", now, channels, settings)
        assert stats.sent == 0
        (row,) = _messages(kind="nudge")
        if row.status == "failed":
            break
        assert row.status == "pending" and row.error_kind == "transient"
        dues.append((row.due_at - now).total_seconds())
        now = row.due_at
    (row,) = _messages(kind="nudge")
    assert (row.status, row.error_kind, row.attempts) == ("failed", "transient", 4)
    # 30 s x 2^(n-1) with +-10% jitter
    for n, delay in enumerate(dues, start=1):
        assert 0.9 * 30 * 2 ** (n - 1) <= delay <= 1.1 * 30 * 2 ** (n - 1)
    assert len(channel.sent) == 4


def test_retry_never_goes_past_expiry(
    app, running_list_campaign, make_participants, daytime, scripted
):
    _launch(running_list_campaign, make_participants, 1)
    (row,) = _messages(kind="nudge")
    db.session.execute(
        update(OutboundMessage)
        .where(OutboundMessage.id == row.id)
        .values(expires_at=daytime + timedelta(seconds=20))
    )
    db.session.commit()
    channel = scripted(outcomes=["retryable"])
    dispatch.dispatch_due("W", daytime, {"email": channel, "sms": channel}, DispatchSettings())
    (row,) = _messages(kind="nudge")
    assert (row.status, row.error_kind) == ("expired", "expired")


def test_permanent_error_stops_at_once(
    app, running_list_campaign, make_participants, daytime, scripted
):
    _launch(running_list_campaign, make_participants, 1)
    channel = scripted(outcomes=["permanent"])
    dispatch.dispatch_due("W", daytime, {"email": channel, "sms": channel}, DispatchSettings())
    (row,) = _messages(kind="nudge")
    assert (row.status, row.error_kind, row.attempts) == ("failed", "permanent", 1)
    assert "permanent" in row.last_error
    counts = outbox.counts_by_status(running_list_campaign.id)
    assert counts[("failed", "permanent")] == 1


def test_ambiguous_send_is_looked_up_before_any_resend(
    app, running_list_campaign, make_participants, daytime, scripted
):
    _launch(running_list_campaign, make_participants, 2)
    channel = scripted(outcomes=["ambiguous-accepted", "ambiguous"])
    channels = {"email": channel, "sms": channel}
    settings = DispatchSettings()
    stats = dispatch.dispatch_due("W", daytime, channels, settings)
    assert stats.ambiguous == 2
    later = daytime + timedelta(seconds=1)
    r = dispatch.reclaim_sending("W", later, settings, channels_by_provider={"scripted": channel})
    assert (r.resolved, r.retried) == (1, 1)
    first, second = _messages(kind="nudge")
    assert first.status == "sent" and first.provider_message_id == f"p-nudge-{first.id}"
    assert second.status == "pending" and second.due_at > later
    dispatch.dispatch_due("W", second.due_at, channels, settings)
    first, second = _messages(kind="nudge")
    assert second.status == "sent"
    refs = [m.reference for m in channel.sent]
    assert refs.count(f"nudge-{first.id}") == 1  # never resent: the provider had it
    assert refs.count(f"nudge-{second.id}") == 2


def test_interrupted_send_found_in_the_file_log_is_not_resent(
    app, running_list_campaign, make_participants, daytime
):
    """A worker killed between the provider's acceptance and our commit."""
    from nudge_app.delivery.channels import channels_for

    _launch(running_list_campaign, make_participants, 2)
    channels = channels_for(app)
    claims = dispatch.claim("dead", daytime, 10, 60)
    ready = dispatch.prepare(claims, daytime, channels, DispatchSettings(lease_seconds=60))
    channels["email"].send(ready[0].rendered)  # accepted ... then the worker "dies"
    later = daytime + timedelta(minutes=2)
    run_once(app, now=later)
    lines = [x["reference"] for x in _lines(app)]
    assert sorted(lines) == sorted(f"nudge-{m.id}" for m in _messages(kind="nudge"))
    assert {m.status for m in _messages(kind="nudge")} == {"sent"}


def test_stop_condition_cancels_reminder_for_people_who_joined(
    app, running_list_campaign, make_participants, daytime
):
    joined, waiting = _launch(running_list_campaign, make_participants, 2)
    db.session.add(
        Event(
            campaign_id=running_list_campaign.id, participant_id=joined.id, kind="join",
            idempotency_key=f"join:{joined.id}",
        )
    )  # fmt: skip
    db.session.commit()
    step = next(s for s in running_list_campaign.follow_up_steps if s.key == "reminder")
    when = daytime + timedelta(hours=step.offset_hours + 1)
    run_once(app, now=when)
    reminders = {m.participant_id: m for m in _messages(kind="reminder")}
    assert (reminders[joined.id].status, reminders[joined.id].error_kind) == (
        "cancelled",
        "stopped",
    )
    assert reminders[waiting.id].status == "sent"


def test_daily_cap_holds_extra_messages(app, running_list_campaign, make_participants, daytime):
    (p,) = _launch(running_list_campaign, make_participants, 1)
    # Make every follow-up due now too: three messages for one person, cap 2 a day.
    db.session.execute(
        update(OutboundMessage)
        .where(OutboundMessage.participant_id == p.id)
        .values(due_at=daytime - timedelta(minutes=1), expires_at=None)
    )
    db.session.commit()
    run_once(app, now=daytime)
    rows = _messages(participant_id=p.id)
    assert sum(m.status == "sent" for m in rows) == 2
    (held,) = [m for m in rows if m.status == "pending"]
    assert held.due_at == daytime + timedelta(days=1)
    run_once(app, now=daytime + timedelta(days=1))
    assert {m.status for m in _messages(participant_id=p.id)} == {"sent"}


def test_paused_campaign_holds_and_closed_campaign_cancels(
    app, running_list_campaign, make_participants, daytime
):
    from nudge_app.models import Campaign

    _launch(running_list_campaign, make_participants, 2)
    c = db.session.get(Campaign, running_list_campaign.id)
    c.status = "paused"
    db.session.commit()
    run_once(app, now=daytime)
    assert {m.status for m in _messages()} == {"pending"}
    c = db.session.get(Campaign, running_list_campaign.id)
    c.end_date = (daytime - timedelta(days=2)).date().isoformat()
    db.session.commit()
    result = run_once(app, now=daytime)
    assert result.closed == 1
    assert db.session.get(Campaign, c.id).status == "closed"
    assert {(m.status, m.error_kind) for m in _messages()} == {("cancelled", "closed")}


@pytest.mark.parametrize(
    ("local_due", "expected_local_send"),
    [
        # evening before the spring change (BST starts 29 March 2026, 01:00 UTC)
        ("2026-03-28 21:30", "2026-03-29 08:00"),
        # evening before the autumn change (GMT again 25 October 2026, 01:00 UTC)
        ("2026-10-24 21:30", "2026-10-25 08:00"),
        ("2026-10-25 07:59", "2026-10-25 08:00"),
        ("2026-07-01 12:00", "2026-07-01 12:00"),
        ("2026-07-01 19:59", "2026-07-01 19:59"),
        ("2026-07-01 20:00", "2026-07-02 08:00"),
    ],
)
def test_quiet_hours_follow_london_daylight_saving(
    app, running_list_campaign, make_participants, local_due, expected_local_send
):
    from zoneinfo import ZoneInfo

    london = ZoneInfo("Europe/London")
    due = datetime.fromisoformat(local_due).replace(tzinfo=london).astimezone(UTC)
    expected = datetime.fromisoformat(expected_local_send).replace(tzinfo=london).astimezone(UTC)
    (p,) = _launch(running_list_campaign, make_participants, 1)
    db.session.execute(
        update(OutboundMessage).where(OutboundMessage.kind == "nudge").values(due_at=due)
    )
    db.session.commit()
    run_once(app, now=due)
    (row,) = _messages(kind="nudge")
    if expected == due:
        assert row.status == "sent" and row.sent_at == due
        return
    assert row.status == "pending" and row.due_at == expected
    run_once(app, now=expected - timedelta(minutes=1))
    assert _messages(kind="nudge")[0].status == "pending"
    run_once(app, now=expected)
    (row,) = _messages(kind="nudge")
    assert row.status == "sent" and row.sent_at == expected


def test_claim_takes_the_oldest_due_rows_pending_or_with_an_expired_lease(
    app, running_list_campaign, make_participants, daytime
):
    _launch(running_list_campaign, make_participants, 6)
    db.session.execute(update(OutboundMessage).values(due_at=daytime + timedelta(days=60)))
    ids = [m.id for m in _messages(kind="nudge")]
    minutes = timedelta(minutes=1)
    layout = [  # (status, due, lease until) per nudge, in id order
        ("pending", -5, None),
        ("leased", -10, -1),  # its worker died: the lease ran out a minute ago
        ("leased", -20, +1),  # still leased to a live worker
        ("pending", +5, None),  # not due yet
        ("pending", -1, None),
        ("pending", -30, None),
    ]
    for i, (status, due, until) in zip(ids, layout, strict=True):
        db.session.execute(
            update(OutboundMessage)
            .where(OutboundMessage.id == i)
            .values(
                status=status,
                due_at=daytime + due * minutes,
                lease_owner="dead" if status == "leased" else None,
                lease_until=daytime + until * minutes if until is not None else None,
                fence=3 if status == "leased" else 0,
            )
        )
    db.session.commit()
    first = dispatch.claim("W", daytime, limit=3, lease_seconds=60)
    # Oldest due first, whatever the kind: due -30, -10 (expired lease), -5.
    assert first == sorted(
        [dispatch.Claim(ids[5], 1), dispatch.Claim(ids[1], 4), dispatch.Claim(ids[0], 1)],
        key=lambda c: c.id,
    )
    assert dispatch.claim("W", daytime, limit=3, lease_seconds=60) == [dispatch.Claim(ids[4], 1)]
    assert dispatch.claim("W", daytime, limit=3, lease_seconds=60) == []
    rows = {m.id: m for m in _messages(kind="nudge")}
    assert rows[ids[2]].lease_owner == "dead" and rows[ids[2]].fence == 3
    assert rows[ids[3]].status == "pending"
    assert {rows[i].lease_owner for i in (ids[0], ids[1], ids[4], ids[5])} == {"W"}
    assert rows[ids[1]].lease_until == daytime + timedelta(seconds=60)


def test_prepare_marks_only_rows_still_ours_sending(
    app, running_list_campaign, make_participants, daytime, scripted
):
    people = _launch(running_list_campaign, make_participants, 3)
    channel = scripted()
    channels = {"email": channel, "sms": channel}
    settings = DispatchSettings(lease_seconds=60)
    claims = dispatch.claim("A", daytime, 10, 60)
    assert len(claims) == 3
    # After the claim: one person opts out (their row is cancelled, fence moved) and
    # another row is taken over by a worker that found A's lease expired (fence moved).
    nudges = {m.participant_id: m for m in _messages(kind="nudge")}
    outbox.cancel_pending(people[0].id)
    taken = nudges[people[1].id].id
    db.session.execute(
        update(OutboundMessage)
        .where(OutboundMessage.id == taken)
        .values(lease_owner="B", fence=OutboundMessage.fence + 1)
    )
    db.session.commit()
    stats = dispatch.Stats()
    ready = dispatch.prepare(claims, daytime, channels, settings, stats)
    mine = nudges[people[2].id].id
    assert [item.claim.id for item in ready] == [mine] and stats.stale == 2
    rows = {m.id: m for m in _messages(kind="nudge")}
    assert (rows[mine].status, rows[mine].attempts, rows[mine].provider) == (
        "sending",
        1,
        "scripted",
    )
    assert rows[mine].provider_reference == f"nudge-{mine}"
    assert rows[mine].lease_until == daytime + timedelta(seconds=60)
    assert (rows[taken].status, rows[taken].lease_owner, rows[taken].attempts) == (
        "leased",
        "B",
        0,
    )
    assert rows[nudges[people[0].id].id].status == "cancelled"
    # The UPDATE itself checks the fence too: on PostgreSQL a row can change between
    # prepare's read and its write.
    from nudge_app.delivery import queries

    assert queries.mark_sending([(taken, 1)], "scripted", daytime) == set()
    db.session.commit()
    assert _messages(id=taken)[0].status == "leased"


def test_batch_completion_records_only_rows_still_ours(
    app, running_list_campaign, make_participants, daytime, scripted, caplog
):
    _launch(running_list_campaign, make_participants, 2)
    channel = scripted()
    channels = {"email": channel, "sms": channel}
    settings = DispatchSettings(lease_seconds=60)
    ready = dispatch.prepare(dispatch.claim("A", daytime, 10, 60), daytime, channels, settings)
    assert len(ready) == 2
    # A stalls; another worker takes the first row over (its reclaim moves the fence).
    taken, mine = ready[0].claim.id, ready[1].claim.id
    db.session.execute(
        update(OutboundMessage)
        .where(OutboundMessage.id == taken)
        .values(lease_owner="B", fence=OutboundMessage.fence + 1)
    )
    db.session.commit()
    with caplog.at_level("WARNING"):
        stats = dispatch.send_all(ready, daytime + timedelta(seconds=5), settings)
    assert (stats.sent, stats.stale) == (1, 1)
    assert "possible duplicate" in caplog.text and f"message {taken}" in caplog.text
    rows = {m.id: m for m in _messages(kind="nudge")}
    assert (rows[taken].status, rows[taken].provider_message_id) == ("sending", None)
    assert rows[mine].status == "sent" and rows[mine].provider_message_id == f"p-nudge-{mine}"
    assert rows[mine].sent_at == daytime + timedelta(seconds=5)
    assert rows[mine].lease_owner is None and rows[mine].lease_until is None


def test_message_of_a_participant_deleted_since_is_cancelled(
    app, running_list_campaign, make_participants, daytime
):
    """The outbox has no foreign keys: a row whose participant is gone ends, quietly."""
    from sqlalchemy import delete

    from nudge_app.models import Assignment

    gone, kept = _launch(running_list_campaign, make_participants, 2)
    db.session.execute(delete(Assignment).where(Assignment.participant_id == gone.id))
    db.session.execute(delete(Participant).where(Participant.id == gone.id))
    db.session.commit()
    result = run_once(app, now=daytime)
    assert result.dispatched.sent == 1
    by_person = {m.participant_id: m for m in _messages(kind="nudge")}
    assert (by_person[gone.id].status, by_person[gone.id].error_kind) == ("cancelled", "opted_out")
    assert by_person[kept.id].status == "sent"


def test_full_deletion_removes_the_participants_messages(
    app, running_list_campaign, make_participants
):
    from nudge_app.services.enrolment import delete_participant

    gone, kept = _launch(running_list_campaign, make_participants, 2)
    assert len(_messages(participant_id=gone.id)) == 3
    counts = delete_participant(db.session.get(Participant, gone.id))
    db.session.commit()
    assert counts["messages"] == 3
    assert _messages(participant_id=gone.id) == []
    assert len(_messages(participant_id=kept.id)) == 3
