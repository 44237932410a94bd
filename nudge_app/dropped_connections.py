"""A request whose database connection dropped under it: retried once, never a 500.

Pre-ping (SQLALCHEMY_ENGINE_OPTIONS) replaces a connection that died while idle in the
pool. One that dies between the ping and the query (a PostgreSQL restart or failover,
`pg_terminate_backend`) fails its statement; SQLAlchemy then discards it, so the same
request run again gets a fresh connection. A GET or HEAD changes nothing, so it is run
once more; any other request answers 503 with Retry-After (its transaction was rolled
back by the server, and whether a commit in flight landed cannot be known here).
"""

from __future__ import annotations

from flask import Flask, request
from sqlalchemy.exc import DBAPIError

RETRY_FLAG = "nudge.retry_dropped_connection"
RETRIED = "nudge.retried"


def is_dropped(exc: BaseException) -> bool:
    return isinstance(exc, DBAPIError) and bool(exc.connection_invalidated)


def mark_for_retry() -> bool:
    """In the error handler: ask the middleware to run this request again (True), or
    False when it cannot be retried (a write, or already retried)."""
    if request.method not in ("GET", "HEAD") or request.environ.get(RETRIED):
        return False
    request.environ[RETRY_FLAG] = True
    return True


class RetryDroppedConnection:
    """WSGI middleware: runs a request again once when the app marked it for retry."""

    def __init__(self, wsgi_app):
        self.wsgi_app = wsgi_app

    def __call__(self, environ, start_response):
        if environ.get("REQUEST_METHOD") not in ("GET", "HEAD"):
            return self.wsgi_app(environ, start_response)
        held: list = []

        def hold(status, headers, exc_info=None):
            held[:] = [status, headers, exc_info]
            return lambda data: None  # the app returns its body, never writes it

        body = self.wsgi_app(environ, hold)
        if environ.pop(RETRY_FLAG, False):
            if hasattr(body, "close"):
                body.close()
            environ[RETRIED] = True
            return self.wsgi_app(environ, start_response)
        start_response(*held)
        return body


def init_retry(app: Flask) -> None:
    app.wsgi_app = RetryDroppedConnection(app.wsgi_app)
