"""Console fixtures: staff users of each role and a signed-in client (with CSRF on)."""

from __future__ import annotations

import html
import re

import pytest

PASSWORD = "correct horse battery staple"


@pytest.fixture
def csrf_app(app):
    """The app with CSRF protection switched on, as in production."""
    app.config["WTF_CSRF_ENABLED"] = True
    return app


@pytest.fixture
def make_user(app, db_session):
    from nudge_app.services.staff import create_user

    def make(council, role: str = "designer", email: str | None = None):
        user = create_user(council, email or f"{role}@{council.slug}.gov.uk", role, PASSWORD)
        db_session.commit()
        return user

    return make


def csrf_token(client, path: str = "/login") -> str:
    page = client.get(path).get_data(as_text=True)
    match = re.search(r'name="csrf_token" value="([^"]+)"', page)
    assert match, f"no CSRF token on {path}"
    return match.group(1)


def sign_in(client, email: str, password: str = PASSWORD):
    token = csrf_token(client)
    return client.post("/login", data={"email": email, "password": password, "csrf_token": token})


@pytest.fixture
def signed_in(csrf_app, make_user):
    """signed_in(council, role) -> (client, user, csrf token) for a fresh client."""

    def make(council, role: str = "designer"):
        user = make_user(council, role)
        client = csrf_app.test_client()
        response = sign_in(client, user.email)
        assert response.status_code == 302, response.get_data(as_text=True)
        return client, user, csrf_token(client, "/")

    return make


def errors_beside(page: str, field_id: str) -> list[str]:
    """The error messages shown beside a form field (GOV.UK pattern, `_form.html`)."""
    found = re.findall(
        rf'<p class="error-message" id="{re.escape(field_id)}-error[^"]*">'
        r'<span class="visually-hidden">Error:</span> (.*?)</p>',
        page,
        flags=re.S,
    )
    return [html.unescape(m) for m in found]


@pytest.fixture
def console():
    """Helpers: console.sign_in(client, email, password), console.csrf(client, path),
    console.errors(page, field_id) (the messages beside a field)."""
    from types import SimpleNamespace

    return SimpleNamespace(
        sign_in=sign_in, csrf=csrf_token, password=PASSWORD, errors=errors_beside
    )
