"""Who is asking: the signed-in staff member (a server-side session) and role checks.

The cookie (signed with SECRET_KEY) holds only a random session id; the session itself
lives in the database (`services.staff_sessions`), so signing out, a password change, a
role change or deactivation ends it at once, and idle and absolute timeouts apply. Login
pages and throttling live in the console; this module is what every staff route uses. A
council's staff only ever see their own council: `council_campaign_or_404` answers 404
for another council's campaign so existence does not leak.
"""

from __future__ import annotations

import functools
import unicodedata
from collections.abc import Callable
from urllib.parse import unquote, urlsplit

from flask import abort, has_request_context, redirect, request, session, url_for
from sqlalchemy import select

from nudge_app.extensions import db
from nudge_app.models import Campaign, StaffSession, StaffUser
from nudge_app.services import staff_sessions

SESSION_ID = "sid"
# Pages a user whose password was reset by an admin may still open.
PASSWORD_PAGES = ("console.password", "console.logout", "console.static")
_UNSET = object()


def current_session() -> StaffSession | None:
    """The live server-side session of this request's cookie, looked up once per request."""
    if not has_request_context():
        return None
    cached = getattr(request, "_nudge_session", _UNSET)
    if cached is not _UNSET:
        return cached
    found = staff_sessions.find(session.get(SESSION_ID))
    staff = db.session.get(StaffUser, found.staff_id) if found is not None else None
    if staff is None or not staff.is_active:
        found, staff = None, None
    if found is None and SESSION_ID in session:
        session.clear()  # ended or expired: the cookie goes too
    _remember(found, staff)
    return found


def current_staff() -> StaffUser | None:
    """The signed-in staff member, or None."""
    if current_session() is None:
        return None
    return request._nudge_staff


def _remember(found: StaffSession | None, staff: StaffUser | None) -> None:
    # Cached on the request, not on `g`: an app context can outlive one request (tests,
    # CLI), and a login must never leak from one request to the next.
    request._nudge_session = found
    request._nudge_staff = staff


def login_staff(staff: StaffUser) -> None:
    """Start a new server-side session (a fresh id: no session fixation)."""
    token = staff_sessions.start(staff)
    session.clear()
    session[SESSION_ID] = token
    session.permanent = True
    _remember(staff_sessions.find(token), staff)


def logout_staff() -> None:
    staff_sessions.end(session.get(SESSION_ID), "logout")
    session.clear()
    _remember(None, None)


def safe_next(target: str | None, default: str) -> str:
    r"""`target` if it is a path on this site, else `default` (no open redirect).

    Browsers drop tabs and newlines from URLs and read a backslash as a slash, so
    `/\t/evil.example` or `/\evil.example` would leave the site: any control character,
    backslash, scheme, host or leading `//` (also once percent-decoded) is refused.
    """
    if not target or len(target) > 2000:
        return default
    for text in (target, unquote(target)):
        if not text.startswith("/") or text.startswith("//") or "\\" in text:
            return default
        if any(unicodedata.category(ch)[0] in "CZ" for ch in text):
            return default  # control, format, separator (including spaces)
        parts = urlsplit(text)
        if parts.scheme or parts.netloc:
            return default
    return target


def login_required(view: Callable) -> Callable:
    @functools.wraps(view)
    def wrapped(*args, **kwargs):
        found = current_session()
        if found is None:
            if (
                request.path.startswith("/api/")
                or request.accept_mimetypes.best == "application/json"
            ):
                abort(401)
            try:
                return redirect(url_for("console.login", next=request.full_path))
            except Exception:
                abort(401)
        staff_sessions.touch(found)  # kept by the request's commit (nudge_app.boundary)
        if current_staff().must_change_password and request.endpoint not in PASSWORD_PAGES:
            return redirect(url_for("console.password"))
        return view(*args, **kwargs)

    return wrapped


def roles_required(*roles: str) -> Callable:
    """Only staff with one of these roles (admins always pass)."""

    def decorator(view: Callable) -> Callable:
        @functools.wraps(view)
        @login_required
        def wrapped(*args, **kwargs):
            staff = current_staff()
            if staff.role != "admin" and staff.role not in roles:
                abort(403)
            return view(*args, **kwargs)

        return wrapped

    return decorator


def council_campaign_or_404(council_id: int, slug: str) -> Campaign:
    campaign = db.session.scalar(
        select(Campaign).where(Campaign.council_id == council_id, Campaign.slug == slug)
    )
    if campaign is None:
        abort(404)
    return campaign
