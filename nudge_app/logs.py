"""Structured logs: one JSON object per line, with the request id, and no personal data.

`configure(format, level)` sets up the process's root logger (the CLI's `serve`,
`scheduler` and the dispatch worker call it); `init_app(app)` gives every request an id
(the caller's `X-Request-ID` when it is a plain token, else a new one), returns it in the
response header, adds it to every log line written while the request runs, and writes
one access line per request naming the route's rule (`/p/<token>`), never its path, so
personal link tokens and other identifiers stay out of the logs.
"""

from __future__ import annotations

import json
import logging
import re
import sys
import time
import uuid
from datetime import UTC, datetime

from flask import Flask, g, has_request_context, request

REQUEST_ID = re.compile(r"^[A-Za-z0-9._-]{8,64}$")
# Attributes every LogRecord has; anything else was passed in `extra` and is logged too.
_STANDARD = set(vars(logging.makeLogRecord({}))) | {"message", "asctime", "request_id"}

access_log = logging.getLogger("nudge_app.access")


class RequestIdFilter(logging.Filter):
    """Adds `request_id` to records written inside a request (None elsewhere)."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = g.get("request_id") if has_request_context() else None
        return True


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        if getattr(record, "request_id", None):
            entry["request_id"] = record.request_id
        entry.update({k: v for k, v in vars(record).items() if k not in _STANDARD})
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str)


TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


class _Handler(logging.StreamHandler):
    """Ours, so a second `configure` replaces it rather than adding another."""


def configure(fmt: str = "json", level: int | str = logging.INFO) -> None:
    """Send the process's logs to stderr, as JSON lines or plain text.

    As `logging.basicConfig`, it leaves alone a process whose logging someone else set up
    (a test runner capturing logs).
    """
    root = logging.getLogger()
    ours = [h for h in root.handlers if isinstance(h, _Handler)]
    if root.handlers and not ours:
        return
    for old in ours:
        root.removeHandler(old)
    handler = _Handler(sys.stderr)
    handler.setFormatter(JsonFormatter() if fmt == "json" else logging.Formatter(TEXT_FORMAT))
    handler.addFilter(RequestIdFilter())
    root.addHandler(handler)
    root.setLevel(level)


def route_of_request() -> str:
    """The matched route's rule (`/p/<token>`), never the path with its values."""
    return request.url_rule.rule if request.url_rule is not None else "(unmatched)"


def init_app(app: Flask) -> None:
    @app.before_request
    def _request_id():
        given = request.headers.get("X-Request-ID", "")
        g.request_id = given if REQUEST_ID.match(given) else uuid.uuid4().hex
        g.request_started = time.perf_counter()

    @app.after_request
    def _access(response):
        request_id = g.get("request_id")
        if request_id:
            response.headers["X-Request-ID"] = request_id
            access_log.info(
                "request",
                extra={
                    "method": request.method,
                    "route": route_of_request(),
                    "status": response.status_code,
                    "ms": round(1000 * (time.perf_counter() - g.request_started), 1),
                },
            )
        return response
