"""API-token authentication and the API's JSON errors.

`token_required` reads `Authorization: Bearer TOKEN`, finds the live (not revoked) token
by its SHA-256 hash and puts its council in `g.api_council`; anything else is a 401 JSON
error. Revocation takes effect at the next request: nothing is cached.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from datetime import timedelta
from typing import Any

from flask import g, jsonify, request
from werkzeug.exceptions import HTTPException

from nudge_app.boundary import commit_now
from nudge_app.db import utcnow
from nudge_app.extensions import db
from nudge_app.models import Campaign, Council
from nudge_app.services.campaigns import campaign_by_slug
from nudge_app.services.councils import SLUG_RE
from nudge_app.services.staff import token_by_secret


class ApiError(HTTPException):
    """An API error with a stable machine-readable code and optional details."""

    def __init__(self, status: int, error: str, message: str, details: Any = None):
        super().__init__(description=message)
        self.code = status
        self.error = error
        self.details = details

    def get_response(self, environ=None, scope=None):
        response = jsonify(
            {"error": self.error, "message": self.description, "details": self.details}
        )
        response.status_code = self.code
        if self.code == 401:
            response.headers["WWW-Authenticate"] = 'Bearer realm="nudge"'
        return response


def error(status: int, code: str, message: str, details: Any = None) -> ApiError:
    return ApiError(status, code, message, details)


def token_required(view: Callable) -> Callable:
    @functools.wraps(view)
    def wrapped(*args, **kwargs):
        header = request.headers.get("Authorization", "")
        scheme, _, secret = header.partition(" ")
        if scheme.lower() != "bearer" or not secret.strip():
            raise error(
                401,
                "unauthorized",
                "Send a council API token as 'Authorization: Bearer TOKEN'.",
            )
        token = token_by_secret(secret.strip())
        if token is None:
            raise error(401, "invalid_token", "The API token is unknown or was revoked.")
        now = utcnow()
        if token.last_used_at is None or now - token.last_used_at > timedelta(minutes=1):
            token.last_used_at = now
            # The token was used, whatever this request's answer turns out to be.
            commit_now()
        g.api_token = token
        g.api_council = db.session.get(Council, token.council_id)
        return view(*args, **kwargs)

    return wrapped


def api_actor() -> str:
    return f"token:{g.api_token.id}"


def council_campaign(slug: str) -> Campaign:
    campaign = campaign_by_slug(g.api_council.id, slug) if SLUG_RE.match(slug) else None
    if campaign is None:
        raise error(404, "not_found", f"No campaign {slug!r} in this council.")
    return campaign
