"""API fixtures: a council token."""

from __future__ import annotations

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
