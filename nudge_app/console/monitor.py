"""A running campaign's monitoring page: enrolment, exposure and joins by arm and by day."""

from __future__ import annotations

from flask import render_template

from nudge_app.auth import login_required
from nudge_app.console import bp
from nudge_app.console.common import own_campaign
from nudge_app.services.monitoring import campaign_monitoring


@bp.get("/campaigns/<slug>/monitor")
@login_required
def monitor(slug: str):
    c = own_campaign(slug)
    m = campaign_monitoring(c)
    peak = max([max((row[k] for k in m.arms), default=0) for row in m.by_day] or [0])
    return render_template("console/monitor.html", c=c, m=m, peak=peak or 1)
