"""`nudge serve`: the web app on gunicorn (a production WSGI server), never Flask's debug one."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import click


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

    class Server(BaseApplication):
        def load_config(self):
            self.cfg.set("bind", f"{host}:{port}")
            self.cfg.set("workers", workers)
            self.cfg.set("threads", threads)
            self.cfg.set("worker_class", "gthread" if threads > 1 else "sync")
            self.cfg.set("accesslog", None)  # the app writes its own (JSON, request id)
            self.cfg.set("timeout", 60)
            self.cfg.set("child_exit", _worker_exited)

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
