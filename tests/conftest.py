"""Shared fixtures: an app on a fresh, migrated database for each test.

SQLite by default (a real file per test, copied from one migrated template); PostgreSQL
when NUDGE_TEST_DATABASE_URL is set (one fresh database per run, migrated with Alembic,
tables emptied after each test). Tests that use `app` are marked `db`, so CI can run that
subset again on PostgreSQL.
"""

from __future__ import annotations

import os
import shutil
import threading
import uuid
from collections.abc import Callable
from pathlib import Path

import pytest
from flask import has_app_context
from flask.globals import app_ctx
from flask.testing import FlaskClient

ROOT = Path(__file__).resolve().parents[1]
CATALOG = ROOT / "experiments" / "catalog"
TEST_OUTPUT = ROOT / "test-output"
PG_ENV = "NUDGE_TEST_DATABASE_URL"


def pytest_collection_modifyitems(config, items):
    for item in items:
        if {
            "app",
            "client",
            "db_session",
            "council",
            "make_council",
            "make_campaign",
            "database_url",
            "runner",
        } & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.db)
        if "pg_url" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.postgres)


def pytest_configure(config):
    config.addinivalue_line("markers", "db: uses the app and a database (runs on both in CI)")
    TEST_OUTPUT.mkdir(exist_ok=True)


@pytest.fixture(scope="session")
def pg_server_url() -> str | None:
    return os.environ.get(PG_ENV) or None


def _create_pg_database(server_url: str, name: str) -> str:
    import psycopg
    from sqlalchemy.engine import make_url

    from config import normalize_database_url

    base = make_url(normalize_database_url(server_url))
    admin = base.set(drivername="postgresql", database="postgres")
    with psycopg.connect(admin.render_as_string(hide_password=False), autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}"')
        conn.execute(f'CREATE DATABASE "{name}"')
    return base.set(database=name).render_as_string(hide_password=False)


def _drop_pg_database(server_url: str, name: str) -> None:
    import psycopg
    from sqlalchemy.engine import make_url

    from config import normalize_database_url

    admin = make_url(normalize_database_url(server_url)).set(
        drivername="postgresql", database="postgres"
    )
    with psycopg.connect(admin.render_as_string(hide_password=False), autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="session")
def _migrated_database(tmp_path_factory, pg_server_url):
    """One migrated database per run: a SQLite template file, or a PostgreSQL database."""
    from nudge_app.cli.db import upgrade

    if pg_server_url:
        name = f"nudge_test_{uuid.uuid4().hex[:10]}"
        url = _create_pg_database(pg_server_url, name)
        upgrade(url)
        yield ("postgresql", url)
        _drop_pg_database(pg_server_url, name)
    else:
        template = tmp_path_factory.mktemp("template") / "template.sqlite3"
        upgrade(f"sqlite:///{template}")
        yield ("sqlite", template)


@pytest.fixture
def database_url(_migrated_database, tmp_path) -> str:
    kind, where = _migrated_database
    if kind == "sqlite":
        path = tmp_path / "nudge.sqlite3"
        shutil.copyfile(where, path)
        return f"sqlite:///{path}"
    return where


@pytest.fixture(scope="session")
def schema_head() -> str:
    """The newest Alembic revision: what a freshly migrated database reports."""
    from alembic.script import ScriptDirectory

    from nudge_app.cli.db import alembic_config

    return ScriptDirectory.from_config(alembic_config("sqlite://")).get_current_head()


@pytest.fixture
def pg_url(pg_server_url) -> str:
    """A fresh, migrated PostgreSQL database for tests that need PostgreSQL itself."""
    if not pg_server_url:
        pytest.skip(f"PostgreSQL not configured: set {PG_ENV} (CI does) to run this test")
    from nudge_app.cli.db import upgrade

    name = f"nudge_pg_{uuid.uuid4().hex[:10]}"
    url = _create_pg_database(pg_server_url, name)
    upgrade(url)
    yield url
    _drop_pg_database(pg_server_url, name)


def app_settings(database_url: str, instance: Path) -> dict:
    return {
        "ENV_NAME": "testing",
        "TESTING": True,
        "SECRET_KEY": "testing-secret-key",
        "SQLALCHEMY_DATABASE_URI": database_url,
        "INSTANCE_PATH": str(instance),
        "FILE_CHANNEL_PATH": str(instance / "outbox.jsonl"),
        "RATELIMIT_ENABLED": False,
        "BASE_URL": "http://localhost",
        "SERVER_NAME": None,
    }


class OneRequestClient(FlaskClient):
    """A test client each of whose requests has its own `g`, as in production.

    A test body keeps one app context open (so it shares `db.session` with the requests it
    makes), and Flask runs a request inside the app context it finds: without this, `g`
    (the signed-in staff member, the CSRF token, the participant, Babel's locale) would
    carry over from one request to the next, as it never does in a server.
    """

    def open(self, *args, **kwargs):
        if not has_app_context():
            return super().open(*args, **kwargs)
        context = app_ctx._get_current_object()
        kept, context.g = context.g, self.application.app_ctx_globals_class()
        try:
            return super().open(*args, **kwargs)
        finally:
            context.g = kept


@pytest.fixture
def app(database_url, tmp_path, _migrated_database):
    from nudge_app import create_app
    from nudge_app.db import sqlite_begin_mode
    from nudge_app.extensions import db

    instance = tmp_path / "instance"
    instance.mkdir()
    app = create_app(app_settings(database_url, instance))
    app.test_client_class = OneRequestClient
    # The test body's own reads must not hold SQLite's write lock while the code under
    # test writes from a CLI command or a server thread (those begin IMMEDIATE as usual).
    mode = sqlite_begin_mode.set("DEFERRED")
    with app.app_context():
        yield app
        db.session.remove()
        if _migrated_database[0] == "postgresql":
            _empty_tables(db)
        db.engine.dispose()
    sqlite_begin_mode.reset(mode)


def _empty_tables(db) -> None:
    from sqlalchemy import text

    from nudge_app.db import Base

    names = ", ".join(f'"{t.name}"' for t in Base.metadata.sorted_tables)
    with db.engine.begin() as conn:
        conn.execute(text(f"TRUNCATE {names} RESTART IDENTITY CASCADE"))


@pytest.fixture
def client(app):
    return app.test_client()


class LiveServer:
    """An app on a real threaded WSGI server on loopback, in a background thread."""

    def __init__(self, app):
        from werkzeug.serving import make_server

        self.server = make_server("127.0.0.1", 0, app, threaded=True)
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.server.shutdown()
        self.thread.join(10)
        self.server.server_close()


@pytest.fixture
def live_server(app, db_session):
    """The test's app served on loopback (browsers, concurrent clients); `.url` is its
    address. The test's own session commits first: a write it left pending would hold
    SQLite's lock against the server."""
    db_session.commit()
    with LiveServer(app) as server:
        yield server


@pytest.fixture
def runner(app, database_url, monkeypatch, tmp_path):
    """A click runner for `nudge` whose commands use the test database and instance."""
    from click.testing import CliRunner

    monkeypatch.setenv("DATABASE_URL", database_url)
    monkeypatch.setenv("NUDGE_INSTANCE_PATH", app.instance_path)
    monkeypatch.setenv("SECRET_KEY", app.config["SECRET_KEY"])
    monkeypatch.setenv("NUDGE_FILE_CHANNEL_PATH", app.config["FILE_CHANNEL_PATH"])
    return CliRunner()


@pytest.fixture
def db_session(app):
    from nudge_app.extensions import db

    return db.session


@pytest.fixture
def catalog_path() -> Callable[[str], Path]:
    def path(name: str) -> Path:
        p = CATALOG / (name if name.endswith(".toml") else f"{name}.toml")
        assert p.exists(), f"no catalog design {p.name}"
        return p

    return path


@pytest.fixture
def make_council(app):
    from nudge_app.extensions import db
    from nudge_app.services.councils import create_council

    def make(slug: str = "testshire", name: str | None = None, timezone: str = "Europe/London"):
        council = create_council(
            slug, name or slug.replace("-", " ").title() + " Council", timezone=timezone
        )
        db.session.commit()
        return council

    return make


@pytest.fixture
def council(make_council):
    return make_council()


@pytest.fixture
def make_campaign(app, catalog_path):
    """make_campaign(council, design=None, status="draft"): a campaign from a design.

    `design` is a catalog name, a path, TOML text or a CampaignDesign; the default is
    the self-efficacy clean-up catalog campaign without its eligibility rules (so every
    resident a test enrols is randomized; tests of screening pass `eligibility=` or name
    the catalog design). status="running" launches it.
    """
    from experiments.design import CampaignDesign, load_design, parse_design
    from nudge_app.extensions import db
    from nudge_app.services import campaigns

    def make(council, design=None, status: str = "draft", **changes):
        if design is None:
            design = load_design(str(catalog_path("self-efficacy-cleanup")))
            design.eligibility = None
        elif isinstance(design, Path):
            design = load_design(str(design))
        elif isinstance(design, str) and "\n" not in design:
            design = load_design(str(catalog_path(design)))
        elif isinstance(design, str):
            design = parse_design(design)
        assert isinstance(design, CampaignDesign)
        for key, value in changes.items():
            setattr(design, key, value)
        campaign = campaigns.create_campaign(council, design, actor="test")
        if status in ("running", "paused", "closed"):
            campaigns.launch_campaign(campaign, actor="test")
        if status == "paused":
            campaigns.pause_campaign(campaign, actor="test")
        if status == "closed":
            campaigns.close_campaign(campaign, actor="test")
        db.session.commit()
        return campaign

    return make


@pytest.fixture(scope="module")
def browser():
    """Headless Chromium (Debian's, see browser_checks) for one test module. Not one per
    process: several browser tests start their own sync_playwright(), which refuses to
    start while another is running in the same process."""
    from browser_checks import launch

    sync_api = pytest.importorskip("playwright.sync_api")
    with sync_api.sync_playwright() as p:
        b = launch(p)
        yield b
        b.close()


@pytest.fixture(scope="module")
def axe():
    """axe-core, as the axe-playwright-python package ships it."""
    module = pytest.importorskip("axe_playwright_python.sync_playwright")
    return module.Axe()
