"""Security headers on every response, set by Flask-Talisman in one place.

- Content-Security-Policy: scripts, styles, images and fonts from this site only; no
  inline script or style (the templates link static files), no plugins, no <base>,
  forms post only here, and no page may be framed (`frame-ancestors 'none'`, with
  `X-Frame-Options: DENY` for older browsers). The effect report, a self-contained page
  with its own <style>, is served with a per-request nonce on that style instead.
- Referrer-Policy: `no-referrer` on participant pages (their URLs carry personal tokens),
  `same-origin` elsewhere.
- Cache-Control: `no-store` on everything but static files: console pages, participant
  pages, every export (participants, audit log, report CSV and JSON) and the API.
- X-Content-Type-Options: nosniff; HSTS and a redirect to HTTPS when FORCE_HTTPS is on
  (production's default), except `/healthz`, which load balancers ask over plain HTTP.
"""

from __future__ import annotations

from flask import Flask, Response, request
from flask_talisman import Talisman

CONTENT_SECURITY_POLICY = {
    "default-src": "'self'",
    "script-src": "'self'",
    "style-src": "'self'",
    "img-src": "'self' data:",
    "font-src": "'self'",
    "connect-src": "'self'",
    "object-src": "'none'",
    "base-uri": "'none'",
    "form-action": "'self'",
    "frame-ancestors": "'none'",
}
PRIVATE_PAGES = ("participant",)  # blueprints whose URLs hold a personal token


class _Talisman(Talisman):
    """Flask-Talisman, with what it rebuilds on every response built once: a view's
    options once per request (Talisman asks for them four times), and each policy's
    header text once per process, unless the request carries a nonce to put in it."""

    def __init__(self, *args, **kwargs):
        self._policy_texts: dict[int, tuple[object, str]] = {}
        super().__init__(*args, **kwargs)

    def _get_local_options(self):
        options = getattr(request, "_talisman_options", None)
        if options is None:
            options = request._talisman_options = super()._get_local_options()
        return options

    def _parse_policy(self, policy):
        if getattr(request, "csp_nonce", None):
            return super()._parse_policy(policy)
        key = id(policy)
        kept = self._policy_texts.get(key)
        if kept is None or kept[0] is not policy:
            kept = self._policy_texts[key] = (policy, super()._parse_policy(policy))
        return kept[1]


talisman = _Talisman()


def init_headers(app: Flask) -> None:
    # Flask runs an app's after-request functions in reverse order of registration, so
    # this one, registered first, runs after Talisman's and refines what it set.
    app.after_request(_per_area)
    force_https = bool(app.config.get("FORCE_HTTPS"))
    talisman.init_app(
        app,
        force_https=force_https,
        frame_options="DENY",
        strict_transport_security=force_https,
        content_security_policy=CONTENT_SECURITY_POLICY,
        referrer_policy="same-origin",
        session_cookie_secure=bool(app.config.get("SESSION_COOKIE_SECURE")),
        x_content_type_options=True,
    )


def plain_http_allowed(view):
    """For `/healthz`: answered over plain HTTP even when HTTPS is forced."""
    return talisman(force_https=False)(view)


def with_style_nonce(view):
    """For a self-contained page with its own <style>: CSP allows that style by nonce."""
    return talisman(content_security_policy_nonce_in=["style-src"])(view)


def style_nonce() -> str:
    return getattr(request, "csp_nonce", "")


def _per_area(response: Response) -> Response:
    if request.blueprint in PRIVATE_PAGES or request.path.startswith("/p/"):
        response.headers["Referrer-Policy"] = "no-referrer"
    if not (request.endpoint or "").endswith("static"):
        response.headers["Cache-Control"] = "no-store"
    return response
