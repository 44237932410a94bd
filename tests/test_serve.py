"""`nudge serve` starts gunicorn, migrates a new database first, and answers /healthz."""

from __future__ import annotations

import json
import os
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
    )
    proc = subprocess.Popen(
        [sys.executable, "-m", "nudge_app.cli", "serve", "--port", str(port)],
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
                time.sleep(0.3)
        assert body is not None, "server did not answer within 30 s"
        assert body == {"status": "ok", "schema_revision": schema_head, "database": "sqlite"}
        assert "gunicorn" in server.lower()
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=20)
        proc.stdout.close()
