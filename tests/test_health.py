"""Operations: `/healthz` (scheduler and backlog; the revision only for this machine),
`/metrics` (Prometheus, local or with a token) and JSON log lines with a request id."""

from __future__ import annotations

import io
import json
import logging
import re
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import update

PUBLIC = {"REMOTE_ADDR": "203.0.113.5"}


def test_healthz_for_this_machine_shows_revision_and_database_kind(
    client, database_url, schema_head
):
    response = client.get("/healthz")
    assert response.status_code == 200
    body = response.get_json()
    assert body["schema_revision"] == schema_head
    assert body["database"] == database_url.split(":")[0].split("+")[0]
    assert body["status"] == "scheduler not running"
    assert body["scheduler"] == {"state": "never", "last_run_seconds_ago": None,
                                 "lag_seconds": None}  # fmt: skip
    assert body["outbox"] == {"due": 0, "oldest_due_age_seconds": 0.0}


def test_healthz_reports_backlog_and_a_late_scheduler_to_the_public_without_revision(
    app, client, council, make_campaign, db_session
):
    from nudge_app.models import OutboundMessage, Participant, SchedulerHeartbeat
    from nudge_app.scheduler.heartbeat import beat
    from nudge_app.security import new_nonce, sha256_hex

    c = make_campaign(council, "council-consultation", status="running")
    for k in range(3):
        p = Participant(campaign_id=c.id, access_nonce=new_nonce(),
                        access_token_hash=sha256_hex(new_nonce()), email=f"p{k}@example.org")  # fmt: skip
        db_session.add(p)
        db_session.flush()
        db_session.add(OutboundMessage(
            campaign_id=c.id, participant_id=p.id, kind="nudge", channel="email",
            due_at=datetime.now(UTC) - timedelta(minutes=10 * (k + 1)), status="pending",
            idempotency_key=f"k{k}",
        ))  # fmt: skip
    beat("host:1:x", "scheduler", datetime.now(UTC), lag_seconds=12.5)
    db_session.execute(
        update(SchedulerHeartbeat).values(beat_at=datetime.now(UTC) - timedelta(minutes=5))
    )
    db_session.commit()
    body = client.get("/healthz", environ_base=PUBLIC).get_json()
    assert "schema_revision" not in body and "database" not in body
    assert body["status"] == "scheduler not running"
    assert body["scheduler"]["state"] == "late" and body["scheduler"]["lag_seconds"] == 12.5
    assert 299 <= body["scheduler"]["last_run_seconds_ago"] <= 330
    assert body["outbox"]["due"] == 3
    assert 1799 <= body["outbox"]["oldest_due_age_seconds"] <= 1830
    # The same figures in Prometheus' format for this machine.
    text = client.get("/metrics").get_data(as_text=True)
    assert "nudge_outbox_due_messages 3.0" in text
    assert 'nudge_outbox_messages{status="pending"} 3.0' in text
    assert "nudge_scheduler_up 0.0" in text
    assert "nudge_scheduler_lag_seconds 12.5" in text


def test_healthz_on_an_unmigrated_database_says_so(tmp_path):
    from nudge_app import create_app

    app = create_app(
        {
            "SQLALCHEMY_DATABASE_URI": f"sqlite:///{tmp_path / 'empty.sqlite3'}",
            "INSTANCE_PATH": str(tmp_path),
            "TESTING": True,
        }
    )
    response = app.test_client().get("/healthz")
    assert response.status_code == 503
    assert "schema_revision" not in response.get_json()


def test_metrics_count_requests_by_route_and_status_and_sends_by_channel(
    app, client, council, make_campaign, db_session
):
    from nudge_app.models import OutboundMessage, Participant
    from nudge_app.security import new_nonce, sha256_hex

    c = make_campaign(council, "council-consultation", status="running")
    for k, (status, provider) in enumerate([("sent", "file"), ("delivered", "notify"),
                                            ("failed", "notify"), ("failed", None)]):  # fmt: skip
        p = Participant(campaign_id=c.id, access_nonce=new_nonce(),
                        access_token_hash=sha256_hex(new_nonce()), email=f"p{k}@example.org")  # fmt: skip
        db_session.add(p)
        db_session.flush()
        db_session.add(OutboundMessage(
            campaign_id=c.id, participant_id=p.id, kind="nudge", channel="email",
            due_at=datetime.now(UTC), status=status, provider=provider, idempotency_key=f"k{k}",
        ))  # fmt: skip
    db_session.commit()
    line = re.compile(
        r'^nudge_http_requests_total\{method="GET",route="/p/<token>",status="404"\} (\S+)$', re.M
    )

    def count(text: str) -> float:  # the counters are the process's: count from here
        found = line.search(text)
        return float(found.group(1)) if found else 0.0

    before = count(client.get("/metrics").get_data(as_text=True))
    for _ in range(3):
        client.get("/p/not-a-real-token-0123456789")
    text = client.get("/metrics").get_data(as_text=True)
    assert count(text) == before + 3
    assert "not-a-real-token" not in text  # the rule, never the path
    assert 'nudge_messages_sent_total{channel="file",medium="email"} 1.0' in text
    assert 'nudge_messages_sent_total{channel="notify",medium="email"} 1.0' in text
    assert 'nudge_messages_failed_total{channel="notify",medium="email"} 1.0' in text
    assert 'nudge_messages_failed_total{channel="none",medium="email"} 1.0' in text
    assert "nudge_enrolments_total 0.0" in text
    assert "nudge_outbox_oldest_due_age_seconds 0.0" in text


def test_metrics_are_for_this_machine_or_the_token_holder(app, client):
    assert client.get("/metrics").status_code == 200
    refused = client.get("/metrics", environ_base=PUBLIC)
    assert refused.status_code == 403 and "metrics token" in refused.get_json()["message"]
    app.config["METRICS_TOKEN"] = "s3cret-metrics-token"
    assert client.get("/metrics").status_code == 403  # a token, once set, is always needed
    wrong = {"Authorization": "Bearer nope"}
    assert client.get("/metrics", environ_base=PUBLIC, headers=wrong).status_code == 403
    good = {"Authorization": "Bearer s3cret-metrics-token"}
    assert client.get("/metrics", environ_base=PUBLIC, headers=good).status_code == 200
    assert "schema_revision" in client.get("/healthz", headers=good).get_json()


@pytest.fixture
def json_lines():
    """The JSON log lines `nudge serve` would write (its handler, on a string buffer)."""
    from nudge_app.logs import JsonFormatter, RequestIdFilter

    buffer = io.StringIO()
    handler = logging.StreamHandler(buffer)
    handler.setFormatter(JsonFormatter())
    handler.addFilter(RequestIdFilter())
    root = logging.getLogger()
    root.addHandler(handler)
    level = root.level
    root.setLevel(logging.INFO)
    yield lambda: [json.loads(line) for line in buffer.getvalue().splitlines()]
    root.removeHandler(handler)
    root.setLevel(level)


def test_json_access_lines_carry_the_request_id_and_no_path(client, json_lines):
    token = "not-a-real-token-0123456789"
    response = client.get(f"/p/{token}", headers={"X-Request-ID": "trace-4242-abcd"})
    assert response.headers["X-Request-ID"] == "trace-4242-abcd"
    made_up = client.get("/healthz", headers={"X-Request-ID": "bad id with spaces"})
    new_id = made_up.headers["X-Request-ID"]
    assert len(new_id) == 32 and " " not in new_id
    access = [x for x in json_lines() if x["logger"] == "nudge_app.access"]
    assert access[0]["request_id"] == "trace-4242-abcd"
    assert (access[0]["route"], access[0]["status"], access[0]["method"]) == (
        "/p/<token>", 404, "GET",
    )  # fmt: skip
    assert access[1]["request_id"] == new_id and access[1]["route"] == "/healthz"
    assert all(token not in json.dumps(x) for x in json_lines())
