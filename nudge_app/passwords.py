"""The staff password rule: long enough, not a common password, not the person's email.

At least 12 characters (NCSC and NIST favour length over composition rules), at most 256
(Argon2 hashes whatever it is given: a megabyte password is a denial of service). The
block-list is the 20,000 most common passwords shipped in `nudge_app/data`; a password is
refused when it is one of them, or one of them with digits and symbols added at the ends
("dragon123456!"), or one character repeated, or the email's own name.
"""

from __future__ import annotations

import functools
import gzip
import re
from importlib import resources

MIN_LENGTH = 12
MAX_LENGTH = 256
_PADDING = re.compile(r"^[\d\W_]+|[\d\W_]+$")


@functools.cache
def common_passwords() -> frozenset[str]:
    data = resources.files("nudge_app.data").joinpath("common-passwords.txt.gz").read_bytes()
    return frozenset(gzip.decompress(data).decode("utf-8").split())


def password_problem(password: str | None, email: str = "") -> str | None:
    """Why this password is refused (one sentence for the form), or None if it is fine."""
    password = password or ""
    if len(password) < MIN_LENGTH:
        return f"must have at least {MIN_LENGTH} characters"
    if len(password) > MAX_LENGTH:
        return f"must have at most {MAX_LENGTH} characters"
    lowered = password.lower()
    core = _PADDING.sub("", lowered)
    common = common_passwords()
    if lowered in common or (len(core) >= 4 and core in common) or len(set(lowered)) < 4:
        return "is too common or too easy to guess: choose a longer phrase of unrelated words"
    name = email.lower().partition("@")[0]
    if len(name) >= 4 and (name in lowered or lowered in email.lower()):
        return "must not contain your email address"
    return None
