"""API fixtures: a council token and a live server thread on the test database."""

from __future__ import annotations

import threading

import pytest


@pytest.fixture
def api_token(app, db_session):
    """api_token(council) -> bearer headers for a fresh token of that council."""
    from nudge_app.services.staff import create_token

    def make(council):
        secret = create_token(council, "tests").secret
        db_session.commit()
        return {"Authorization": f"Bearer {secret}"}

    return make


@pytest.fixture
def live_server(app, db_session):
    """The app served by werkzeug in a thread; yields its base URL."""
    from werkzeug.serving import make_server

    db_session.commit()
    server = make_server("127.0.0.1", 0, app, threaded=False)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        thread.join(timeout=10)
        server.server_close()
