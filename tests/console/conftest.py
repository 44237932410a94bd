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


# Browser tests (Chromium at a desktop's width and at 375 px; console_browser.py).


@pytest.fixture(params=["desktop", "mobile"])
def viewport(request) -> str:
    return request.param


@pytest.fixture
def officer(browser, viewport, csrf_app, live_server, council, make_user, console, db_session):
    """officer() -> a signed-in designer's browser page at the viewport's size (`.base` is
    the server). Call it once the test's own data is written: the test's session commits
    first, so it holds no SQLite lock against the server."""
    from console_browser import VIEWPORTS

    width, height = VIEWPORTS[viewport]
    user = make_user(council, "designer")
    contexts = []

    def open_console():
        db_session.commit()
        context = browser.new_context(viewport={"width": width, "height": height})
        contexts.append(context)
        page = context.new_page()
        page.goto(f"{live_server.url}/login")
        page.fill("#email", user.email)
        page.fill("#password", console.password)
        page.click("button[type=submit]")
        page.wait_for_url(f"{live_server.url}/")
        page.base = live_server.url
        page.viewport_name = viewport
        return page

    yield open_console
    for context in contexts:
        context.close()
