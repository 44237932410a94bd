"""Prometheus metrics at `/metrics` (prometheus-client), for this machine or a token holder.

Two kinds of figures:
- per process, counted as requests are served: requests by route (the rule, never the
  path) and status, and their duration. Under `nudge serve` (several gunicorn workers)
  prometheus-client's multiprocess mode adds the workers' counts up.
- from the database at each scrape, so every process and the scheduler agree: enrolments
  (randomized participants), the outbox's depth by status and the age of its oldest due
  message, sends and failures by channel, and the scheduler's lag and heartbeat age.

`/metrics` answers requests carrying `Authorization: Bearer <METRICS_TOKEN>`; without a
token set, only requests from this machine (behind a reverse proxy, set
NUDGE_TRUSTED_PROXIES so the client's own address is seen).
"""

from __future__ import annotations

import hmac
import time

from flask import Flask, Response, current_app, g, jsonify, request
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
    multiprocess,
)
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from sqlalchemy import func, select

from nudge_app.db import utcnow
from nudge_app.extensions import db

LOCAL_ADDRESSES = ("127.0.0.1", "::1")

REQUESTS = Counter(
    "nudge_http_requests", "HTTP requests served, by route rule, method and status",
    ["route", "method", "status"], registry=None,
)  # fmt: skip
LATENCY = Histogram(
    "nudge_http_request_duration_seconds", "Time to answer a request, by route rule", ["route"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10), registry=None,
)  # fmt: skip


def allowed() -> bool:
    """Whether this request may see operational details (metrics, the schema revision)."""
    token = current_app.config.get("METRICS_TOKEN")
    if token:
        given = request.headers.get("Authorization", "")
        return hmac.compare_digest(given.encode(), f"Bearer {token}".encode())
    return request.remote_addr in LOCAL_ADDRESSES


class DatabaseCollector:
    """Figures read from the database at scrape time (needs an app context)."""

    def collect(self):
        from nudge_app.delivery import queries
        from nudge_app.models import Assignment, OutboundMessage
        from nudge_app.scheduler.heartbeat import scheduler_status

        now = utcnow()
        enrolments = CounterMetricFamily("nudge_enrolments", "Participants randomized")
        enrolments.add_metric([], db.session.scalar(select(func.count(Assignment.id))))
        yield enrolments

        M = OutboundMessage
        rows = db.session.execute(
            select(M.provider, M.channel, M.status, func.count())
            .group_by(M.provider, M.channel, M.status)
        ).all()  # fmt: skip
        depth = GaugeMetricFamily("nudge_outbox_messages", "Messages not final, by status",
                                  labels=["status"])  # fmt: skip
        sent = CounterMetricFamily("nudge_messages_sent", "Messages a provider accepted",
                                   labels=["channel", "medium"])  # fmt: skip
        failed = CounterMetricFamily("nudge_messages_failed", "Messages that failed for good",
                                     labels=["channel", "medium"])  # fmt: skip
        open_by_status = dict.fromkeys(queries.OPEN_STATUSES, 0)
        for provider, medium, status, n in rows:
            if status in open_by_status:
                open_by_status[status] += n
            elif status in ("sent", "delivered"):
                sent.add_metric([provider or "none", medium], n)
            elif status == "failed":
                failed.add_metric([provider or "none", medium], n)
        for status, n in open_by_status.items():
            depth.add_metric([status], n)
        yield from (depth, sent, failed)

        due, oldest = queries.backlog(now)
        yield GaugeMetricFamily("nudge_outbox_due_messages", "Messages due and not yet sent",
                                value=due)  # fmt: skip
        age = (now - oldest).total_seconds() if oldest else 0.0
        yield GaugeMetricFamily("nudge_outbox_oldest_due_age_seconds",
                                "How long the oldest due message has waited", value=age)  # fmt: skip

        status = scheduler_status(now, float(current_app.config["SCHEDULER_STALE_SECONDS"]))
        yield GaugeMetricFamily("nudge_scheduler_up", "1 if the scheduler beat recently",
                                value=1 if status.ok else 0)  # fmt: skip
        if status.last_beat_at is not None:
            yield GaugeMetricFamily("nudge_scheduler_lag_seconds",
                                    "How far behind schedule the scheduler's jobs run",
                                    value=status.lag_seconds or 0.0)  # fmt: skip
            yield GaugeMetricFamily("nudge_scheduler_heartbeat_age_seconds",
                                    "Seconds since the scheduler's last heartbeat",
                                    value=status.age_seconds)  # fmt: skip


def _registry() -> CollectorRegistry:
    """This scrape's registry: the request counters (all workers' under gunicorn) and the
    database figures."""
    registry = CollectorRegistry()
    folder = current_app.config.get("METRICS_MULTIPROCESS_DIR")
    if folder:
        multiprocess.MultiProcessCollector(registry, path=folder)
    else:
        for collector in (REQUESTS, LATENCY):
            registry.register(collector)
    registry.register(DatabaseCollector())
    return registry


def metrics():
    if not allowed():
        return jsonify(
            error="forbidden",
            message="metrics are served to this machine only, or with the metrics token",
        ), 403
    body = generate_latest(_registry())
    return Response(body, content_type=CONTENT_TYPE_LATEST)


def init_app(app: Flask) -> None:
    """Count every request by its route rule and status."""

    @app.before_request
    def _started():
        g.metrics_started = time.perf_counter()

    @app.after_request
    def _count(response):
        started = g.get("metrics_started")
        if started is not None:
            from nudge_app.logs import route_of_request

            route = route_of_request()
            key = (route, request.method, response.status_code)
            children = _children.get(key)
            if children is None:
                children = _children[key] = (
                    REQUESTS.labels(route, request.method, str(response.status_code)),
                    LATENCY.labels(route),
                )
            children[0].inc()
            children[1].observe(time.perf_counter() - started)
        return response


# (route, method, status) -> its counter and histogram, looked up once per process.
_children: dict[tuple, tuple] = {}
