"""Staff accounts, API tokens and login throttling for the council console and the API.

Passwords are hashed with Argon2id; API tokens are stored only as SHA-256 hashes; failed
logins are recorded with the email and the client kept only as keyed hashes, and ten
failures for one email (or from one client) within 15 minutes refuse further attempts.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import timedelta

from flask import current_app
from sqlalchemy import delete, func, or_, select

from nudge_app.db import utcnow
from nudge_app.errors import DomainError
from nudge_app.extensions import db
from nudge_app.models import ROLES, ApiToken, Council, LoginAttempt, StaffUser
from nudge_app.security import (
    hash_password,
    keyed_hash,
    new_api_token,
    password_needs_rehash,
    sha256_hex,
    verify_password,
)
from nudge_app.services import audit

EMAIL_RE = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
MIN_PASSWORD_LENGTH = 10
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


def normalise_email(email: str) -> str:
    return (email or "").strip().lower()


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
        raise StaffError(f"email {email!r}: not a valid email address")
    if role not in ROLES:
        raise StaffError(f"role {role!r}: must be one of {', '.join(ROLES)}")
    if password is None or len(password) < MIN_PASSWORD_LENGTH:
        raise StaffError(f"password: must have at least {MIN_PASSWORD_LENGTH} characters")
    if db.session.scalar(select(StaffUser.id).where(StaffUser.email == email)) is not None:
        raise StaffError(f"a user with email {email!r} already exists")
    user = StaffUser(
        council_id=council.id, email=email, role=role, password_hash=hash_password(password)
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
    if role not in ROLES:
        raise StaffError(f"role {role!r}: must be one of {', '.join(ROLES)}")
    before = {"role": user.role}
    user.role = role
    db.session.flush()
    audit.record(
        council_id=user.council_id,
        actor=actor,
        actor_id=actor_id,
        action="user.role",
        object_type="staff_user",
        object_id=user.id,
        before=before,
        after={"role": role},
    )
    return user


def set_user_active(
    user: StaffUser, active: bool, actor: str, actor_id: int | None = None
) -> StaffUser:
    before = {"is_active": user.is_active}
    user.is_active = active
    db.session.flush()
    audit.record(
        council_id=user.council_id,
        actor=actor,
        actor_id=actor_id,
        action="user.activate" if active else "user.deactivate",
        object_type="staff_user",
        object_id=user.id,
        before=before,
        after={"is_active": active},
    )
    return user


def council_users(council_id: int) -> list[StaffUser]:
    return list(
        db.session.scalars(
            select(StaffUser).where(StaffUser.council_id == council_id).order_by(StaffUser.email)
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


def check_throttle(email: str, client: str) -> None:
    """Raise LoginThrottled when this email or this client failed too often recently."""
    email_hash, client_hash = _hashes(email, client)
    since = utcnow() - THROTTLE_WINDOW
    for column, value in (
        (LoginAttempt.email_hash, email_hash),
        (LoginAttempt.client_hash, client_hash),
    ):
        count, oldest = db.session.execute(
            select(func.count(LoginAttempt.id), func.min(LoginAttempt.at)).where(
                column == value, LoginAttempt.at >= since
            )
        ).one()
        if count >= THROTTLE_LIMIT:
            wait = THROTTLE_WINDOW - (utcnow() - _aware(oldest))
            raise LoginThrottled(max(1, int(wait.total_seconds())))


def _aware(value):
    from datetime import UTC

    if value is not None and value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value


def record_failed_login(email: str, client: str) -> None:
    email_hash, client_hash = _hashes(email, client)
    db.session.add(LoginAttempt(email_hash=email_hash, client_hash=client_hash))
    # Keep the table small: attempts older than a day no longer matter.
    db.session.execute(delete(LoginAttempt).where(LoginAttempt.at < utcnow() - timedelta(days=1)))
    db.session.flush()


def clear_failed_logins(email: str) -> None:
    email_hash, _ = _hashes(email, "")
    db.session.execute(delete(LoginAttempt).where(LoginAttempt.email_hash == email_hash))
    db.session.flush()


def authenticate(email: str, password: str, client: str) -> StaffUser | None:
    """The active user with this email and password, or None; throttled after failures.

    Raises LoginThrottled before checking the password when the limit is reached. The
    caller commits (the failure record must survive the request).
    """
    global _DUMMY_HASH
    check_throttle(email, client)
    user = db.session.scalar(select(StaffUser).where(StaffUser.email == normalise_email(email)))
    if user is None or not user.is_active:
        if _DUMMY_HASH is None:
            _DUMMY_HASH = hash_password("not-a-real-password")
        verify_password(_DUMMY_HASH, password or "")
        record_failed_login(email, client)
        return None
    if not verify_password(user.password_hash, password or ""):
        record_failed_login(email, client)
        return None
    if password_needs_rehash(user.password_hash):
        user.password_hash = hash_password(password)
    user.last_login_at = utcnow()
    clear_failed_logins(email)
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
