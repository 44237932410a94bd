"""Secrets handling: the app's secret key, password hashing (Argon2id), API and participant
tokens hashed at rest.

Without SECRET_KEY in the environment (development, a quick start) the key is a random
one made once and kept in the instance folder, owner-only, so every process sharing the
folder (web, scheduler, CLI) signs and derives with the same key and no fixed,
published key ever signs a session.

A participant's personal-link token is derived from a random per-participant nonce and
the app's SECRET_KEY (HMAC-SHA256), so links can be written again for a mailing while
the database holds only the nonce and the token's SHA-256: a copy of the database alone
opens no link.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from pathlib import Path

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

_hasher = PasswordHasher()  # Argon2id with the library's current recommended parameters

API_TOKEN_PREFIX = "nudge_"
SECRET_KEY_FILE = "secret_key"
MIN_SECRET_KEY_LENGTH = 32


def instance_secret_key(instance_path: str | Path) -> tuple[str, Path, bool]:
    """(key, its file, whether it was created now): the instance folder's random key."""
    from nudge_app.private_files import create_exclusive

    path = Path(instance_path) / SECRET_KEY_FILE
    created = False
    if not path.exists():
        created = create_exclusive(path, secrets.token_urlsafe(48) + "\n")
    key = path.read_text(encoding="utf-8").strip()
    if len(key) < MIN_SECRET_KEY_LENGTH:
        raise ValueError(
            f"{path} holds no usable key (fewer than {MIN_SECRET_KEY_LENGTH} characters): "
            "delete it to have a new one made, or set SECRET_KEY"
        )
    return key, path, created


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def verify_password(password_hash: str, password: str) -> bool:
    try:
        return _hasher.verify(password_hash, password)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


def password_needs_rehash(password_hash: str) -> bool:
    return _hasher.check_needs_rehash(password_hash)


def sha256_hex(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def new_api_token() -> tuple[str, str, str]:
    """(token shown once, its SHA-256 hash to store, a short prefix to recognise it)."""
    token = API_TOKEN_PREFIX + secrets.token_urlsafe(32)
    return token, sha256_hex(token), token[: len(API_TOKEN_PREFIX) + 6]


def new_nonce() -> str:
    return secrets.token_hex(16)


def participant_token(secret_key: str, nonce: str) -> str:
    """The personal-link token (256 bits, URL-safe) for a participant's nonce."""
    return token_text(hmac.digest(secret_key.encode(), f"participant:{nonce}".encode(), "sha256"))


def token_text(digest: bytes) -> str:
    """A personal-link token's text from its HMAC (URL-safe base64, no padding)."""
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


class KeyedSha256:
    """HMAC-SHA256 under one key with the key's inner and outer states worked out once:
    per message two `copy` + `update` of a SHA-256 state instead of the key schedule each
    time (the same digest as `hmac.digest(key, msg, "sha256")`; for a dispatch worker,
    which makes two per message)."""

    def __init__(self, key: bytes):
        if len(key) > 64:
            key = hashlib.sha256(key).digest()
        key = key.ljust(64, b"\0")
        self._inner = hashlib.sha256(key.translate(bytes(b ^ 0x36 for b in range(256))))
        self._outer = hashlib.sha256(key.translate(bytes(b ^ 0x5C for b in range(256))))

    def __call__(self, message: bytes) -> bytes:
        inner = self._inner.copy()
        inner.update(message)
        outer = self._outer.copy()
        outer.update(inner.digest())
        return outer.digest()


def keyed_hash(secret_key: str, text: str) -> str:
    """An HMAC of a value (an email, an IP) for throttling without storing the value."""
    return hmac.new(secret_key.encode(), text.encode(), hashlib.sha256).hexdigest()
