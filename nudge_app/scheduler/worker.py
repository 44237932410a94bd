"""A dispatch worker process: reclaim and dispatch in a loop, nothing else.

`python -m nudge_app.scheduler.worker` scales sending out on PostgreSQL (run several;
`FOR UPDATE SKIP LOCKED` shares the rows) and is what the crash tests kill and restart.
It builds a minimal app (configuration and database only, no web blueprints), so it
starts fast. On SQLite it takes the same single-scheduler lease as `nudge scheduler`.
The other ticks (follow-ups, receipts, closing campaigns) stay with `nudge scheduler`.
"""

from __future__ import annotations

import logging
import signal
import sys
import time
from collections.abc import Callable

log = logging.getLogger("nudge_app.scheduler.worker")


def minimal_app():
    """A Flask app with the settings and the database, without blueprints."""
    from flask import Flask

    from nudge_app.extensions import db
    from nudge_app.settings import app_settings, check

    settings = app_settings()
    app = Flask("nudge_worker", instance_path=str(settings["INSTANCE_PATH"]))
    app.config.update(settings)
    check(app.config)
    db.init_app(app)
    from nudge_app import models  # noqa: F401

    return app


def run(
    app,
    idle_sleep: float = 0.2,
    stop_after_idle: float | None = None,
    on_ready: Callable[[], None] | None = None,
) -> None:
    """Reclaim and dispatch until SIGTERM (or, once it has sent something, until
    `stop_after_idle` seconds pass with nothing due: for benchmarks). `on_ready` is
    called once, the first time the worker finds nothing due (benchmarks start their
    clock when every worker is ready)."""
    from nudge_app.delivery.channels import channels_for, close_channels
    from nudge_app.delivery.dispatch import (
        dispatch_batch,
        new_worker_id,
        reclaim_sending,
        settings_for,
    )
    from nudge_app.extensions import db
    from nudge_app.scheduler.process import acquire_singleton, release_singleton

    stopping = []
    signal.signal(signal.SIGTERM, lambda *_: stopping.append(1))
    worker = new_worker_id()
    with app.app_context():
        owner = acquire_singleton()
        channels, settings = channels_for(app), settings_for(app)  # built once, not per batch
        last_reclaim = 0.0
        idle_since = None
        worked = False
        try:
            while not stopping:
                if time.monotonic() - last_reclaim > 1.0:
                    reclaim_sending(worker)
                    last_reclaim = time.monotonic()
                stats = dispatch_batch(worker, channels=channels, settings=settings)
                if stats.claimed:
                    idle_since, worked = None, True
                    continue
                if on_ready is not None:
                    on_ready()
                    on_ready = None
                idle_since = idle_since or time.monotonic()
                idle_for = time.monotonic() - idle_since
                if stop_after_idle is not None and worked and idle_for > stop_after_idle:
                    break
                time.sleep(idle_sleep)
        finally:
            close_channels(app)
            if owner:
                release_singleton(owner)
            db.session.remove()


def main() -> int:
    from nudge_app import logs
    from nudge_app.scheduler.process import SchedulerAlreadyRunning

    app = minimal_app()
    logs.configure(app.config["LOG_FORMAT"], logging.WARNING)
    try:
        run(app)
    except SchedulerAlreadyRunning as exc:
        print(f"Error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
