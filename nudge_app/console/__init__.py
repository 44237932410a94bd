"""The council console: staff pages for campaigns, participants, monitoring.

Server-rendered pages that work without JavaScript; `console.login` is the sign-in page
that `nudge_app.auth.login_required` redirects to. One module per group of pages
(`auth`, `campaigns`, `editor`, `launch`, `preview`, `participants`, `attendance`, `monitor`,
`admin`, `evidence`), with
`common` for what they share (the blueprint `bp` among it) and `plumbing` for
per-request hooks. Routes are thin: check the role, find the council's own object (404
otherwise), call one service function, render. Every form carries a CSRF token (CSRFProtect is global).
"""

from __future__ import annotations

from nudge_app.console import (  # noqa: F401  (each module registers its pages on bp)
    account,
    admin,
    attendance,
    auth,
    campaigns,
    data_protection,
    editor,
    evidence,
    launch,
    monitor,
    participants,
    plumbing,
    preview,
)
from nudge_app.console.common import bp

__all__ = ["bp"]
