"""Benchmark: the scheduler's dispatch per message on SQLite (or PostgreSQL), this tree
against a baseline revision, in the same run.

What `nudge demo` does at its scale, on a fresh migrated database: the demo council and
the catalog campaign self-efficacy-cleanup (survey-first), N simulated residents imported
and the campaign launched (N invitations due), through nudge_app.demo's own helpers.
`--followers` of them then open their invitation through the participant pages
(consent, baseline, randomized), which schedules their reminder (+72 h) and follow-up
survey (+720 h). Three scenarios, each run on its own copy of the database:

- invitations: `run_once(app, launch)` sends the N invitations;
- reminders:   `run_once(app, launch + 72 h)` sends the followers' reminders;
- surveys:     `run_once(app, launch + 720 h)` sends their follow-up surveys (and
  expires the reminders, which were never sent in this copy).

Each scenario runs with the dispatch code of this tree and with the baseline's
(nudge_app/delivery/dispatch.py and nudge_app/services/outbox.py read from `git show
REV:...` and loaded as separate modules), alternately, `--repeat` times each; the time
of the dispatch tick per message sent is reported, best of the runs (the least
disturbed by other work on the machine). Both use this tree's file channel, other
ticks and models. Every run checks that each message sent is one line in the file
channel's output.

Run: .venv/bin/python benchmarks/dispatch_sqlite_bench.py [--participants 5000]
     [--followers 600] [--repeat 3] [--baseline REV] [--profile current|baseline]
     [--postgres URL]   (a server URL: the databases are made there, then dropped)
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import shutil
import subprocess
import sys
import tempfile
import time
import types
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path[:0] = [str(ROOT)]

SECRET = "bench-secret-key-" + "x" * 20
# The last commit before dispatch wrote whole batches in one statement on SQLite.
DEFAULT_BASELINE = "5aeeade"


class SqliteStore:
    """Databases as files in a folder; a copy is a file copy."""

    kind = "SQLite"

    def __init__(self, folder: Path):
        self.folder = folder

    def url(self, name: str) -> str:
        return f"sqlite:///{self.folder / name}.sqlite3"

    def create(self, name: str) -> None:
        pass

    def copy(self, source: str, name: str) -> None:
        target = self.folder / f"{name}.sqlite3"
        for suffix in ("-wal", "-shm"):
            Path(f"{target}{suffix}").unlink(missing_ok=True)
        shutil.copyfile(self.folder / f"{source}.sqlite3", target)

    def close(self) -> None:
        pass


class PostgresStore:
    """Databases on a PostgreSQL server; a copy is CREATE DATABASE ... TEMPLATE."""

    kind = "PostgreSQL"

    def __init__(self, server: str):
        from sqlalchemy.engine import make_url

        from config import normalize_database_url

        self.base = make_url(normalize_database_url(server))
        self.admin = self.base.set(drivername="postgresql", database="postgres")
        self.prefix = f"dispatch_bench_{uuid.uuid4().hex[:6]}_"
        self.made: list[str] = []

    def _sql(self, statement: str) -> None:
        import psycopg

        admin = self.admin.render_as_string(hide_password=False)
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(statement)

    def url(self, name: str) -> str:
        return self.base.set(database=self.prefix + name).render_as_string(hide_password=False)

    def create(self, name: str) -> None:
        self._sql(f'CREATE DATABASE "{self.prefix + name}"')
        self.made.append(name)

    def copy(self, source: str, name: str) -> None:
        self._sql(f'DROP DATABASE IF EXISTS "{self.prefix + name}" WITH (FORCE)')
        # A template must have no sessions (pools of engines made before, e.g. Alembic's).
        self._sql(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            f"WHERE datname = '{self.prefix + source}' AND pid <> pg_backend_pid()"
        )
        self._sql(f'CREATE DATABASE "{self.prefix + name}" TEMPLATE "{self.prefix + source}"')
        self.made.append(name)

    def close(self) -> None:
        for name in set(self.made):
            self._sql(f'DROP DATABASE IF EXISTS "{self.prefix + name}" WITH (FORCE)')


def _app(url: str, instance: Path):
    from nudge_app.app import create_app

    instance.mkdir(parents=True, exist_ok=True)
    return create_app(
        {
            "SQLALCHEMY_DATABASE_URI": url,
            "INSTANCE_PATH": str(instance),
            "FILE_CHANNEL_PATH": str(instance / "outbox.jsonl"),
            "SECRET_KEY": SECRET,
            "BASE_URL": "http://localhost",
            "WTF_CSRF_ENABLED": False,
            "RATELIMIT_ENABLED": False,
        }
    )


def _dispose(app) -> None:
    from nudge_app.extensions import db

    with app.app_context():
        db.session.remove()
        db.engine.dispose()


def build(store, folder: Path, participants: int, followers: int) -> datetime:
    """The databases of the three scenarios (named after them); returns the launch time."""
    from nudge_app import demo
    from nudge_app.cli.db import upgrade
    from nudge_app.scheduler import run_once

    store.create("setup")
    upgrade(store.url("setup"))
    app = _app(store.url("setup"), folder / "setup")
    options = demo.DemoOptions(participants=participants, out=folder / "demo-out", workers=1)
    design = demo.demo_design(options.campaign, options.seed)
    result = demo.DemoResult()
    with app.app_context():
        demo._set_up(app, design, result)
    population = demo.simulate_population(participants, seed=options.seed)
    residents = demo._Residents(
        app, result, population, {}, options, demo.no_progress, lambda _: None
    )
    residents.import_and_launch(design)
    launch = residents._allowed(datetime.now(UTC) + timedelta(seconds=1))
    _dispose(app)
    store.copy("setup", "invitations")

    # Followers: the invitations go out (this tree's code), some residents enrol.
    run_once(app, launch)
    first = residents.read_mail(("invitation",))
    for index, token in sorted(first.items())[:followers]:
        residents.open_link(index, token, list_mode=False)
    _dispose(app)
    store.copy("setup", "reminders")
    store.copy("setup", "surveys")
    return launch


def baseline_dispatch(rev: str) -> types.ModuleType:
    """The baseline's dispatch module, importing the baseline's outbox (rendering)."""

    def source(path: str) -> str:
        return subprocess.run(
            ["git", "show", f"{rev}:{path}"], cwd=ROOT, check=True, capture_output=True, text=True
        ).stdout

    def load(name: str, path: str, swap: dict) -> types.ModuleType:
        module = types.ModuleType(name)
        module.__file__ = f"{rev}:{path}"
        sys.modules[name] = module  # dataclasses look their module up while being made
        saved = {k: sys.modules.get(k) for k in swap}
        sys.modules.update(swap)
        try:
            exec(compile(source(path), module.__file__, "exec"), module.__dict__)
        finally:
            for k, v in saved.items():
                if v is None:
                    sys.modules.pop(k, None)
                else:
                    sys.modules[k] = v
        return module

    outbox = load("bench_baseline_outbox", "nudge_app/services/outbox.py", {})
    return load(
        "bench_baseline_dispatch",
        "nudge_app/delivery/dispatch.py",
        {"nudge_app.services.outbox": outbox},
    )


@contextlib.contextmanager
def dispatch_module(module: types.ModuleType | None):
    """run_once's ticks import dispatch lazily: point them at `module` (None: this tree)."""
    name = "nudge_app.delivery.dispatch"
    import nudge_app.delivery.dispatch  # noqa: F401

    saved = sys.modules[name]
    if module is not None:
        sys.modules[name] = module
    try:
        yield
    finally:
        sys.modules[name] = saved


def run(store, scenario: str, folder: Path, at: datetime, module, label: str, profile: bool):
    """(seconds of run_once, messages sent, seconds of its dispatch tick)."""
    from sqlalchemy import text

    from nudge_app.extensions import db
    from nudge_app.scheduler import run_once, ticks

    store.copy(scenario, "work")
    instance = folder / label
    shutil.rmtree(instance, ignore_errors=True)
    app = _app(store.url("work"), instance)
    with app.app_context():  # connect outside the timing
        db.session.execute(text("select 1"))
        db.session.remove()
    spent = {"dispatch": 0.0}
    original = ticks.dispatch

    def timed_dispatch(*args, **kwargs):
        start = time.perf_counter()
        try:
            return original(*args, **kwargs)
        finally:
            spent["dispatch"] += time.perf_counter() - start

    ticks.dispatch = timed_dispatch
    profiler = None
    if profile:
        from pyinstrument import Profiler

        profiler = Profiler(interval=0.0005)
        profiler.start()
    try:
        with dispatch_module(module):
            start = time.perf_counter()
            round_ = run_once(app, at)
            elapsed = time.perf_counter() - start
    finally:
        ticks.dispatch = original
        if profiler is not None:
            profiler.stop()
            print(profiler.output_text(unicode=True, color=False))
    _dispose(app)
    sent = round_.dispatched.sent
    outbox = instance / "outbox.jsonl"
    lines = outbox.read_bytes().count(b"\n") if outbox.exists() else 0
    if lines != sent:
        raise SystemExit(f"{label}: {sent} sent but {lines} lines in the file channel")
    return elapsed, sent, spent["dispatch"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--participants", type=int, default=5000)
    parser.add_argument("--followers", type=int, default=600)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--baseline", default=DEFAULT_BASELINE)
    parser.add_argument("--profile", choices=("current", "baseline"))
    parser.add_argument("--postgres", metavar="URL", help="run on this PostgreSQL server")
    args = parser.parse_args()
    os.environ.pop("DATABASE_URL", None)
    logging.getLogger("nudge_app").setLevel(logging.ERROR)

    baseline = baseline_dispatch(args.baseline)
    with tempfile.TemporaryDirectory(prefix="dispatch-bench-") as tmp:
        folder = Path(tmp)
        store = PostgresStore(args.postgres) if args.postgres else SqliteStore(folder)
        try:
            started = time.perf_counter()
            launch = build(store, folder, args.participants, args.followers)
            print(
                f"{store.kind}: {args.participants:,} residents, {args.followers:,} enrolled, "
                f"set up in {time.perf_counter() - started:.0f} s; {os.cpu_count()} cores, "
                f"load average {os.getloadavg()[0]:.1f}"
            )
            scenarios = {
                "invitations": launch,
                "reminders": launch + timedelta(hours=72, minutes=5),
                "surveys": launch + timedelta(hours=720, minutes=5),
            }
            variants = {"baseline": baseline, "current": None}
            best: dict = {}
            for name, at in scenarios.items():
                for i in range(args.repeat):
                    for variant, module in variants.items():
                        profile = args.profile == variant and i == 0
                        label = f"{name}-{variant}"
                        outcome = run(store, name, folder, at, module, label, profile)
                        if (name, variant) not in best or outcome[2] < best[name, variant][2]:
                            best[name, variant] = outcome
        finally:
            store.close()
    print(f"baseline {args.baseline}; best of {args.repeat} runs each; load average "
          f"{os.getloadavg()[0]:.1f}")  # fmt: skip
    print(
        f"{'scenario':<12} {'sent':>6} {'base tick s':>12} {'now tick s':>11} "
        f"{'base ms/msg':>12} {'now ms/msg':>11} {'speed-up':>9}"
    )
    for name in scenarios:
        _, sent_b, tick_b = best[name, "baseline"]
        _, sent, tick = best[name, "current"]
        if sent != sent_b:
            raise SystemExit(f"{name}: the baseline sent {sent_b}, this tree {sent}")
        per_b, per = 1000 * tick_b / max(sent, 1), 1000 * tick / max(sent, 1)
        print(
            f"{name:<12} {sent:>6} {tick_b:>12.2f} {tick:>11.2f} "
            f"{per_b:>12.3f} {per:>11.3f} {per_b / per:>8.2f}x"
        )


if __name__ == "__main__":
    main()
