"""A whole simulated campaign run through the real platform: council, launch, residents, follow-ups, report.

`run_demo` sets up a demo council and an admin login, creates and launches a catalog
campaign, enrols simulated residents (experiments.simulate) through the participant
pages with an in-process test client, runs the scheduler in accelerated time so the
reminder and the follow-up survey go out through the file channel, lets residents join
and answer with the simulator's probabilities, and writes the campaign's report. Every
step the build does not have yet is skipped and named in `DemoResult.skipped`.
"""

from __future__ import annotations

import importlib
import json
import secrets
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from flask import Flask
from sqlalchemy import select

from experiments.design import CampaignDesign, load_design
from experiments.simulate import CATALOG_EFFECTS, SimulationParams, simulate_population

CATALOG = Path(__file__).resolve().parents[1] / "experiments" / "catalog"
DEMO_COUNCIL_SLUG = "demo"
DEMO_COUNCIL_NAME = "Demo Borough Council"
DEMO_ADMIN_EMAIL = "admin@demo-council.example"
# Share of listed residents who open their invitation (list campaigns only).
LIST_EXPOSURE = 0.6


class DemoError(RuntimeError):
    """The demo cannot run as asked (an unknown campaign, an unusable output folder)."""


# progress(label, items, length) yields the items while showing progress.
Progress = Callable[[str, Iterable, int], Iterator]


def no_progress(label: str, items: Iterable, length: int) -> Iterator:
    yield from items


@dataclass
class DemoOptions:
    participants: int = 5000
    seed: int = 0
    out: Path = Path("instance/demo")
    campaign: str = "self-efficacy-cleanup"


@dataclass
class DemoResult:
    council_slug: str = DEMO_COUNCIL_SLUG
    admin_email: str = DEMO_ADMIN_EMAIL
    admin_password: str = ""
    campaign_slug: str = ""
    campaign_id: int | None = None
    enrolled: int = 0
    joined: int = 0
    messages_sent: int = 0
    surveyed: int = 0
    report_files: list[Path] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)
    urls: dict[str, str] = field(default_factory=dict)


def catalog_campaigns() -> list[str]:
    return sorted(p.stem for p in CATALOG.glob("*.toml"))


def demo_design(name: str, seed: int) -> CampaignDesign:
    """A catalog design whose randomization seed follows the demo's seed."""
    path = CATALOG / f"{name}.toml"
    if not path.exists():
        raise DemoError(
            f"no catalog campaign {name!r}: choose one of {', '.join(catalog_campaigns())}"
        )
    design = load_design(str(path))
    design.randomization.seed = int(seed)
    return design


def _optional(module: str) -> Any | None:
    """A module of another area, or None when this build does not have it yet."""
    try:
        return importlib.import_module(module)
    except ModuleNotFoundError as exc:
        if exc.name and module.startswith(exc.name):
            return None
        raise


@contextmanager
def _timed(result: DemoResult, step: str):
    start = time.perf_counter()
    yield
    result.timings[step] = round(time.perf_counter() - start, 2)


def demo_app(base: Flask | None = None, **overrides: Any) -> Flask:
    """The app the simulated residents use: as configured, without CSRF and rate limits.

    CSRF tokens and rate limits protect real browsers; 5,000 simulated residents posting
    from one process would trip both, so the in-process client runs without them.
    """
    from nudge_app.app import create_app

    settings = {"WTF_CSRF_ENABLED": False, "RATELIMIT_ENABLED": False}
    if base is not None:
        settings.update({k: v for k, v in base.config.items() if k.isupper()})
        settings.update({"WTF_CSRF_ENABLED": False, "RATELIMIT_ENABLED": False})
    settings.update(overrides)
    return create_app(settings)


def run_demo(
    app: Flask,
    options: DemoOptions,
    progress: Progress = no_progress,
    echo: Callable[[str], None] = lambda _: None,
) -> DemoResult:
    """Run the whole demo against `app`'s (migrated) database; returns what happened."""
    if options.participants < 10:
        raise DemoError("--participants must be at least 10")
    out = Path(options.out)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise DemoError(f"cannot create the output folder {out}: {exc.strerror}") from None
    design = demo_design(options.campaign, options.seed)
    effects = CATALOG_EFFECTS.get(options.campaign, {})
    result = DemoResult()

    with _timed(result, "setup"), app.app_context():
        _set_up(app, design, result)
    echo(
        f"Council {result.council_slug!r} with admin {result.admin_email}; campaign "
        f"{result.campaign_slug!r} ({design.enrolment_mode} enrolment, arms: "
        + ", ".join(a.key for a in design.arms)
        + ")"
    )

    with _timed(result, "simulate population"):
        population = simulate_population(
            options.participants, seed=options.seed, params=SimulationParams()
        )
    echo(f"Simulated {len(population):,} residents (seed {options.seed}).")

    residents = _Residents(app, result, population, effects, options, progress, echo)
    with _timed(result, "enrol"):
        residents.enrol(design)
    with _timed(result, "follow-ups"):
        residents.follow_ups(design)
    with _timed(result, "report"):
        _write_report(app, result, out, echo)
    return result


def _set_up(app: Flask, design: CampaignDesign, result: DemoResult) -> None:
    from nudge_app.extensions import db
    from nudge_app.models import Council, StaffUser
    from nudge_app.security import hash_password
    from nudge_app.services.campaigns import create_campaign, launch_campaign
    from nudge_app.services.councils import create_council

    council = db.session.scalar(select(Council).where(Council.slug == DEMO_COUNCIL_SLUG))
    if council is None:
        council = create_council(DEMO_COUNCIL_SLUG, DEMO_COUNCIL_NAME, actor="demo")
    password = secrets.token_urlsafe(12)
    user = db.session.scalar(select(StaffUser).where(StaffUser.email == DEMO_ADMIN_EMAIL))
    if user is None:
        staff = _optional("nudge_app.services.staff")
        if staff is not None and hasattr(staff, "create_user"):
            user = staff.create_user(council, DEMO_ADMIN_EMAIL, "admin", password, actor="demo")
        else:
            user = StaffUser(
                council_id=council.id,
                email=DEMO_ADMIN_EMAIL,
                role="admin",
                password_hash=hash_password(password),
            )
            db.session.add(user)
    else:
        # A new run prints a new password: the previous one is not stored anywhere.
        user.password_hash = hash_password(password)
        user.is_active = True
        user.council_id = council.id
    result.admin_password = password

    campaign = create_campaign(council, design, actor="demo")
    result.campaign_slug, result.campaign_id = campaign.slug, None
    db.session.flush()
    result.campaign_id = campaign.id
    if design.enrolment_mode == "survey-first":
        launch_campaign(campaign, actor="demo")
    db.session.commit()


class _Residents:
    """The simulated residents, acting through the participant pages."""

    def __init__(
        self,
        app: Flask,
        result: DemoResult,
        population: pd.DataFrame,
        effects: dict,
        options: DemoOptions,
        progress: Progress,
        echo: Callable[[str], None],
    ):
        self.app = app
        self.result = result
        self.population = population
        self.effects = effects
        self.options = options
        self.progress = progress
        self.echo = echo
        self.client = app.test_client()
        self.arms: np.ndarray | None = None
        self.now = datetime.now(UTC)

    def enrol(self, design: CampaignDesign) -> None:
        self.result.skipped.append(
            "enrolment through the participant pages (nudge_app.participant has no pages "
            "in this build)"
        )

    def follow_ups(self, design: CampaignDesign) -> None:
        self.result.skipped.append("follow-ups in accelerated time (no scheduler in this build)")


def _write_report(app: Flask, result: DemoResult, out: Path, echo) -> None:
    reporting = _optional("nudge_app.services.reporting")
    if reporting is None:
        result.skipped.append("the report files (no nudge_app.services.reporting in this build)")
        return
    result.skipped.append("the report files (reporting API not wired yet)")


def summary_json(result: DemoResult) -> str:
    """The result as JSON (no password), for logs and tests."""
    data = {k: v for k, v in result.__dict__.items() if k != "admin_password"}
    data["report_files"] = [str(p) for p in result.report_files]
    return json.dumps(data, indent=2, default=str)


def _shift(now: datetime, hours: float) -> datetime:
    return now + timedelta(hours=hours)
