"""Helpers of the security tests: free ports, signing in as a browser would, and
`nudge serve` as a separate process."""

from __future__ import annotations

import re
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PASSWORD = "correct horse battery staple"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def csrf_of(html: str) -> str:
    match = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', html)
    assert match, "no CSRF token on the page"
    return match.group(1)


def browser_sign_in(base: str, email: str, password: str = PASSWORD, **extra):
    """A requests.Session signed in through the login form (302 expected)."""
    import requests

    s = requests.Session()
    token = csrf_of(s.get(f"{base}/login", timeout=10).text)
    response = s.post(
        f"{base}/login",
        data={"email": email, "password": password, "csrf_token": token, **extra},
        allow_redirects=False,
        timeout=30,
    )
    return s, response


class Serve:
    """`nudge serve` as a separate process, as the README starts it."""

    def __init__(self, env: dict, args: list[str] | None = None):
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "nudge_app.cli",
                "serve",
                "--port",
                str(self.port),
                *(args or []),
            ],
            cwd=ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )

    def wait(self, timeout: float = 40) -> Serve:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"nudge serve exited: {self.proc.stdout.read()}")
            try:
                with urllib.request.urlopen(f"{self.base}/healthz", timeout=2) as r:
                    if r.status == 200:
                        return self
            except OSError:
                time.sleep(0.3)
        raise AssertionError("nudge serve did not answer in time")

    def stop(self) -> str:
        if self.proc.stdout.closed:
            return self.output
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.output = self.proc.stdout.read()
        self.proc.stdout.close()
        return self.output
