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
                time.sleep(0.05)
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


N = 40  # residents in a populated campaign


def residents_csv(n: int = N) -> str:
    rows = ["external_ref,first_name,email,phone,age,gender,se_safety,se_environment,se_health"]
    for i in range(n):
        rows.append(
            f"REF{i:03d},Zelda{i:03d},zelda{i:03d}@example.org,+4477009{i:05d},"
            f"{20 + i},{'woman' if i % 2 else 'man'},{1 + i % 5},{1 + (i * 3) % 5},{1 + (i * 2) % 5}"
        )
    return "\n".join(rows) + "\n"


def staff_client(app, council, role="admin"):
    from nudge_app.auth import SESSION_ID
    from nudge_app.extensions import db
    from nudge_app.services import staff_sessions
    from nudge_app.services.staff import create_user

    user = create_user(
        council, f"{role}-dp@{council.slug}.gov.uk", role, "a long enough passphrase"
    )
    token = staff_sessions.start(user)
    db.session.commit()
    client = app.test_client()
    with client.session_transaction() as session:
        session[SESSION_ID] = token
    return client


def walk(client, token: str, join: bool, survey: bool) -> None:
    assert client.get(f"/p/{token}").status_code == 200
    client.post(f"/p/{token}/consent", data={"decision": "agree"})
    client.post(f"/p/{token}/baseline", data={"decision": "confirm"})
    assert client.get(f"/p/{token}").status_code == 200  # the arm's page: exposure
    if join:
        client.post(f"/p/{token}/join", data={"contact": "email"})
    if survey:
        answers = {"participated": "yes", "se_safety": "4", "se_environment": "4", "se_health": "5"}
        client.post(f"/p/{token}/follow-up", data=answers)


def populated_campaign(app, council, make_campaign, people: int = N, design="council-consultation"):
    """A running list campaign whose residents got their messages and went through the
    pages (consent, baseline, the arm's page; a third joined, half answered the survey):
    enough for an effect report."""
    from datetime import timedelta

    from sqlalchemy import select

    from nudge_app.extensions import db
    from nudge_app.models import Participant
    from nudge_app.scheduler import run_once
    from nudge_app.services import enrolment
    from nudge_app.services.participants_import import import_csv

    campaign = make_campaign(council, design, status="running")
    import_csv(campaign, residents_csv(people))
    db.session.commit()
    run_once(app, now=(campaign.launched_at + timedelta(days=1)).replace(hour=12))
    db.session.rollback()  # the scheduler wrote in its own session: read afresh
    found = db.session.scalars(
        select(Participant).where(Participant.campaign_id == campaign.id).order_by(Participant.id)
    ).all()
    resident = app.test_client()
    for i, person in enumerate(found[: people * 3 // 4]):
        walk(resident, enrolment.token_of(person), join=i % 3 == 0, survey=i % 2 == 0)
    db.session.rollback()
    return campaign, found
