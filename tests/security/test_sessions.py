"""Findings: logout did not end the session (a client-side cookie valid 31 days), weak
password rules with no change or reset, an open redirect after login, and staff emails
leaking across councils. Replayed over HTTP against the served app."""

from __future__ import annotations

from datetime import timedelta

import pytest
import requests
from security_helpers import PASSWORD, browser_sign_in, csrf_of
from sqlalchemy import select, update

NEW_PASSWORD = "plum orchard violin seventeen"


def _page(session: requests.Session, url: str) -> requests.Response:
    return session.get(url, allow_redirects=False, timeout=10)


def _signed_out(response: requests.Response) -> bool:
    return response.status_code == 302 and "/login" in response.headers["Location"]


def _replay(base: str, cookie: str) -> requests.Response:
    """The stolen cookie, sent by someone else."""
    return requests.get(f"{base}/", cookies={"session": cookie}, allow_redirects=False, timeout=10)


def test_logout_ends_the_session_on_the_server(served, staff):
    user = staff("testshire", "designer")
    browser, _ = browser_sign_in(served, user.email)
    cookie = browser.cookies["session"]
    assert _replay(served, cookie).status_code == 200
    token = csrf_of(_page(browser, f"{served}/").text)
    assert browser.post(f"{served}/logout", data={"csrf_token": token}, timeout=10).ok
    assert _signed_out(_replay(served, cookie))  # the old cookie is dead


@pytest.mark.parametrize("how", ["role", "deactivate", "reset"])
def test_an_admin_change_ends_the_users_sessions(served, staff, how):
    admin = staff("testshire", "admin")
    user = staff("testshire", "designer")
    victim, _ = browser_sign_in(served, user.email)
    cookie = victim.cookies["session"]
    assert _replay(served, cookie).status_code == 200
    boss, _ = browser_sign_in(served, admin.email)
    token = csrf_of(_page(boss, f"{served}/admin/users").text)
    if how == "reset":
        answer = boss.post(
            f"{served}/admin/users/{user.id}/reset-password", data={"csrf_token": token}, timeout=30
        )
        temporary = answer.text.split('id="temporary-password">')[1].split("<")[0]
    else:
        data = {"role": "evaluator"} if how == "role" else {"active": "0"}
        answer = boss.post(f"{served}/admin/users/{user.id}", data={"csrf_token": token, **data})
    assert answer.ok
    assert _signed_out(_replay(served, cookie))
    if how == "reset":  # the temporary password opens only the password page
        again, response = browser_sign_in(served, user.email, temporary)
        assert response.status_code == 302
        forced = _page(again, f"{served}/campaigns/new")
        assert forced.status_code == 302 and forced.headers["Location"].endswith(
            "/account/password"
        )
        assert PASSWORD not in answer.text and temporary != PASSWORD


def test_password_change_ends_other_sessions_and_keeps_this_one(served, staff, db_session):
    from nudge_app.models import AuditEntry

    user = staff("testshire", "designer")
    elsewhere, _ = browser_sign_in(served, user.email)
    here, _ = browser_sign_in(served, user.email)
    page = _page(here, f"{served}/account/password")
    token = csrf_of(page.text)
    weak = here.post(
        f"{served}/account/password",
        data={
            "csrf_token": token,
            "current": PASSWORD,
            "new": "password1234",
            "confirm": "password1234",
        },
        timeout=30,
    )
    assert weak.status_code == 422 and "too common" in weak.text
    assert 'class="error-summary"' in weak.text and 'href="#new"' in weak.text  # GOV.UK pattern
    changed = here.post(
        f"{served}/account/password",
        data={
            "csrf_token": token,
            "current": PASSWORD,
            "new": NEW_PASSWORD,
            "confirm": NEW_PASSWORD,
        },
        allow_redirects=False,
        timeout=30,
    )
    assert changed.status_code == 302
    assert _page(here, f"{served}/").status_code == 200
    assert _signed_out(_page(elsewhere, f"{served}/"))
    assert browser_sign_in(served, user.email)[1].status_code == 401
    assert browser_sign_in(served, user.email, NEW_PASSWORD)[1].status_code == 302
    db_session.rollback()  # a fresh read: the server wrote in its own transactions
    actions = set(db_session.scalars(select(AuditEntry.action)))
    assert {"user.password_change", "user.login", "user.login_failed"} <= actions


def test_idle_and_absolute_timeouts(app, served, staff, db_session):
    from nudge_app.db import utcnow
    from nudge_app.models import StaffSession

    user = staff("testshire", "designer")
    browser, _ = browser_sign_in(served, user.email)
    assert _page(browser, f"{served}/").status_code == 200
    idle = timedelta(minutes=app.config["SESSION_IDLE_MINUTES"] + 1)
    db_session.rollback()
    db_session.execute(update(StaffSession).values(last_seen_at=utcnow() - idle))
    db_session.commit()
    assert _signed_out(_page(browser, f"{served}/"))
    browser, _ = browser_sign_in(served, user.email)
    longest = timedelta(hours=app.config["SESSION_MAX_HOURS"], minutes=1)
    db_session.rollback()
    db_session.execute(update(StaffSession).values(created_at=utcnow() - longest))
    db_session.commit()
    assert _signed_out(_page(browser, f"{served}/"))


@pytest.mark.parametrize(
    "password,why",
    [
        ("short pass", "at least 12"),
        ("password1234", "too common"),
        ("dragon123456!", "too common"),
        ("aaaaaaaaaaaaaaaa", "too common"),
        ("newuser-long-enough", "email"),
    ],
)
def test_weak_passwords_are_refused(council, password, why):
    from nudge_app.services.staff import StaffError, create_user

    with pytest.raises(StaffError, match=why):
        create_user(council, "newuser@testshire.gov.uk", "designer", password)


@pytest.mark.parametrize(
    "target",
    [
        "/%09/evil.example",
        "/\t/evil.example",
        "//evil.example",
        "/\\evil.example",
        "https://evil.example/",
        "javascript:alert(1)",
        "/%5Cevil.example",
        "/%2F/evil.example",
        " //evil.example",
    ],
)
def test_login_never_redirects_off_site(served, staff, target):
    user = staff("testshire", "designer")
    s = requests.Session()
    token = csrf_of(s.get(f"{served}/login", params={"next": target}, timeout=10).text)
    response = s.post(
        f"{served}/login",
        data={"email": user.email, "password": PASSWORD, "csrf_token": token, "next": target},
        allow_redirects=False,
        timeout=30,
    )
    assert response.status_code == 302 and response.headers["Location"] == "/"


def test_login_keeps_a_same_site_next(served, staff):
    user = staff("testshire", "designer")
    _, response = browser_sign_in(served, user.email, next="/admin/users?x=1")
    assert response.headers["Location"] == "/admin/users?x=1"


def test_staff_emails_do_not_leak_across_councils(served, staff, db_session):
    """Another council's user with the same address is not this council's business: the
    admin's form creates theirs without a word about the other one, and each signs in to
    their own council (asked to choose only when one password opens both)."""
    from nudge_app.models import StaffUser

    staff("theirs", "designer", email="shared@example.org")
    ours = staff("ours", "admin")
    admin, _ = browser_sign_in(served, ours.email)
    token = csrf_of(_page(admin, f"{served}/admin/users").text)
    created = admin.post(
        f"{served}/admin/users",
        data={"csrf_token": token, "email": "shared@example.org", "role": "designer",
              "password": "a different long passphrase"},
        allow_redirects=False,
        timeout=30,
    )  # fmt: skip
    assert created.status_code == 302, created.text
    assert created.headers["Location"].endswith("/admin/users"), created.headers["Location"]
    assert "theirs" not in admin.get(f"{served}/admin/users", timeout=10).text
    db_session.rollback()  # a fresh read: the server wrote in its own transaction
    shared = select(StaffUser).where(StaffUser.email == "shared@example.org")
    assert len(db_session.scalars(shared).all()) == 2
    theirs, response = browser_sign_in(served, "shared@example.org")
    assert response.status_code == 302 and "Theirs" in theirs.get(f"{served}/", timeout=10).text
    mine, response = browser_sign_in(served, "shared@example.org", "a different long passphrase")
    assert response.status_code == 302 and "Ours" in mine.get(f"{served}/", timeout=10).text
    # One password opening two councils' accounts: the person chooses, nobody else sees.
    db_session.rollback()
    staff("third", "evaluator", email="shared@example.org")
    s = requests.Session()
    token = csrf_of(s.get(f"{served}/login", timeout=10).text)
    choose = s.post(
        f"{served}/login",
        data={"email": "shared@example.org", "password": PASSWORD, "csrf_token": token},
        allow_redirects=False,
        timeout=30,
    )
    assert choose.status_code == 409 and 'value="third"' in choose.text
    assert 'value="theirs"' in choose.text and 'value="ours"' not in choose.text
    chosen = s.post(
        f"{served}/login",
        data={"email": "shared@example.org", "password": PASSWORD, "csrf_token": token,
              "council": "third"},
        allow_redirects=False,
        timeout=30,
    )  # fmt: skip
    assert chosen.status_code == 302 and "Third" in s.get(f"{served}/", timeout=10).text
