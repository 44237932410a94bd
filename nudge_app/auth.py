"""Who is asking: the logged-in staff member (session) and role checks for the console.

Login pages and throttling live in the console; this module is what every staff route
uses. A council's staff only ever see their own council: `council_campaign_or_404`
answers 404 for another council's campaign so existence does not leak.
"""

from __future__ import annotations

import functools
from collections.abc import Callable

from flask import abort, has_request_context, redirect, request, session, url_for
from sqlalchemy import select

from nudge_app.extensions import db
from nudge_app.models import Campaign, StaffUser

_UNSET = object()


def current_staff() -> StaffUser | None:
    """The logged-in staff member, looked up once per request."""
    cached = getattr(request, "_nudge_staff", _UNSET) if has_request_context() else _UNSET
    if cached is not _UNSET:
        return cached
    staff = None
    staff_id = session.get("staff_id") if has_request_context() else None
    if staff_id is not None:
        staff = db.session.get(StaffUser, staff_id)
        if staff is None or not staff.is_active:
            session.clear()
            staff = None
    _remember(staff)
    return staff


def _remember(staff: StaffUser | None) -> None:
    # Cached on the request, not on `g`: an app context can outlive one request (tests,
    # CLI), and a login must never leak from one request to the next.
    if has_request_context():
        request._nudge_staff = staff


def login_staff(staff: StaffUser) -> None:
    session.clear()
    session["staff_id"] = staff.id
    session.permanent = True
    _remember(staff)


def logout_staff() -> None:
    session.clear()
    _remember(None)


def login_required(view: Callable) -> Callable:
    @functools.wraps(view)
    def wrapped(*args, **kwargs):
        if current_staff() is None:
            if (
                request.path.startswith("/api/")
                or request.accept_mimetypes.best == "application/json"
            ):
                abort(401)
            try:
                return redirect(url_for("console.login", next=request.full_path))
            except Exception:
                abort(401)
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
