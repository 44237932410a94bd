"""`nudge demo`: run a whole simulated campaign through the platform, write its report, then
serve the platform with its scheduler beside it."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterable, Iterator
from pathlib import Path

import click

DEFAULT_CAMPAIGN = "self-efficacy-cleanup"


def _progress(label: str, items: Iterable, length: int) -> Iterator:
    with click.progressbar(
        items, length=length, label=label.ljust(28), show_pos=True, show_eta=True, width=30
    ) as bar:
        yield from bar


@click.command("demo")
@click.option(
    "--participants",
    default=5000,
    show_default=True,
    type=click.IntRange(10, 200_000),
    help="Simulated residents to enrol (the survey asked about 5,000).",
)
@click.option(
    "--seed",
    default=0,
    show_default=True,
    type=click.IntRange(0, 2**31 - 1),
    help="The same seed gives the same residents, assignments and report.",
)
@click.option(
    "--campaign",
    default=DEFAULT_CAMPAIGN,
    show_default=True,
    help="Catalog campaign to run (experiments/catalog/NAME.toml).",
)
@click.option(
    "--out",
    "out",
    type=click.Path(file_okay=False),
    default=None,
    help="Folder for report.html, report.json, report.csv [default: instance/demo/].",
)
@click.option("--no-serve", is_flag=True, help="Stop after writing the report.")
@click.option(
    "--workers",
    default=0,
    type=click.IntRange(0, 16),
    help="Processes acting as residents [default: one per core, at most 4].",
)
@click.option("--host", default="127.0.0.1", show_default=True, help="Where to serve afterwards.")
@click.option("--port", default=5000, show_default=True, type=int)
def command(
    participants: int,
    seed: int,
    campaign: str,
    out: str | None,
    no_serve: bool,
    workers: int,
    host: str,
    port: int,
) -> None:
    """Create a demo council and admin login, run a catalog campaign with simulated residents
    through the real pages and scheduler (accelerated time), write its report, then serve
    the platform with the scheduler running beside it (unless --no-serve), so campaigns
    launched in the browser send their messages.

    Uses the configured database (DATABASE_URL, or SQLite in the instance folder),
    migrating it first. Each run adds a new campaign to the demo council.
    """
    from config import config_from_env
    from nudge_app.app import ConfigurationError
    from nudge_app.cli.db import upgrade
    from nudge_app.demo import DemoError, DemoOptions, demo_app, run_demo

    started = time.perf_counter()
    config = config_from_env()
    url = config.SQLALCHEMY_DATABASE_URI
    out_dir = Path(out) if out else Path(config.INSTANCE_PATH) / "demo"
    click.echo(f"Preparing the database ({url.split(':', 1)[0]}) ...")
    try:
        upgrade(url)
    except Exception as exc:  # a database that cannot be reached or migrated
        raise click.ClickException(f"cannot prepare the database: {exc}") from None
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
        outbox = out_dir / "outbox.jsonl"
        outbox.write_text("")
        app = demo_app(
            FILE_CHANNEL_PATH=str(outbox),
            EMAIL_CHANNEL="file",
            SMS_CHANNEL="file",
            BASE_URL=f"http://{host}:{port}",
        )
    except ConfigurationError as exc:
        raise click.ClickException(str(exc)) from None
    except OSError as exc:
        raise click.ClickException(f"cannot write to {out_dir}: {exc.strerror}") from None
    if app.config.get("SECRET_KEY_FILE"):
        click.echo(
            f"SECRET_KEY is not set: signing with the random key in "
            f"{app.config['SECRET_KEY_FILE']}. Set SECRET_KEY in production."
        )
    options = DemoOptions(
        participants=participants, seed=seed, out=out_dir, campaign=campaign, workers=workers
    )
    children: list[subprocess.Popen] = []

    def ready(result) -> None:
        """Serving: the server starts before the residents act, so the console opens within
        seconds and fills as the simulation runs (the scheduler joins it afterwards)."""
        server_log = out_dir / "server.log"
        children.append(_start_server(host, port, server_log))
        click.echo("")
        click.echo(
            f"Serving on http://{host}:{port}/ while the simulation runs (the console "
            f"fills as residents act; server log: {server_log})"
        )
        _print_login(result, host, port)
        click.echo("")

    if not no_serve:  # SIGTERM (as SIGINT) stops the demo and the processes it started
        signal.signal(signal.SIGTERM, _exit_on_signal)
    try:
        try:
            result = run_demo(
                app, options, progress=_progress, echo=click.echo,
                ready=None if no_serve else ready,
            )  # fmt: skip
        except DemoError as exc:
            raise click.ClickException(str(exc)) from None
        finally:
            from nudge_app.extensions import db

            with app.app_context():
                db.session.remove()
                db.engine.dispose()
        _summarise(result, started, host, port)
        if no_serve:
            return
        scheduler = _start_scheduler(outbox, f"http://{host}:{port}")
        children.append(scheduler)
        click.echo(
            f"  scheduler: running beside the server (pid {scheduler.pid}); messages of "
            "campaigns you launch go out within seconds, outside the council's quiet hours"
        )
        click.echo(f"Serving on http://{host}:{port}/ (Ctrl-C stops the server and scheduler)")
        code = children[0].wait()
        if code:
            raise click.ClickException(
                f"the server stopped (exit code {code}); its log: {out_dir / 'server.log'}"
            )
    finally:
        for child in reversed(children):
            _stop(child)


def _exit_on_signal(signum, frame) -> None:
    raise SystemExit(128 + signum)


def _print_login(result, host: str, port: int) -> None:
    click.echo(f"Sign in at http://{host}:{port}/login")
    click.echo(f"  email:    {result.admin_email}")
    click.echo(f"  password: {result.admin_password}")
    for label, path in result.urls.items():
        click.echo(f"  {label}: http://{host}:{port}{path}")


def _summarise(result, started: float, host: str, port: int) -> None:
    """What happened: counts, time per step, the files, each estimate beside the truth."""
    elapsed = time.perf_counter() - started
    click.echo("")
    click.echo(
        f"Demo finished in {elapsed:.1f} s: {result.enrolled:,} residents enrolled, "
        + (
            f"{result.screened_out:,} screened out by the eligibility rules, "
            if result.screened_out
            else ""
        )
        + f"{result.joined:,} said they would join, {result.messages_sent:,} messages "
        f"sent, {result.surveyed:,} follow-up surveys answered, {result.checked_in:,} "
        "check-ins in the organiser's attendance register."
    )
    click.echo(
        "  time spent: "
        + ", ".join(f"{step} {seconds:.1f} s" for step, seconds in result.timings.items())
    )
    if result.mentors:
        click.echo(
            f"  peer mentoring: {result.mentors:,} mentors signed up on their pages; their "
            f"links enrolled {result.referred:,} invited residents"
        )
    for path in result.report_files:
        click.echo(f"  wrote {path}")
    for arm, (estimate, low, high) in result.estimates.items():
        truth = result.truth.get(arm)
        line = (
            f"  effect of {arm!r} on joining: {100 * estimate:+.1f} points "
            f"(95% CI {100 * low:+.1f} to {100 * high:+.1f})"
        )
        if truth is not None:
            line += f"; simulated truth {100 * truth:+.1f}"
        click.echo(line)
    for step in result.skipped:
        click.echo(f"  skipped: {step}")
    click.echo("")
    _print_login(result, host, port)


def _start_server(host: str, port: int, log: Path) -> subprocess.Popen:
    """`nudge serve` in its own process (gunicorn), its output in `log`, so the progress
    bars of the simulation stay readable."""
    with open(log, "ab") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "nudge_app.cli", "serve", "--host", host, "--port",
             str(port), "--threads", "4", "--no-upgrade"],
            stdout=out, stderr=subprocess.STDOUT,
        )  # fmt: skip


def _start_scheduler(outbox: Path, base_url: str) -> subprocess.Popen:
    """`nudge scheduler` in its own process, sending through the demo's file channel."""
    env = dict(os.environ)
    env.update(
        NUDGE_EMAIL_CHANNEL="file", NUDGE_SMS_CHANNEL="file",
        NUDGE_FILE_CHANNEL_PATH=str(outbox), NUDGE_BASE_URL=base_url,
    )  # fmt: skip
    return subprocess.Popen([sys.executable, "-m", "nudge_app.cli", "scheduler"], env=env)


def _stop(process: subprocess.Popen) -> None:
    if process.poll() is None:
        process.terminate()  # the scheduler stops on SIGTERM and releases its lease
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
