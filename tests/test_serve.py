"""`nudge serve` starts gunicorn, migrates a new database first, answers /healthz and
/metrics (request counts added up over its workers), writes JSON access lines and
nothing into the home directory."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_serve_migrates_and_answers_healthz(tmp_path, schema_head):
    port = free_port()
    env = dict(
        os.environ,
        DATABASE_URL=f"sqlite:///{tmp_path / 'serve.sqlite3'}",
        NUDGE_INSTANCE_PATH=str(tmp_path),
        SECRET_KEY="x" * 40,
        # Two workers need shared rate-limit counts (serve refuses per-process ones); this
        # test is about metrics, so rate limits are off.
        NUDGE_RATELIMIT="false",
        # gunicorn 25.1+ makes ~/.gunicorn/ for a control socket unless told not to.
        HOME=str(tmp_path / "home"),
    )
    env.pop("XDG_RUNTIME_DIR", None)
    (tmp_path / "home").mkdir()
    proc = subprocess.Popen(
        [sys.executable, "-m", "nudge_app.cli", "serve", "--port", str(port), "--workers", "2"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 30
        body = None
        while time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2) as r:
                    assert r.status == 200
                    body = json.loads(r.read())
                    server = r.headers.get("Server", "")
                break
            except OSError:
                time.sleep(0.05)
        assert body is not None, "server did not answer within 30 s"
        assert body["schema_revision"] == schema_head and body["database"] == "sqlite"
        assert body["scheduler"]["state"] == "never" and body["outbox"]["due"] == 0
        assert "gunicorn" in server.lower()
        for _ in range(3):
            urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=5).close()
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as r:
            metrics = r.read().decode()
        # At least the four answered above, whichever worker served each.
        count = re.search(
            r'nudge_http_requests_total\{method="GET",route="/healthz",status="200"\} (\S+)',
            metrics,
        )
        assert count and float(count.group(1)) >= 4, metrics[:2000]
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=20)
        output = proc.stdout.read().decode()
        proc.stdout.close()
    assert list((tmp_path / "home").iterdir()) == [], "serve wrote into the home directory"
    access = [json.loads(x) for x in output.splitlines() if '"nudge_app.access"' in x]
    assert access and all(x["request_id"] and x["route"] for x in access), output[-2000:]
