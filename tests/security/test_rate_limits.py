"""Findings: rate limits lived in each worker's memory (under several workers 302 of 400
attempts got through before a 429), and the login throttle could be raced. Now several
workers count in Redis together, `nudge serve --workers N` with per-process storage
refuses to start, and racing sign-ins never pass the limit."""

from __future__ import annotations

import os
import socket
import uuid
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests
from security_helpers import csrf_of

REDIS = ("127.0.0.1", 6379)


def _redis_or_skip() -> None:
    try:
        socket.create_connection(REDIS, timeout=2).close()
    except OSError:
        if os.environ.get("CI") == "true":
            pytest.fail("Redis is not running at 127.0.0.1:6379 (.ci/run starts it)")
        pytest.skip("Redis is not running at 127.0.0.1:6379")


def test_several_workers_with_per_process_limits_refuse_to_start(tmp_path, serve_process):
    env = {
        "DATABASE_URL": f"sqlite:///{tmp_path / 'n.sqlite3'}",
        "NUDGE_INSTANCE_PATH": str(tmp_path),
    }
    server = serve_process(env, ["--workers", "2"], wait=False)
    assert server.proc.wait(timeout=60) != 0
    output = server.stop()
    assert "NUDGE_RATELIMIT_STORAGE" in output and "--workers 2" in output


def test_two_workers_share_one_count_in_redis(tmp_path, serve_process):
    _redis_or_skip()
    env = {
        "DATABASE_URL": f"sqlite:///{tmp_path / 'n.sqlite3'}",
        "NUDGE_INSTANCE_PATH": str(tmp_path),
        "NUDGE_RATELIMIT_STORAGE": "redis://127.0.0.1:6379/0",
        "NUDGE_RATELIMIT_KEY_PREFIX": f"nudge-test-{uuid.uuid4().hex}",
    }
    server = serve_process(env, ["--workers", "2", "--threads", "2"])
    # A fresh connection for each request, so both workers take requests.
    codes = [
        requests.get(
            f"{server.base}/p/ping", timeout=10, headers={"Connection": "close"}
        ).status_code
        for _ in range(150)
    ]
    # The participant pages allow 120 a minute per client: across both workers together.
    assert codes.count(200) == 120 and codes.count(429) == 30, (codes.count(200), codes.count(429))
    assert codes.index(429) == 120


def test_racing_sign_ins_never_pass_the_throttle(served, staff):
    email = staff("testshire", "designer").email
    attempts = 40
    sessions = []
    for _ in range(attempts):  # each "attacker" holds a form with its own CSRF token
        s = requests.Session()
        sessions.append((s, csrf_of(s.get(f"{served}/login", timeout=10).text)))

    def attempt(pair):
        s, token = pair
        return s.post(
            f"{served}/login",
            data={"email": email, "password": "wrong password!!", "csrf_token": token},
            allow_redirects=False,
            timeout=60,
        ).status_code

    with ThreadPoolExecutor(max_workers=20) as pool:
        codes = list(pool.map(attempt, sessions))
    assert codes.count(401) == 10 and codes.count(429) == attempts - 10, codes
    # The right password is refused too while the window lasts.
    s, token = sessions[0]
    right = s.post(
        f"{served}/login",
        data={"email": email, "password": "correct horse battery staple", "csrf_token": token},
        allow_redirects=False,
        timeout=30,
    )
    assert right.status_code == 429 and int(right.headers["Retry-After"]) > 0
