"""`nudge serve`: the web app on gunicorn (a production WSGI server), never Flask's debug one.

Rate limits must be counted in one place for all workers: with several worker processes
and the per-process `memory://` storage each worker would count alone (400 sign-in
attempts against a limit of 120 mostly got through), so that combination refuses to
start and names NUDGE_RATELIMIT_STORAGE.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import click


def refuse_per_process_limits(config, workers: int) -> None:
    storage = str(config.get("RATELIMIT_STORAGE_URI") or "memory://")
    if workers > 1 and config.get("RATELIMIT_ENABLED", True) and storage.startswith("memory"):
        raise click.ClickException(
            f"--workers {workers} with rate limits kept in each process's memory "
            f"({storage}) would let every worker count alone. Set NUDGE_RATELIMIT_STORAGE "
            "to a shared store (redis://127.0.0.1:6379/0) or run one worker."
        )


@click.command("serve")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=5000, show_default=True, type=int)
@click.option(
    "--workers",
    default=None,
    type=int,
    help="Worker processes (default: 2 x cores + 1 on PostgreSQL, 1 on SQLite).",
)
@click.option("--threads", default=4, show_default=True, type=int, help="Threads per worker.")
@click.option("--no-upgrade", is_flag=True, help="Do not apply pending migrations first.")
def command(host: str, port: int, workers: int | None, threads: int, no_upgrade: bool) -> None:
    """Start the web app (migrating the database first unless --no-upgrade)."""
    from gunicorn.app.base import BaseApplication

    from config import config_from_env

    config = config_from_env()
    _prepare_metrics(Path(config.INSTANCE_PATH) / "metrics")
    from nudge_app import logs
    from nudge_app.app import ConfigurationError, create_app

    logs.configure(config.LOG_FORMAT, config.LOG_LEVEL.upper())
    url = config.SQLALCHEMY_DATABASE_URI
    if not no_upgrade:
        from nudge_app.cli.db import upgrade

        upgrade(url)
    try:
        app = create_app()
    except ConfigurationError as exc:
        raise click.ClickException(str(exc)) from None
    if workers is None:
        workers = 1 if url.startswith("sqlite") else 2 * (os.cpu_count() or 1) + 1
    refuse_per_process_limits(app.config, workers)
    if app.config.get("SECRET_KEY_FILE"):
        state = "created" if app.config.get("SECRET_KEY_CREATED") else "reused"
        click.echo(
            f"SECRET_KEY is not set: signing with the random key in "
            f"{app.config['SECRET_KEY_FILE']} ({state}). Set SECRET_KEY in production."
        )

    class Server(BaseApplication):
        def load_config(self):
            self.cfg.set("bind", f"{host}:{port}")
            self.cfg.set("workers", workers)
            self.cfg.set("threads", threads)
            self.cfg.set("worker_class", "gthread" if threads > 1 else "sync")
            self.cfg.set("accesslog", None)  # the app writes its own (JSON, request id)
            self.cfg.set("timeout", 60)
            self.cfg.set("child_exit", _worker_exited)
            # gunicorn 25.1+ opens a control socket, by default in ~/.gunicorn/: a folder
            # in the home directory of whoever serves. nudge does not use gunicornc.
            if "control_socket_disable" in self.cfg.settings:
                self.cfg.set("control_socket_disable", True)

        def load(self):
            return app

    click.echo(
        f"nudge serving on http://{host}:{port}/ ({workers} worker(s), database "
        f"{url.split(':', 1)[0]})"
    )
    Server().run()


def _prepare_metrics(folder: Path) -> None:
    """prometheus-client's multiprocess mode: each gunicorn worker writes its counts to
    `folder` and /metrics adds them up. Set before prometheus-client is first imported."""
    shutil.rmtree(folder, ignore_errors=True)  # counts of an earlier run
    folder.mkdir(parents=True, exist_ok=True)
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(folder)


def _worker_exited(server, worker) -> None:
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(worker.pid)
