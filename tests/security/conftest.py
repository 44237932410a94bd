"""The security review, replayed: fixtures that serve the real app over HTTP and act as a
browser (cookies, CSRF tokens from the pages) or as an attacker would."""

from __future__ import annotations

import os
import threading

import pytest
from security_helpers import PASSWORD, Serve


@pytest.fixture
def served(app, db_session):
    """The test app (CSRF on, as in production) served over HTTP in a thread: base URL."""
    from werkzeug.serving import make_server

    app.config["WTF_CSRF_ENABLED"] = True
    db_session.commit()
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        thread.join(timeout=10)
        server.server_close()


@pytest.fixture
def staff(make_council, db_session):
    """staff(council_slug, role, email=None) -> the user (password PASSWORD)."""
    from nudge_app.services.councils import council_by_slug
    from nudge_app.services.staff import create_user

    def make(council_slug: str = "testshire", role: str = "admin", email: str | None = None):
        council = council_by_slug(council_slug) or make_council(council_slug)
        user = create_user(council, email or f"{role}@{council_slug}.gov.uk", role, PASSWORD)
        db_session.commit()
        return user

    return make


@pytest.fixture
def serve_process():
    """serve_process(env_overrides, args) -> a started Serve; stopped after the test."""
    started: list[Serve] = []

    def start(overrides: dict, args: list[str] | None = None, wait: bool = True) -> Serve:
        env = {
            k: v for k, v in os.environ.items() if k != "SECRET_KEY" and not k.startswith("NUDGE_")
        }
        env.update(overrides)
        server = Serve(env, args)
        started.append(server)
        return server.wait() if wait else server

    yield start
    for server in started:
        server.stop()


@pytest.fixture
def signed_in_designer(app, council, db_session):
    """(test client signed in as a designer with CSRF on, council, CSRF token)."""
    import re

    from nudge_app.services.staff import create_user

    app.config["WTF_CSRF_ENABLED"] = True
    user = create_user(council, "designer@testshire.gov.uk", "designer", PASSWORD)
    db_session.commit()
    client = app.test_client()
    page = client.get("/login").get_data(as_text=True)
    token = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)
    response = client.post(
        "/login", data={"email": user.email, "password": PASSWORD, "csrf_token": token}
    )
    assert response.status_code == 302
    page = client.get("/").get_data(as_text=True)
    token = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)
    return client, council, token


@pytest.fixture
def api_token(app, db_session):
    """api_token(council) -> bearer headers for a fresh token of that council."""
    from nudge_app.services.staff import create_token

    def make(council):
        secret = create_token(council, "security-tests").secret
        db_session.commit()
        return {"Authorization": f"Bearer {secret}"}

    return make
