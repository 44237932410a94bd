"""`nudge scheduler --once` says why messages wait and until when."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import select, update

from nudge_app.extensions import db
from nudge_app.models import OutboundMessage
from nudge_app.scheduler import heartbeat


def test_once_says_why_messages_are_held_and_until_when(
    app, runner, council, make_campaign, make_participants
):
    from nudge_app.cli import main
    from nudge_app.services import outbox

    campaign = make_campaign(council, "council-consultation")
    campaign.status = "running"
    db.session.commit()
    make_participants(campaign, 3)
    outbox.on_launch(campaign)
    db.session.commit()
    night = datetime(2026, 12, 8, 22, 30, tzinfo=UTC)  # 22:30 in London: quiet
    db.session.execute(
        update(OutboundMessage).values(due_at=night - timedelta(minutes=5), expires_at=None)
    )
    db.session.commit()
    result = runner.invoke(main, ["scheduler", "--once", "--now", night.isoformat()])
    assert result.exit_code == 0, result.output
    assert "held 9 because of quiet hours, until 2026-12-09 08:00 UTC" in result.output
    assert "9 messages wait; the next is due 2026-12-09 08:00 UTC" in result.output
    db.session.commit()
    reasons = set(db.session.scalars(select(OutboundMessage.error_kind)))
    assert reasons == {"quiet_hours"}  # the monitoring page can say why too
    assert heartbeat.scheduler_status().state == "running"  # a --once round is a beat
