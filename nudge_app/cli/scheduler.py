"""`nudge scheduler`: the follow-up scheduler process (or one round of it with --once)."""

from __future__ import annotations

import logging
from datetime import UTC, datetime

import click


def _parse_now(value: str | None) -> datetime | None:
    if not value:
        return None
    try:
        now = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise click.BadParameter("use an ISO date-time such as 2026-12-01T09:00:00Z") from None
    return now if now.tzinfo else now.replace(tzinfo=UTC)


@click.command(
    "scheduler",
    short_help="Run the follow-up scheduler process.",
    help=(
        "Run the scheduler as its own process: enqueue due follow-ups, send due messages, "
        "resolve interrupted sends, check receipts and close campaigns past their end "
        "date, every NUDGE_SCHEDULER_TICK_SECONDS (30 s). Several may run on one "
        "PostgreSQL database; on SQLite a second one refuses to start. Never run it "
        "inside web workers."
    ),
)
@click.option("--once", is_flag=True, help="Run one round of every tick and exit (cron, tests).")
@click.option("--now", "now_text", help="With --once: the clock to use (ISO date-time, UTC).")
@click.option("--tick", type=click.IntRange(1, 3600), help="Seconds between ticks.")
@click.option("-v", "--verbose", is_flag=True, help="Log each tick's work.")
def command(once: bool, now_text: str | None, tick: int | None, verbose: bool) -> None:
    from config import config_from_env
    from nudge_app import logs

    # --once talks to a person (plain text); the process logs for a log collector.
    fmt = "text" if once else config_from_env().LOG_FORMAT
    logs.configure(fmt, logging.INFO if verbose else logging.WARNING)
    now = _parse_now(now_text)
    if now is not None and not once:
        raise click.UsageError("--now only works with --once")
    from nudge_app.cli.common import app_context
    from nudge_app.delivery.channels import ChannelConfigError, channels_for

    with app_context(commit=False) as app:
        try:
            channels_for(app)
        except ChannelConfigError as exc:
            raise click.ClickException(str(exc)) from None
        if once:
            from nudge_app.extensions import db
            from nudge_app.scheduler import run_once
            from nudge_app.scheduler.process import running_scheduler

            holder = running_scheduler()
            db.session.remove()
            if holder:
                raise click.ClickException(
                    f"a `nudge scheduler` process ({holder}) is running on this SQLite "
                    "database and already runs every tick; SQLite allows only one"
                )
            click.echo(run_once(app, now).summary())
            return
        from nudge_app.scheduler.process import SchedulerAlreadyRunning, run_forever

        try:
            run_forever(app, tick)
        except SchedulerAlreadyRunning as exc:
            raise click.ClickException(str(exc)) from None
