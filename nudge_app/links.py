"""A participant's personal links (page, follow-up survey, opt-out) and a mentor's invitation
link, built from the secret key.

The token is derived from the participant's nonce and SECRET_KEY (nudge_app.security), so
links can be written again at any time while the database stores no usable token.
"""

from __future__ import annotations

import base64
import hashlib
import hmac

from flask import current_app

from nudge_app.security import participant_token


def personal_link(access_nonce: str, base_url: str | None = None, secret_key: str | None = None):
    """`BASE_URL/p/<token>` for a participant's nonce."""
    base = (base_url or current_app.config["BASE_URL"]).rstrip("/")
    key = secret_key or current_app.config["SECRET_KEY"]
    return f"{base}/p/{participant_token(key, access_nonce)}"


def participant_links(participant, base_url: str | None = None, secret_key: str | None = None):
    """{"link", "survey_link", "opt_out_link"} for a participant (anything with access_nonce)."""
    link = personal_link(participant.access_nonce, base_url, secret_key)
    return {
        "link": link,
        "survey_link": link + "/follow-up",
        "opt_out_link": link + "/opt-out",
    }


def referral_code(referral_nonce: str, secret_key: str | None = None) -> str:
    """A mentor's invitation code, derived from their nonce and the secret key (only its
    SHA-256 is stored)."""
    key = (secret_key or current_app.config["SECRET_KEY"]).encode()
    digest = hmac.new(key, f"referral:{referral_nonce}".encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def referral_link(referral_nonce: str, base_url: str | None = None) -> str:
    """`BASE_URL/p/r/<code>`: a mentor's invitation link."""
    base = (base_url or current_app.config["BASE_URL"]).rstrip("/")
    return f"{base}/p/r/{referral_code(referral_nonce)}"
