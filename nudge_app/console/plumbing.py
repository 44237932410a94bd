"""Request plumbing of every console page: the signed-in staff member in templates, design
paths in an officer's words, and the clear page for a too-large upload (security headers:
`nudge_app.headers`)."""

from __future__ import annotations

from flask import current_app, render_template
from werkzeug.exceptions import RequestEntityTooLarge

from nudge_app.auth import current_staff
from nudge_app.console.campaign_forms import describe
from nudge_app.console.common import bp


@bp.app_context_processor
def _console_context():
    return {"staff": current_staff()}


@bp.app_template_filter("design_words")
def _design_words(path: str) -> str:
    """`arms[1].weight` as "Arm 2: weight", for problems that sit on no form field."""
    return describe(path)


@bp.errorhandler(RequestEntityTooLarge)
def _too_large(exc):
    limit = current_app.config.get("MAX_CONTENT_LENGTH") or 0
    size = f"{limit / 1e6:.0f} MB" if limit >= 1e6 else f"{limit / 1e3:.0f} kB"
    message = f"The file is too large: the limit is {size}. Split it into smaller files."
    return render_template("console/message.html", title="File too large", message=message), 413
