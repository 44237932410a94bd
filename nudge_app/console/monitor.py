"""A running campaign's monitoring page: enrolment, exposure and joins by arm and by day;
and the delivery status (is the scheduler running, why messages wait) it shares with the
campaign's overview."""

from __future__ import annotations

from flask import render_template

from nudge_app.auth import login_required
from nudge_app.console.common import bp, own_campaign
from nudge_app.scheduler.status import current, held_messages
from nudge_app.services.monitoring import campaign_monitoring


@bp.context_processor
def _delivery_status():
    """The scheduler's status and a campaign's held messages, read only where a page asks."""
    return {"scheduler_status": current, "held_messages": held_messages}


@bp.get("/campaigns/<slug>/monitor")
@login_required
def monitor(slug: str):
    c = own_campaign(slug)
    m = campaign_monitoring(c)
    peak = max([max((row[k] for k in m.arms), default=0) for row in m.by_day] or [0])
    return render_template("console/monitor.html", c=c, m=m, peak=peak or 1)
