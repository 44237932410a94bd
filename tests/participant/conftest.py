"""Fixtures for the participant pages: campaigns with people in them, form helpers."""

from __future__ import annotations

import pytest
from participant_helpers import csrf_of


@pytest.fixture
def make_person(app):
    """make_person(campaign, **fields) -> (participant, token): a listed resident."""
    from nudge_app.extensions import db
    from nudge_app.services import enrolment

    def make(campaign, **fields):
        fields.setdefault("first_name", "Ann")
        fields.setdefault("email", "ann@example.org")
        participant = enrolment.new_participant(campaign, **fields)
        db.session.commit()
        return participant, enrolment.token_of(participant)

    return make


@pytest.fixture
def running(council, make_campaign):
    """The self-efficacy clean-up campaign (survey-first), launched."""
    return make_campaign(council, status="running")


@pytest.fixture
def journey(client):
    """Helpers that walk a person through the pages with the test client."""

    class Journey:
        def get(self, url, **kw):
            return client.get(url, **kw)

        def post_form(self, page_url, post_url, data):
            """Open the page, then post its form (with its CSRF token if it has one)."""
            html = client.get(page_url).get_data(as_text=True)
            token = {"csrf_token": csrf_of(html)} if "csrf_token" in html else {}
            return client.post(post_url, data={**token, **data})

        def consent(self, token):
            return self.post_form(f"/p/{token}", f"/p/{token}/consent", {"decision": "agree"})

        def baseline(self, token, **answers):
            data = {
                "age": "34",
                "gender": "woman",
                "se_safety": "2",
                "se_environment": "3",
                "se_health": "4",
                **answers,
            }
            return self.post_form(f"/p/{token}", f"/p/{token}/baseline", data)

        def join(self, token, **data):
            return self.post_form(f"/p/{token}", f"/p/{token}/join", data)

    return Journey()
