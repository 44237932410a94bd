"""Request plumbing of every console page: security headers, the signed-in staff member
in templates, and the clear page for a too-large upload."""

from __future__ import annotations

from flask import Response, current_app, render_template
from werkzeug.exceptions import RequestEntityTooLarge

from nudge_app.auth import current_staff
from nudge_app.console.common import bp


@bp.after_request
def _headers(response: Response) -> Response:
    response.headers.setdefault("X-Frame-Options", "DENY")
    response.headers.setdefault("X-Content-Type-Options", "nosniff")
    response.headers.setdefault("Referrer-Policy", "same-origin")
    if response.mimetype == "text/html":
        response.headers.setdefault("Cache-Control", "no-store")
    return response


@bp.app_context_processor
def _console_context():
    return {"staff": current_staff()}


@bp.errorhandler(RequestEntityTooLarge)
def _too_large(exc):
    limit = current_app.config.get("MAX_CONTENT_LENGTH") or 0
    size = f"{limit / 1e6:.0f} MB" if limit >= 1e6 else f"{limit / 1e3:.0f} kB"
    message = f"The file is too large: the limit is {size}. Split it into smaller files."
    return render_template("console/message.html", title="File too large", message=message), 413
