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

from nudge_app.console import (  # noqa: E402,F401  (register the views on bp)
    account,
    data_protection,
    routes,
)
