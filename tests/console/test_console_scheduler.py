"""The console says whether the scheduler runs and why a campaign's messages wait."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

from sqlalchemy import update

from nudge_app.models import OutboundMessage, Participant
from nudge_app.scheduler import heartbeat
from nudge_app.security import new_nonce, sha256_hex


def _status(page: str) -> str:
    match = re.search(r'id="scheduler-status"[^>]*>([^<]+)<', page)
    assert match, "no scheduler status on the page"
    return match.group(1)


def test_monitoring_and_overview_show_the_scheduler_and_held_messages(
    signed_in, council, make_campaign, db_session
):
    client, _, _ = signed_in(council)
    c = make_campaign(council, "council-consultation", status="running")
    monitor = f"/campaigns/{c.slug}/monitor"
    page = client.get(monitor).get_data(as_text=True)
    assert 'role="alert"' in page
    assert "never run on this database" in _status(page)
    # A scheduler that beat 10 minutes ago is reported as not running.
    heartbeat.beat("host:1:x", "scheduler", datetime.now(UTC))
    db_session.execute(
        update(heartbeat.SchedulerHeartbeat).values(
            beat_at=datetime.now(UTC) - timedelta(minutes=10)
        )
    )
    db_session.commit()
    assert "last ran 10 minutes ago" in _status(client.get(monitor).get_data(as_text=True))
    heartbeat.beat("host:1:x", "scheduler", datetime.now(UTC))
    db_session.commit()
    overview = client.get(f"/campaigns/{c.slug}").get_data(as_text=True)
    assert _status(overview) == "The scheduler last ran just now."
    # Messages held for quiet hours say so, with the time in the council's zone.
    p = Participant(campaign_id=c.id, access_nonce=new_nonce(), email="a@example.org",
                    access_token_hash=sha256_hex(new_nonce()))  # fmt: skip
    db_session.add(p)
    db_session.flush()
    db_session.add(
        OutboundMessage(
            campaign_id=c.id, participant_id=p.id, kind="nudge", channel="email",
            due_at=datetime(2026, 7, 2, 7, 0, tzinfo=UTC), status="pending",
            error_kind="quiet_hours", idempotency_key="x",
        )
    )  # fmt: skip
    db_session.commit()
    page = client.get(monitor).get_data(as_text=True)
    assert "1 message held because of quiet hours, until 02 Jul 08:00." in page
