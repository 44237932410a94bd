"""The council console: staff pages for campaigns, participants, monitoring (issue 5).

Server-rendered pages that work without JavaScript; `console.login` is the sign-in page
that `nudge_app.auth.login_required` redirects to. One module per group of pages
(`auth`, `campaigns`, `editor`, `preview`, `participants`, `monitor`, `admin`), with
`common` for what they share and `plumbing` for per-request hooks. Routes are thin: check
the role, find the council's own object (404 otherwise), call one service function,
render. Every form carries a CSRF token (CSRFProtect is global).
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

# Each module registers its pages on bp.
from nudge_app.console import (  # noqa: E402,F401
    admin,
    auth,
    campaigns,
    editor,
    monitor,
    participants,
    plumbing,
    preview,
)
