"""The council console: staff pages for campaigns, participants, monitoring (issue 5).

Server-rendered pages that work without JavaScript; `console.login` is the sign-in page
that `nudge_app.auth.login_required` redirects to.
"""

from __future__ import annotations

from flask import Blueprint

bp = Blueprint(
    "console",
    __name__,
    template_folder="templates",
    static_folder="static",
    static_url_path="/console-static",
)

from nudge_app.console import routes  # noqa: E402,F401  (registers the views on bp)


@bp.context_processor
def _delivery_status():
    """The scheduler's status and a campaign's held messages, read only where a page asks."""
    from nudge_app.scheduler.status import current, held_messages

    return {"scheduler_status": current, "held_messages": held_messages}
