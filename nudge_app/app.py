"""The application factory: configuration, extensions, blueprints, error handlers.

The error handlers are the one place that turns exceptions into answers: HTTP errors and
domain errors (`nudge_app.errors.DomainError`) become a page, or JSON
`{"error": code, "message": text, "field": name or null, "details": ...}` for the API and
clients that ask for JSON; a dropped database connection is retried once (GET) or a 503
(`nudge_app.dropped_connections`); anything else is a 500 saying nothing was saved.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from datetime import timedelta
from typing import Any

from flask import Flask, jsonify, make_response, render_template, request
from werkzeug.exceptions import HTTPException, ServiceUnavailable

from config import Config
from nudge_app.boundary import TransactionalFlask
from nudge_app.errors import DomainError
from nudge_app.private_files import private_dir
from nudge_app.settings import ConfigurationError, app_settings, check

__all__ = ["ConfigurationError", "create_app", "wants_json"]

log = logging.getLogger(__name__)


def create_app(config: type[Config] | Mapping[str, Any] | None = None) -> Flask:
    """Build the app from a config class, a mapping of overrides, or the environment."""
    settings = app_settings(config)
    app = TransactionalFlask(
        __name__, instance_path=str(settings["INSTANCE_PATH"]), instance_relative_config=False
    )
    app.config.update(settings)
    check(app.config)
    private_dir(app.instance_path)
    _secret_key(app)
    app.config["PERMANENT_SESSION_LIFETIME"] = timedelta(
        hours=int(app.config.get("SESSION_MAX_HOURS") or 10)
    )
    if app.config.get("TRUSTED_PROXIES"):
        from werkzeug.middleware.proxy_fix import ProxyFix

        hops = int(app.config["TRUSTED_PROXIES"])
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=hops, x_proto=hops, x_host=hops)
    from nudge_app.dropped_connections import init_retry

    init_retry(app)

    from nudge_app.db import protect_sqlite_file
    from nudge_app.extensions import csrf, db

    protect_sqlite_file(app.config["SQLALCHEMY_DATABASE_URI"])
    db.init_app(app)
    csrf.init_app(app)
    from nudge_app.headers import init_headers

    init_headers(app)
    from nudge_app.formats import init_formats

    init_formats(app)

    from nudge_app import models  # noqa: F401  (register tables on the metadata)
    from nudge_app.api import bp as api_bp
    from nudge_app.callbacks import bp as callbacks_bp
    from nudge_app.console import bp as console_bp
    from nudge_app.health import bp as health_bp
    from nudge_app.health import init_app as init_operations
    from nudge_app.participant import init_app as init_participant_pages
    from nudge_app.participant.mentoring import bp as participant_bp  # + mentoring pages
    from nudge_app.reports import bp as reports_bp

    init_participant_pages(app)  # Babel and rate limits, for the public pages
    app.register_blueprint(health_bp)
    init_operations(app)  # request ids, access lines and request metrics
    app.register_blueprint(console_bp)
    app.register_blueprint(participant_bp, url_prefix="/p")
    app.register_blueprint(api_bp, url_prefix="/api/v1")
    app.register_blueprint(reports_bp, url_prefix="/reports")
    app.register_blueprint(callbacks_bp, url_prefix="/callbacks")
    csrf.exempt(api_bp)
    csrf.exempt(callbacks_bp)
    _register_error_handlers(app)
    app.add_url_rule("/favicon.ico", "favicon", _favicon)
    return app


def _favicon():
    """Browsers ask for /favicon.ico whatever the page says: the same icon, not a 404."""
    from flask import current_app, send_from_directory

    return send_from_directory(
        current_app.static_folder, "favicon.svg", mimetype="image/svg+xml", max_age=86400
    )


def _secret_key(app: Flask) -> None:
    """Without SECRET_KEY, the instance folder's random key (made once, then reused); the
    app says so in its log and `SECRET_KEY_FILE` names the file for `nudge serve`."""
    if app.config.get("SECRET_KEY"):
        return
    from nudge_app.security import instance_secret_key

    try:
        key, path, created = instance_secret_key(app.instance_path)
    except (OSError, ValueError) as exc:
        raise ConfigurationError(f"SECRET_KEY is not set and {exc}") from None
    app.config["SECRET_KEY"] = key
    app.config["SECRET_KEY_FILE"] = str(path)
    app.config["SECRET_KEY_CREATED"] = created
    log.warning(
        "SECRET_KEY is not set: %s the random key in %s (set SECRET_KEY in production)",
        "created" if created else "using",
        path,
    )


def wants_json() -> bool:
    if request.path.startswith("/api/"):
        return True
    best = request.accept_mimetypes.best_match(["application/json", "text/html"])
    return (
        best == "application/json"
        and request.accept_mimetypes[best] > request.accept_mimetypes["text/html"]
    )


def _error_page() -> str:
    """Staff see errors in the console's frame and words; residents (the participant
    pages, or anyone not signed in to the console) in theirs."""
    if request.blueprint == "participant" or request.path.startswith("/p/"):
        return "error.html"
    if request.blueprint in ("console", "reports"):
        return "console/error.html"
    try:
        from nudge_app.auth import current_staff

        return "console/error.html" if current_staff() is not None else "error.html"
    except Exception:  # no database, say, while answering an error: the plain page
        return "error.html"


def _register_error_handlers(app: Flask) -> None:
    @app.errorhandler(HTTPException)
    def http_error(exc: HTTPException):
        if wants_json():
            body = {
                "error": (exc.name or "error").lower().replace(" ", "_"),
                "message": exc.description,
                "details": getattr(exc, "details", None),
            }
            return jsonify(body), exc.code
        try:
            return render_template(_error_page(), error=exc), exc.code
        except Exception:  # a broken template must not turn a 404 into a 500
            return f"{exc.code} {exc.name}", exc.code

    @app.errorhandler(DomainError)
    def domain_error(exc: DomainError):
        if wants_json():
            body = {
                "error": exc.code,
                "message": exc.message,
                "field": exc.field,
                "details": exc.details,
            }
            return jsonify(body), exc.http_status
        page = render_template(
            _error_page(), status=exc.http_status, message=exc.message, field=exc.field
        )
        return page, exc.http_status

    @app.errorhandler(Exception)
    def unexpected(exc: Exception):
        if isinstance(exc, HTTPException):
            return http_error(exc)
        from nudge_app.dropped_connections import is_dropped, mark_for_retry
        from nudge_app.extensions import db
        from nudge_app.logs import route_of_request

        db.session.rollback()
        if is_dropped(exc):
            retry = mark_for_retry()
            log.warning(
                "database connection dropped on %s %s (%s)",
                request.method,
                route_of_request(),
                "retrying" if retry else "answered 503",
            )
            unavailable = ServiceUnavailable(
                "The connection to the database was interrupted. Nothing was saved: "
                "please try again."
            )
            response = make_response(http_error(unavailable))
            response.headers["Retry-After"] = "1"
            return response
        # The route's rule, not the path: paths carry personal link tokens.
        log.exception("unhandled error on %s %s", request.method, route_of_request())
        if wants_json():
            return jsonify(
                {
                    "error": "internal_error",
                    "message": "Something went wrong on our side. Nothing was saved.",
                    "details": None,
                }
            ), 500
        return render_template(_error_page(), error=None), 500
