"""Finding (HIGH): `nudge serve` without SECRET_KEY signed sessions with a fixed, published
development key, so anyone could forge an admin session. Now the server is started the way
the README starts it (no secret in the environment): it makes a random key in the instance
folder (owner-only), says so, reuses it, and a cookie signed with any fixed development key
is refused, while the same cookie signed with the real key passes (the control)."""

from __future__ import annotations

import os
import stat
import subprocess
import sys

import requests
from flask import Flask
from security_helpers import PASSWORD, ROOT, browser_sign_in

FIXED_KEYS = ("dev-only-not-secret", "testing-secret-key", "dev", "secret", "change-me")


def _sign(key: str, payload: dict) -> str:
    signer = Flask("forger")
    signer.secret_key = key
    return signer.session_interface.get_signing_serializer(signer).dumps(payload)


def _read(key: str, cookie: str) -> dict:
    signer = Flask("reader")
    signer.secret_key = key
    return signer.session_interface.get_signing_serializer(signer).loads(cookie)


def _cli(env: dict, *args: str, stdin: str = "") -> str:
    result = subprocess.run(
        [sys.executable, "-m", "nudge_app.cli", *args],
        cwd=ROOT, env=env, input=stdin, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


def _console(base: str, cookie: str) -> requests.Response:
    return requests.get(
        f"{base}/admin/users", cookies={"session": cookie}, allow_redirects=False, timeout=10
    )


def test_server_without_secret_key_makes_its_own_and_refuses_forged_cookies(
    tmp_path, serve_process
):
    instance = tmp_path / "instance"
    env = {
        "DATABASE_URL": f"sqlite:///{tmp_path / 'nudge.sqlite3'}",
        "NUDGE_INSTANCE_PATH": str(instance),
    }
    server = serve_process(env)
    key_file = instance / "secret_key"
    assert key_file.exists()
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert stat.S_IMODE(instance.stat().st_mode) == 0o700
    key = key_file.read_text().strip()
    assert len(key) >= 32 and key not in FIXED_KEYS

    cli_env = {k: v for k, v in os.environ.items() if k != "SECRET_KEY"} | env
    _cli(cli_env, "council", "create", "forgeshire", "--name", "Forgeshire")
    _cli(cli_env, "user", "create", "--council", "forgeshire", "--email", "admin@forgeshire.gov.uk",
         "--role", "admin", "--password-stdin", stdin=PASSWORD + "\n")  # fmt: skip

    session, response = browser_sign_in(server.base, "admin@forgeshire.gov.uk")
    assert response.status_code == 302
    real_cookie = session.cookies["session"]
    assert _console(server.base, real_cookie).status_code == 200
    payload = _read(key, real_cookie)  # the server signs with the file's key
    assert set(payload) >= {"sid"}

    for fixed in FIXED_KEYS:
        # The genuine session id, and the old cookie shape, signed with a published key.
        for forged in (_sign(fixed, payload), _sign(fixed, {"staff_id": 1, "_permanent": True})):
            refused = _console(server.base, forged)
            assert refused.status_code == 302 and "/login" in refused.headers["Location"]
    # The control: the same payload signed with the real key is accepted.
    assert _console(server.base, _sign(key, payload)).status_code == 200

    output = server.stop()
    assert "SECRET_KEY is not set" in output and str(key_file) in output and "created" in output

    again = serve_process(env)  # the same key is reused: the session survives a restart
    assert key_file.read_text().strip() == key
    assert _console(again.base, real_cookie).status_code == 200
    assert "reused" in again.stop()


def test_production_still_refuses_to_start_without_a_key(tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "SECRET_KEY"}
    env.update(NUDGE_ENV="production", DATABASE_URL=f"sqlite:///{tmp_path / 'p.sqlite3'}",
               NUDGE_INSTANCE_PATH=str(tmp_path / "i"))  # fmt: skip
    result = subprocess.run(
        [sys.executable, "-m", "nudge_app.cli", "serve", "--port", "1"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert result.returncode != 0 and "production needs SECRET_KEY" in result.stdout + result.stderr
    assert not (tmp_path / "i" / "secret_key").exists()
