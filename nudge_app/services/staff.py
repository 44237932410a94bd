"""Staff accounts, API tokens and login throttling for the council console and the API.

Passwords are hashed with Argon2id and must pass `nudge_app.passwords` (12+ characters,
not a common password); API tokens are stored only as SHA-256 hashes. Failed sign-ins
are counted per email and per client, each kept only as a keyed hash, in one row per key
updated atomically (an upsert that returns the new count and holds the row until the
transaction ends), so racing attempts cannot slip past the limit: the eleventh within 15
minutes is refused. A success clears its email's count and gives its client's back.
Sign-ins, failures, password changes and resets, role changes and deactivation are
audit-logged; the last three also end the user's sessions.
"""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass
from datetime import timedelta

from flask import current_app
from sqlalchemy import bindparam, case, delete, or_, select, update

from nudge_app.db import PerDialect, UTCDateTime, dialect_insert, utcnow
from nudge_app.errors import DomainError
from nudge_app.extensions import db
from nudge_app.models import ROLES, ApiToken, Council, LoginThrottle, StaffSession, StaffUser
from nudge_app.passwords import password_problem
from nudge_app.security import (
    hash_password,
    keyed_hash,
    new_api_token,
    password_needs_rehash,
    sha256_hex,
    verify_password,
)
from nudge_app.services import audit, staff_sessions

EMAIL_RE = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
THROTTLE_LIMIT = 10
THROTTLE_WINDOW = timedelta(minutes=15)

# A hash to verify against when the email is unknown, so timing does not reveal accounts.
_DUMMY_HASH: str | None = None


class StaffError(DomainError):
    """A user or token that cannot be created or changed as asked."""

    code = "invalid_staff"


class LoginThrottled(Exception):
    """Too many failed logins for this email or from this client: wait and try again."""

    def __init__(self, retry_after_seconds: int):
        super().__init__("Too many failed sign-in attempts. Please wait 15 minutes and try again.")
        self.retry_after_seconds = retry_after_seconds


class ChooseCouncil(Exception):
    """The email and password open accounts in several councils: the person picks one."""

    def __init__(self, councils: list[Council]):
        super().__init__("This email has accounts in several councils: choose one.")
        self.councils = councils


def normalise_email(email: str) -> str:
    return (email or "").strip().lower()


def check_password(password: str, email: str = "") -> None:
    problem = password_problem(password, email)
    if problem:
        raise StaffError(f"password: {problem}", field="password")


def create_user(
    council: Council,
    email: str,
    role: str,
    password: str,
    actor: str = "cli",
    actor_id: int | None = None,
) -> StaffUser:
    """Create a staff user of one council with a role and a password (hashed)."""
    email = normalise_email(email)
    if not EMAIL_RE.match(email) or len(email) > 254:
        raise StaffError(f"email {email!r}: not a valid email address", field="email")
    if role not in ROLES:
        raise StaffError(f"role {role!r}: must be one of {', '.join(ROLES)}", field="role")
    check_password(password, email)
    taken = db.session.scalar(
        select(StaffUser.id).where(StaffUser.council_id == council.id, StaffUser.email == email)
    )
    if taken is not None:
        raise StaffError(f"{council.name} already has a user with email {email!r}", field="email")
    user = StaffUser(
        council_id=council.id,
        email=email,
        role=role,
        password_hash=hash_password(password),
        password_changed_at=utcnow(),
    )
    db.session.add(user)
    db.session.flush()
    audit.record(
        council_id=council.id,
        actor=actor,
        actor_id=actor_id,
        action="user.create",
        object_type="staff_user",
        object_id=user.id,
        after={"email": email, "role": role},
    )
    return user


def set_user_role(user: StaffUser, role: str, actor: str, actor_id: int | None = None) -> StaffUser:
    """Change the role; the user's sessions end (they sign in again with the new role)."""
    if role not in ROLES:
        raise StaffError(f"role {role!r}: must be one of {', '.join(ROLES)}", field="role")
    before = {"role": user.role}
    user.role = role
    db.session.flush()
    ended = staff_sessions.end_all(user, "role-change")
    audit.record(
        council_id=user.council_id,
        actor=actor,
        actor_id=actor_id,
        action="user.role",
        object_type="staff_user",
        object_id=user.id,
        before=before,
        after={"role": role, "sessions_ended": ended},
    )
    return user


def set_user_active(
    user: StaffUser, active: bool, actor: str, actor_id: int | None = None
) -> StaffUser:
    before = {"is_active": user.is_active}
    user.is_active = active
    db.session.flush()
    ended = 0 if active else staff_sessions.end_all(user, "deactivated")
    audit.record(
        council_id=user.council_id,
        actor=actor,
        actor_id=actor_id,
        action="user.activate" if active else "user.deactivate",
        object_type="staff_user",
        object_id=user.id,
        before=before,
        after={"is_active": active, "sessions_ended": ended},
    )
    return user


def change_password(
    user: StaffUser, current: str, new: str, keep: StaffSession | None = None
) -> StaffUser:
    """The user's own change: the current password, then the new one under the rule.
    Every other session of the user ends; `keep` (the one making the change) stays."""
    if not verify_password(user.password_hash, current or ""):
        raise StaffError("current password: this is not your current password", field="current")
    if new == current:
        raise StaffError("new password: must differ from the current one", field="new")
    problem = password_problem(new, user.email)
    if problem:
        raise StaffError(f"new password: {problem}", field="new")
    user.password_hash = hash_password(new)
    user.must_change_password = False
    user.password_changed_at = utcnow()
    db.session.flush()
    ended = staff_sessions.end_all(user, "password-change", keep=keep)
    audit.record(
        council_id=user.council_id,
        actor=f"user:{user.id}",
        actor_id=user.id,
        action="user.password_change",
        object_type="staff_user",
        object_id=user.id,
        after={"sessions_ended": ended},
    )
    return user


def reset_password(user: StaffUser, actor: str, actor_id: int | None = None) -> str:
    """An admin's reset: a temporary password (returned, shown once) that only opens the
    password change page; every session of the user ends."""
    temporary = secrets.token_urlsafe(12)
    user.password_hash = hash_password(temporary)
    user.must_change_password = True
    user.password_changed_at = utcnow()
    db.session.flush()
    ended = staff_sessions.end_all(user, "password-reset")
    audit.record(
        council_id=user.council_id,
        actor=actor,
        actor_id=actor_id,
        action="user.password_reset",
        object_type="staff_user",
        object_id=user.id,
        after={"sessions_ended": ended},
    )
    return temporary


def council_users(council_id: int) -> list[StaffUser]:
    return list(
        db.session.scalars(
            select(StaffUser).where(StaffUser.council_id == council_id).order_by(StaffUser.email)
        )
    )


def council_user_by_email(council_id: int, email: str) -> StaffUser | None:
    return db.session.scalar(
        select(StaffUser).where(
            StaffUser.council_id == council_id, StaffUser.email == normalise_email(email)
        )
    )


# --- login and throttling ---------------------------------------------------------------


def _secret() -> str:
    return current_app.config["SECRET_KEY"]


def _hashes(email: str, client: str) -> tuple[str, str]:
    return (
        keyed_hash(_secret(), "email:" + normalise_email(email)),
        keyed_hash(_secret(), "client:" + (client or "unknown")),
    )


def _count_statement(dialect: str):
    """INSERT a key's first failure, or add one (restarting an expired window); RETURNING
    the count and the window's start. One statement: the row is locked until commit."""
    table = LoginThrottle.__table__
    now = bindparam("now", type_=UTCDateTime())
    expired = table.c.window_start < bindparam("since", type_=UTCDateTime())
    return (
        dialect_insert(table, dialect)
        .values(key_hash=bindparam("key"), failures=1, window_start=now)
        .on_conflict_do_update(
            index_elements=["key_hash"],
            set_={
                "failures": case((expired, 1), else_=table.c.failures + 1),
                "window_start": case((expired, now), else_=table.c.window_start),
            },
        )
        .returning(table.c.failures, table.c.window_start)
    )


_COUNT = PerDialect(_count_statement)


def _count_attempt(key: str) -> tuple[int, timedelta]:
    """Count one attempt for `key`; (attempts in the window, time left in the window)."""
    now = utcnow()
    failures, start = db.session.execute(
        _COUNT(db.session), {"key": key, "now": now, "since": now - THROTTLE_WINDOW}
    ).one()
    return failures, THROTTLE_WINDOW - (now - start)


def _count_attempts(email: str, client: str) -> None:
    """Count this attempt first, atomically, then refuse it if it is over the limit."""
    email_hash, client_hash = _hashes(email, client)
    waits = []
    for key in (email_hash, client_hash):  # always in this order: no deadlock
        failures, left = _count_attempt(key)
        if failures > THROTTLE_LIMIT:
            waits.append(left)
    if waits:
        raise LoginThrottled(max(1, int(max(waits).total_seconds())))


def _forgive(email: str, client: str) -> None:
    """A success: its email starts afresh and its client gets this attempt back."""
    email_hash, client_hash = _hashes(email, client)
    table = LoginThrottle.__table__
    db.session.execute(delete(table).where(table.c.key_hash == email_hash))
    db.session.execute(
        update(table)
        .where(table.c.key_hash == client_hash, table.c.failures > 0)
        .values(failures=table.c.failures - 1)
    )
    # Keep the table small: windows that ended long ago no longer matter.
    db.session.execute(delete(table).where(table.c.window_start < utcnow() - timedelta(days=1)))


def _audit_login(action: str, users: list[StaffUser], email: str, client: str) -> None:
    client_hash = _hashes(email, client)[1][:16]
    if not users:  # an unknown email: no council to file it under, and no email kept
        audit.record(
            council_id=None,
            actor="anonymous",
            action=action,
            object_type="staff_user",
            after={"email_hash": _hashes(email, client)[0][:16], "client": client_hash},
        )
    for user in users:
        audit.record(
            council_id=user.council_id,
            actor=f"user:{user.id}" if action == "user.login" else "anonymous",
            actor_id=user.id if action == "user.login" else None,
            action=action,
            object_type="staff_user",
            object_id=user.id,
            after={"client": client_hash},
        )


def authenticate(
    email: str, password: str, client: str, council_slug: str | None = None
) -> StaffUser | None:
    """The active user with this email and password, or None; throttled after failures.

    Raises LoginThrottled (the attempt is counted first), or ChooseCouncil when the email
    and password open accounts in several councils and `council_slug` names none of them.
    The caller commits (counts and audit entries must survive the request).
    """
    global _DUMMY_HASH
    try:
        _count_attempts(email, client)
    except LoginThrottled:
        _audit_login("user.login_throttled", [], email, client)
        raise
    candidates = list(
        db.session.scalars(
            select(StaffUser)
            .where(StaffUser.email == normalise_email(email), StaffUser.is_active.is_(True))
            .order_by(StaffUser.id)
        )
    )
    if not candidates:
        if _DUMMY_HASH is None:
            _DUMMY_HASH = hash_password("not-a-real-password")
        verify_password(_DUMMY_HASH, password or "")
    matched = [u for u in candidates if verify_password(u.password_hash, password or "")]
    if council_slug:
        matched = [u for u in matched if u.council.slug == council_slug]
    if not matched:
        _audit_login("user.login_failed", candidates, email, client)
        return None
    if len(matched) > 1:
        _forgive(email, client)
        raise ChooseCouncil([u.council for u in matched])
    user = matched[0]
    if password_needs_rehash(user.password_hash):
        user.password_hash = hash_password(password)
    user.last_login_at = utcnow()
    _forgive(email, client)
    _audit_login("user.login", [user], email, client)
    return user


# --- API tokens -------------------------------------------------------------------------


@dataclass(frozen=True)
class NewToken:
    token: ApiToken
    secret: str  # shown once, never stored


def create_token(
    council: Council, name: str, actor: str = "cli", actor_id: int | None = None
) -> NewToken:
    name = (name or "").strip()
    if not name or len(name) > 100:
        raise StaffError("name: give the token a name of 1 to 100 characters")
    secret, token_hash, prefix = new_api_token()
    token = ApiToken(
        council_id=council.id,
        name=name,
        token_hash=token_hash,
        prefix=prefix,
        created_by_id=actor_id,
    )
    db.session.add(token)
    db.session.flush()
    audit.record(
        council_id=council.id,
        actor=actor,
        actor_id=actor_id,
        action="token.create",
        object_type="api_token",
        object_id=token.id,
        after={"name": name, "prefix": prefix},
    )
    return NewToken(token=token, secret=secret)


def revoke_token(token: ApiToken, actor: str = "cli", actor_id: int | None = None) -> ApiToken:
    if token.revoked_at is not None:
        return token
    token.revoked_at = utcnow()
    db.session.flush()
    audit.record(
        council_id=token.council_id,
        actor=actor,
        actor_id=actor_id,
        action="token.revoke",
        object_type="api_token",
        object_id=token.id,
        before={"revoked": False},
        after={"revoked": True},
    )
    return token


def council_tokens(council_id: int) -> list[ApiToken]:
    return list(
        db.session.scalars(
            select(ApiToken).where(ApiToken.council_id == council_id).order_by(ApiToken.id)
        )
    )


def token_by_secret(secret: str) -> ApiToken | None:
    """The live (not revoked) token for a bearer secret, or None."""
    if not secret:
        return None
    return db.session.scalar(
        select(ApiToken).where(
            ApiToken.token_hash == sha256_hex(secret), ApiToken.revoked_at.is_(None)
        )
    )


def find_token(council_id: int, token_ref: str) -> ApiToken | None:
    """A council's token by id or by name or prefix (for the CLI)."""
    conditions = [ApiToken.name == token_ref, ApiToken.prefix == token_ref]
    if token_ref.isdigit():
        conditions.append(ApiToken.id == int(token_ref))
    return db.session.scalar(
        select(ApiToken)
        .where(ApiToken.council_id == council_id, or_(*conditions))
        .order_by(ApiToken.id.desc())
    )
