"""Console sessions kept on the server, so they can be ended before the cookie expires.

The signed cookie carries a random session id; the database keeps only its SHA-256, when
it began and was last used, and when and why it ended. A session is valid while it has
not been ended, its user is active, it was used within the idle timeout and began within
the absolute timeout (SESSION_IDLE_MINUTES, SESSION_MAX_HOURS). Sign-out ends one; a
password change or reset, a role change and deactivation end all of a user's sessions.
Functions flush, never commit.
"""

from __future__ import annotations

import secrets
from datetime import timedelta

from flask import current_app
from sqlalchemy import select, update

from nudge_app.db import utcnow
from nudge_app.extensions import db
from nudge_app.models import StaffSession, StaffUser
from nudge_app.security import sha256_hex

# `last_seen_at` is written at most this often: a page view is not a database write.
TOUCH_EVERY = timedelta(minutes=1)


def _limits() -> tuple[timedelta, timedelta]:
    config = current_app.config
    return (
        timedelta(minutes=int(config.get("SESSION_IDLE_MINUTES") or 60)),
        timedelta(hours=int(config.get("SESSION_MAX_HOURS") or 10)),
    )


def start(user: StaffUser) -> str:
    """A new session for `user`; returns the id to put in the cookie (stored hashed)."""
    token = secrets.token_urlsafe(32)
    db.session.add(StaffSession(staff_id=user.id, token_hash=sha256_hex(token)))
    db.session.flush()
    return token


def find(token: str | None) -> StaffSession | None:
    """The live session with this id, or None (unknown, ended, idle or too old)."""
    if not token or not isinstance(token, str) or len(token) > 100:
        return None
    found = db.session.scalar(
        select(StaffSession).where(StaffSession.token_hash == sha256_hex(token))
    )
    if found is None or found.ended_at is not None:
        return None
    idle, longest = _limits()
    now = utcnow()
    if now - found.last_seen_at > idle or now - found.created_at > longest:
        return None
    return found


def touch(found: StaffSession) -> bool:
    """Record that the session was used now (at most once a minute); True if written."""
    now = utcnow()
    if now - found.last_seen_at < TOUCH_EVERY:
        return False
    found.last_seen_at = now
    db.session.flush()
    return True


def end(token: str | None, reason: str = "logout") -> None:
    found = find(token)
    if found is not None:
        found.ended_at = utcnow()
        found.end_reason = reason
        db.session.flush()


def end_all(user: StaffUser, reason: str, keep: StaffSession | None = None) -> int:
    """End every live session of `user` (but `keep`); returns how many were ended."""
    statement = (
        update(StaffSession)
        .where(StaffSession.staff_id == user.id, StaffSession.ended_at.is_(None))
        .values(ended_at=utcnow(), end_reason=reason)
    )
    if keep is not None:
        statement = statement.where(StaffSession.id != keep.id)
    return db.session.execute(statement, execution_options={"synchronize_session": False}).rowcount
