"""Findings: a dropped PostgreSQL connection gave brief 500s; the SQLite file and import
reports were world-readable. Here the server's connections are killed with
pg_terminate_backend between requests (the next request must still answer), and the files
the platform writes are checked for owner-only modes."""

from __future__ import annotations

import io
import stat

import psycopg
import pytest
from security_helpers import browser_sign_in

CSV = "external_ref,first_name,email\nR1,Ann,ann@example.org\n"


def _terminate_backends(url: str) -> int:
    from sqlalchemy.engine import make_url

    u = make_url(url)
    admin = u.set(drivername="postgresql", database="postgres").render_as_string(
        hide_password=False
    )
    with psycopg.connect(admin, autocommit=True) as conn:
        rows = conn.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE datname = %s AND pid <> pg_backend_pid()",
            (u.database,),
        ).fetchall()
    return len(rows)


def test_dropped_postgresql_connections_are_not_500s(
    app, served, staff, make_campaign, database_url, api_token
):
    if not database_url.startswith("postgresql"):
        pytest.skip("PostgreSQL only: set NUDGE_TEST_DATABASE_URL (CI does)")
    from nudge_app.extensions import db
    from nudge_app.services.participants_import import import_csv

    user = staff("testshire", "admin")
    campaign = make_campaign(user.council, "council-consultation", status="running")
    import_csv(campaign, CSV)
    db.session.commit()
    headers = api_token(user.council)
    browser, _ = browser_sign_in(served, user.email)
    open_link = f"{served}/p/join/{campaign.open_code}"
    urls = [
        (browser, f"{served}/"),
        (browser, f"{served}/campaigns/{campaign.slug}/monitor"),
        (browser, open_link),
        (browser, f"{served}/api/v1/campaigns"),
    ]
    db.session.remove()
    for rounds in range(3):
        for client, url in urls:
            assert _terminate_backends(database_url) >= 0
            kwargs = {"headers": headers} if "/api/" in url else {}
            response = client.get(url, timeout=30, **kwargs)
            assert response.status_code == 200, (rounds, url, response.status_code)


def test_files_the_platform_writes_are_owner_only(app, signed_in_designer, make_campaign):
    client, council, token = signed_in_designer
    campaign = make_campaign(council)
    bad = "external_ref,first_name,email\nR1,Ann,not-an-email\n"
    response = client.post(
        f"/campaigns/{campaign.slug}/participants",
        data={"csrf_token": token, "file": (io.BytesIO(bad.encode()), "p.csv")},
        content_type="multipart/form-data",
    )
    assert response.status_code == 422
    reports = app.instance_path + "/import-reports"
    import pathlib

    folder = pathlib.Path(reports)
    (report,) = folder.iterdir()
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700
    assert stat.S_IMODE(report.stat().st_mode) == 0o600
    assert stat.S_IMODE(pathlib.Path(app.instance_path).stat().st_mode) == 0o700
    url = app.config["SQLALCHEMY_DATABASE_URI"]
    if url.startswith("sqlite:///"):
        database = pathlib.Path(url.removeprefix("sqlite:///"))
        for path in (database, database.with_name(database.name + "-wal")):
            if path.exists():
                assert stat.S_IMODE(path.stat().st_mode) == 0o600, path


def test_a_new_sqlite_database_is_created_owner_only(tmp_path):
    from nudge_app.cli.db import upgrade

    path = tmp_path / "fresh" / "nudge.sqlite3"
    upgrade(f"sqlite:///{path}")
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_a_connection_dropped_between_ping_and_query_is_retried_or_503(
    app, served, make_campaign, council, database_url, api_token
):
    """The race pre-ping cannot see: the connection dies right after it was handed out.
    A GET is run again on a fresh connection (200); a POST answers 503, never 500."""
    if not database_url.startswith("postgresql"):
        pytest.skip("PostgreSQL only: set NUDGE_TEST_DATABASE_URL (CI does)")
    import requests
    from sqlalchemy import event

    from nudge_app.extensions import db

    campaign = make_campaign(council, status="running")
    headers = api_token(council)
    db.session.commit()
    kills = {"left": 0}

    def kill_first_statement(conn, cursor, statement, parameters, context, executemany):
        if kills["left"] and "pg_backend_pid" not in statement:
            kills["left"] -= 1
            pid = conn.exec_driver_sql("SELECT pg_backend_pid()").scalar()
            _terminate_pid(database_url, pid)

    engine = db.engine
    event.listen(engine, "before_cursor_execute", kill_first_statement)
    try:
        url = f"{served}/p/join/{campaign.open_code}"
        kills["left"] = 1
        page = requests.get(url, timeout=30)
        assert page.status_code == 200 and kills["left"] == 0
        kills["left"] = 1
        post = requests.post(
            f"{served}/api/v1/campaigns/{campaign.slug}/events",
            json={"external_ref": "R1", "kind": "join"},
            headers=headers,
            timeout=30,
        )
        assert post.status_code == 503 and post.headers["Retry-After"] == "1"
        assert "Nothing was saved" in post.json()["message"]
        kills["left"] = 0
        assert requests.get(url, timeout=30).status_code == 200
    finally:
        event.remove(engine, "before_cursor_execute", kill_first_statement)


def _terminate_pid(url: str, pid: int) -> None:
    from sqlalchemy.engine import make_url

    u = make_url(url)
    admin = u.set(drivername="postgresql", database="postgres").render_as_string(
        hide_password=False
    )
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute("SELECT pg_terminate_backend(%s)", (pid,))
