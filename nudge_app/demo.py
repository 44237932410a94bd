"""A whole simulated campaign run through the real platform: council, launch, residents, follow-ups, report.

`run_demo` sets up a demo council and an admin login, creates a catalog campaign, imports
simulated residents (experiments.simulate) as the council's list and launches it. The
scheduler then runs in accelerated time: invitations (or, for a `list` campaign, the
arms' nudges), reminders and follow-up surveys go out through the file channel, and
each resident reads their message there and acts through the participant pages with an
in-process test client: consent, baseline, the arm's page, joining and the follow-up
survey, as the simulator's probabilities say. The campaign's report and the simulated
truth are written last. Residents act in a few forked processes; survey-first residents
are split by stratum so every stratum's arrival order, hence every arm, replays from
the seed. In a campaign with a mentor role (the `peer-mentoring` catalog campaign), joiners
whose page offers the role agree on it, take their invitation link and pass it on:
neighbours off the council's list open it in their own browsers, consent, answer the
baseline and some join, enrolled with `referred_by`. A step that cannot run (no first
message went out, too little data for a report) is skipped and named in
`DemoResult.skipped`.
"""

from __future__ import annotations

import json
import logging
import multiprocessing
import os
import re
import secrets
import time
import warnings
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from flask import Flask
from sqlalchemy import func, select

from experiments import baseline
from experiments.design import CampaignDesign, load_design
from experiments.simulate import (
    CATALOG_EFFECTS,
    SimulationParams,
    TrueEffects,
    eligible,
    simulate_population,
    simulate_responses,
    true_effects,
    true_effects_by_outcome,
    true_mediated,
)
from experiments.simulate_saturation import joined_given, true_spillover

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
    # Processes acting as residents (0: one per core, at most 4). Survey-first arrivals are
    # split by stratum, so each stratum's arrival order, hence every arm, is reproducible.
    workers: int = 0


@dataclass
class DemoResult:
    council_slug: str = DEMO_COUNCIL_SLUG
    admin_email: str = DEMO_ADMIN_EMAIL
    admin_password: str = ""
    campaign_slug: str = ""
    campaign_id: int | None = None
    enrolled: int = 0
    # Residents the campaign's eligibility rules screened out (never randomized).
    screened_out: int = 0
    joined: int = 0
    messages_sent: int = 0
    surveyed: int = 0
    checked_in: int = 0  # check-ins in the organiser's attendance register
    # Peer mentoring: joiners who agreed to be mentors on their page, and the residents
    # their invitation links enrolled (`referred_by`).
    mentors: int = 0
    referred: int = 0
    report_files: list[Path] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)
    urls: dict[str, str] = field(default_factory=dict)
    # arm -> (estimate, ci_low, ci_high) from the report; arm -> true effect (simulator).
    estimates: dict[str, tuple[float, float, float]] = field(default_factory=dict)
    truth: dict[str, float] = field(default_factory=dict)
    # Saturation designs: the report's spillover rows and the simulator's truth.
    spillover: list[dict] = field(default_factory=list)
    spillover_truth: dict[str, dict[str, float]] = field(default_factory=dict)


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


@contextmanager
def _timed(result: DemoResult, step: str):
    start = time.perf_counter()
    try:
        yield
    finally:
        spent = time.perf_counter() - start
        result.timings[step] = round(result.timings.get(step, 0.0) + spent, 2)


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
    ready: Callable[[DemoResult], None] | None = None,
) -> DemoResult:
    """Run the whole demo against `app`'s (migrated) database; returns what happened.

    `ready(result)` is called once the council, the admin login and the campaign exist
    (the result's password and urls are set), before the residents act: `nudge demo`
    starts serving there, so the console opens at once and fills as the simulation runs.
    """
    from nudge_app.boundary import unit_of_work

    if options.participants < 10:
        raise DemoError("--participants must be at least 10")
    out = Path(options.out)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise DemoError(f"cannot create the output folder {out}: {exc.strerror}") from None
    design = demo_design(options.campaign, options.seed)
    effects = CATALOG_EFFECTS.get(options.campaign, {})
    saturations = tuple(design.randomization.saturations or ())
    # A saturation design randomizes neighbourhoods: smaller ones give more of them.
    params = SimulationParams(neighbourhood_size=100) if saturations else SimulationParams()
    result = DemoResult()

    with _timed(result, "setup"), app.app_context(), unit_of_work():
        _set_up(app, design, result)
    result.urls = _urls(app, result.campaign_slug)
    if ready is not None:
        ready(result)
    echo(
        f"Council {result.council_slug!r} with admin {result.admin_email}; campaign "
        f"{result.campaign_slug!r} ({design.enrolment_mode} enrolment, arms: "
        + ", ".join(a.key for a in design.arms)
        + ")"
    )

    with _timed(result, "simulate population"):
        population = simulate_population(options.participants, seed=options.seed, params=params)
    echo(f"Simulated {len(population):,} residents (seed {options.seed}).")

    residents = _Residents(app, result, population, effects, options, progress, echo)
    residents.run(design)
    with _timed(result, "report"):
        _write_report(app, result, out, echo)
        if residents.responses is not None:
            exposure = LIST_EXPOSURE if design.enrolment_mode == "list" and not saturations else 1.0
            # The estimates are about the residents the eligibility rules admit: so is
            # the truth they are checked against.
            admitted = population[eligible(population, design.eligibility_rules())]
            _write_truth(
                result,
                true_effects(admitted, effects, exposure=exposure),
                true_effects_by_outcome(admitted, effects, exposure=exposure),
                true_mediated(admitted, effects, exposure=exposure),
                out,
                design.eligibility_rules(),
                len(admitted),
                spillover=(
                    true_spillover(population, "neighbourhood", saturations, seed=options.seed)
                    if saturations
                    else None
                ),
            )
    with _timed(result, "evidence"), app.app_context(), unit_of_work():
        _close_into_library(result, echo)
    result.urls = _urls(app, result.campaign_slug)
    return result


def _close_into_library(result: DemoResult, echo) -> None:
    """The simulated campaign has run its course: close it (nothing more is sent) and
    record its results in the council's evidence library, where "What has worked" pools
    them with the earlier demo runs' campaigns."""
    from nudge_app.extensions import db
    from nudge_app.models import Campaign
    from nudge_app.services import evidence_library, evidence_record
    from nudge_app.services.campaigns import close_campaign
    from nudge_app.services.outbox import cancel_campaign

    campaign = db.session.get(Campaign, result.campaign_id)
    close_campaign(campaign, actor="demo")
    cancel_campaign(campaign.id, "closed")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        entry = evidence_record.record_campaign(campaign)
    if entry is None:
        result.skipped.append("the evidence library (the campaign has no report yet)")
        return
    own = [e for e in evidence_library.library(campaign.council_id) if e.source == "own"]
    echo(
        f"Closed the campaign; its results joined the evidence library ({len(own)} closed "
        "campaign(s) there: see What has worked)."
    )


def _urls(app: Flask, slug: str) -> dict[str, str]:
    """Where the campaign can be browsed (paths)."""
    from flask import url_for

    with app.test_request_context("/"):
        return {
            "console": url_for("console.campaign", slug=slug),
            "monitoring": url_for("console.monitor", slug=slug),
            "report": url_for("reports.report_html", campaign_slug=slug),
            "what has worked": url_for("console.evidence"),
        }


def _set_up(app: Flask, design: CampaignDesign, result: DemoResult) -> None:
    from nudge_app.extensions import db
    from nudge_app.models import Council, StaffUser
    from nudge_app.security import hash_password
    from nudge_app.services.campaigns import create_campaign
    from nudge_app.services.councils import create_council
    from nudge_app.services.staff import create_user

    council = db.session.scalar(select(Council).where(Council.slug == DEMO_COUNCIL_SLUG))
    if council is None:
        council = create_council(DEMO_COUNCIL_SLUG, DEMO_COUNCIL_NAME, actor="demo")
    password = secrets.token_urlsafe(12)
    user = db.session.scalar(select(StaffUser).where(StaffUser.email == DEMO_ADMIN_EMAIL))
    if user is None:
        user = create_user(council, DEMO_ADMIN_EMAIL, "admin", password, actor="demo")
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


LINK_RE = re.compile(r"/p/([A-Za-z0-9_-]{20,100})")
RESIDENT_DOMAIN = "residents.example.org"
# The individual activities the baseline page lists (experiments.baseline).
ACTIVITY_KEYS = tuple(o.value for o in baseline.get("individual_coproduction").options)


def resident_email(index: int) -> str:
    return f"resident{index + 1:06d}@{RESIDENT_DOMAIN}"


def _resident_index(email: str) -> int | None:
    local, _, domain = (email or "").partition("@")
    if domain != RESIDENT_DOMAIN or not local.startswith("resident"):
        return None
    return int(local.removeprefix("resident")) - 1


REFERRAL_RE = re.compile(r'id="referral-link" readonly value="([^"]+)"')
FORM_KEY_RE = re.compile(r'name="form_key" value="([^"]+)"')
# Each mentor passes their link to this many neighbours, each of whom accepts with the
# chance below; an invited resident joins with the chance after it.
INVITES_PER_MENTOR = 3
INVITE_ACCEPTED = 0.5
INVITED_JOIN = 0.5
MENTOR_NOTES = (
    "Come and help clear our street on Saturday: it is two hours and good company.",
    "I am going to the clean-up. Join me, we can walk over together!",
    "Our street needs a tidy-up and more hands make it quick. Hope to see you there.",
)


def _baseline_form(row: pd.Series, activities: list[str]) -> dict:
    """A simulated resident's baseline page answers."""
    return {
        "age": str(int(row["age"])),
        "gender": row["gender"],
        "se_safety": str(int(row["self_efficacy_safety"])),
        "se_environment": str(int(row["self_efficacy_environment"])),
        "se_health": str(int(row["self_efficacy_health"])),
        "individual_coproduction": activities,
        # 0 never; a group last year: "once or a few times a year"
        "collective_coproduction": str(int(row["collective_coproduction"])),
    }


class _ErrorTrap(logging.Handler):
    """Keeps the last error the app logged, so a failed resident request can say why."""

    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.last = ""

    def emit(self, record: logging.LogRecord) -> None:
        exc = record.exc_info[1] if record.exc_info else None
        self.last = f"{type(exc).__name__}: {exc}" if exc else record.getMessage()


_ERRORS = _ErrorTrap()
logging.getLogger("nudge_app").addHandler(_ERRORS)


class _Mailbox:
    """The residents' inboxes: new lines of the file channel's output since the last read."""

    def __init__(self, path: Path):
        self.path = Path(path)
        self.offset = self.path.stat().st_size if self.path.exists() else 0

    def new_messages(self) -> list[dict]:
        if not self.path.exists():
            return []
        with open(self.path, "rb") as fh:
            fh.seek(self.offset)
            data = fh.read()
        end = data.rfind(b"\n") + 1
        self.offset += end
        return [json.loads(line) for line in data[:end].splitlines() if line.strip()]


class _Residents:
    """The simulated residents: they read their email in the file channel's output and act
    through the participant pages with one in-process test client."""

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
        self.mailbox = _Mailbox(Path(app.config["FILE_CHANNEL_PATH"]))
        self.tokens: dict[int, str] = {}
        self.consented = np.zeros(len(population), dtype=bool)
        self.list_mode = False
        self.responses: pd.DataFrame | None = None
        self.clock = datetime.now(UTC)
        self.invitees = population.iloc[:0]
        rng = np.random.default_rng(np.random.SeedSequence([options.seed, 8]))
        # Which of the six listed activities each resident does (as many as simulated).
        self.activities = [
            list(rng.choice(ACTIVITY_KEYS, size=int(k), replace=False))
            for k in population["individual_coproduction"].clip(0, len(ACTIVITY_KEYS))
        ]

    # -- the council's side --------------------------------------------------------------

    def import_and_launch(self, design: CampaignDesign) -> None:
        from nudge_app.boundary import unit_of_work
        from nudge_app.extensions import db
        from nudge_app.models import Campaign
        from nudge_app.services.campaigns import launch_campaign
        from nudge_app.services.participants_import import import_csv

        with self.app.app_context(), unit_of_work():
            campaign = db.session.get(Campaign, self.result.campaign_id)
            import_csv(campaign, self.list_csv(design), actor="demo")
            launch_campaign(campaign, actor="demo")

    def list_csv(self, design: CampaignDesign) -> str:
        """The council's list of residents: contact details, and for a `list` campaign the
        baseline answers it already holds (age, gender, self-efficacy)."""
        f = self.population
        table = pd.DataFrame(
            {
                "external_ref": [f"R{i + 1:06d}" for i in range(len(f))],
                "first_name": f["first_name"],
                "email": [resident_email(i) for i in range(len(f))],
                "neighbourhood": f["neighbourhood"],
                "cluster": f["household"],
            }
        )
        if design.enrolment_mode == "list":
            table["age"] = f["age"]
            table["gender"] = f["gender"]
            table["se_safety"] = f["self_efficacy_safety"]
            table["se_environment"] = f["self_efficacy_environment"]
            table["se_health"] = f["self_efficacy_health"]
        return table.to_csv(index=False)

    def tick(self, at: datetime) -> None:
        """One scheduler round at demo time `at` (moved out of the council's quiet hours)."""
        from nudge_app.scheduler import run_once

        at = self._allowed(at)
        self.clock = max(self.clock, at)
        with _timed(self.result, "scheduler"):
            round_ = run_once(self.app, now=at)
        self.result.messages_sent += int(getattr(round_.dispatched, "sent", 0) or 0)

    def _allowed(self, at: datetime) -> datetime:
        from nudge_app.delivery.quiet import next_allowed
        from nudge_app.extensions import db
        from nudge_app.models import Council

        with self.app.app_context():
            council = db.session.scalar(
                select(Council).where(Council.slug == self.result.council_slug)
            )
            return next_allowed(at, council.timezone, council.quiet_start, council.quiet_end)

    def read_mail(self, kinds: tuple[str, ...]) -> dict[int, str]:
        """Resident index -> personal-link token, from new messages of these kinds."""
        found: dict[int, str] = {}
        for message in self.mailbox.new_messages():
            if message.get("kind") not in kinds:
                continue
            index = _resident_index(message.get("to", ""))
            match = LINK_RE.search(message.get("text", ""))
            if index is not None and match:
                found[index] = match.group(1)
        return found

    def arms(self) -> np.ndarray:
        """Each resident's assigned arm key (None where not randomized)."""
        from nudge_app.extensions import db
        from nudge_app.models import Arm, Assignment, Participant

        with self.app.app_context():
            rows = db.session.execute(
                select(Participant.external_ref, Arm.key)
                .join(Assignment, Assignment.participant_id == Participant.id)
                .join(Arm, Arm.id == Assignment.arm_id)
                .where(Participant.campaign_id == self.result.campaign_id)
            ).all()
        out = np.full(len(self.population), None, dtype=object)
        for ref, key in rows:
            if ref and ref.startswith("R"):
                out[int(ref[1:]) - 1] = key
        return out

    def screened_out(self) -> int:
        """How many residents the campaign's eligibility rules screened out."""
        from nudge_app.extensions import db
        from nudge_app.models import Participant

        with self.app.app_context():
            return int(
                db.session.scalar(
                    select(func.count(Participant.id)).where(
                        Participant.campaign_id == self.result.campaign_id,
                        Participant.screened_out_rule.is_not(None),
                    )
                )
            )

    # -- the residents' side -------------------------------------------------------------

    def _post(self, url: str, data: dict) -> None:
        self._check("POST", url, self.client.post(url, data=data))

    def _get(self, url: str) -> None:
        self._check("GET", url, self.client.get(url))

    def _check(self, method: str, url: str, response) -> None:
        if response.status_code < 400:
            return
        # The token stays out of the message; the app's logged error says what went wrong.
        page = url.split("/")[-1] if url.count("/") > 2 else "entry"
        cause = f": {_ERRORS.last}" if _ERRORS.last else ""
        raise DemoError(
            f"{method} of a resident's {page} page answered {response.status_code}{cause}"
        )

    def open_link(self, index: int, token: str, list_mode: bool) -> None:
        """Follow the link in the message: the consent page, then the baseline, then the arm."""
        base = f"/p/{token}"
        self._get(base)
        self._post(f"{base}/consent", {"decision": "agree"})
        if list_mode:
            self._post(f"{base}/baseline", {"decision": "confirm"})
        else:
            row = self.population.iloc[index]
            self._post(f"{base}/baseline", _baseline_form(row, self.activities[index]))
        self._get(base)  # the arm's page: the exposure

    def join(self, token: str) -> None:
        self._post(f"/p/{token}/join", {"contact": "email"})

    def answer_survey(self, token: str, answers: pd.Series, index: int) -> None:
        self._post(
            f"/p/{token}/follow-up",
            {
                "participated": "yes" if int(answers["participated"]) else "no",
                # the same individual and collective items as at baseline
                "individual_coproduction": self.followup_activities(
                    index, int(answers["individual_coproduction"])
                ),
                "collective_coproduction": str(int(answers["collective_coproduction"])),
                "se_safety": str(int(answers["self_efficacy_safety_followup"])),
                "se_environment": str(int(answers["self_efficacy_environment_followup"])),
                "se_health": str(int(answers["self_efficacy_health_followup"])),
            },
        )

    def followup_activities(self, index: int, count: int) -> list[str]:
        """`count` activities at follow-up: those done at baseline first, then new ones."""
        done = self.activities[index]
        order = done + [a for a in ACTIVITY_KEYS if a not in done]
        return order[: max(0, min(count, len(order)))]

    # -- peer mentoring -----------------------------------------------------------------

    def mentor(self, index: int, token: str) -> None:
        """A joiner's mentor page: when it offers the role (the campaign's rule, the page
        decides), they agree with a note, take their invitation link and pass it on; each
        neighbour it reaches opens it in their own browser, agrees, answers the baseline
        and, as simulated, joins."""
        page = self.client.get(f"/p/{token}/mentor")
        if page.status_code == 404:
            return
        self._check("GET", f"/p/{token}/mentor", page)
        rng = np.random.default_rng(np.random.SeedSequence([self.options.seed, 59, index]))
        self._post(
            f"/p/{token}/mentor",
            {"decision": "agree", "note": MENTOR_NOTES[index % len(MENTOR_NOTES)]}
            | ({"show_first_name": "on"} if rng.random() < 0.5 else {}),
        )
        page = self.client.get(f"/p/{token}/mentor").get_data(as_text=True)
        found = REFERRAL_RE.search(page)
        if found is None:
            raise DemoError("a mentor's page shows no invitation link")
        path = found.group(1)[found.group(1).index("/p/r/") :]
        for k in range(int(rng.binomial(INVITES_PER_MENTOR, INVITE_ACCEPTED))):
            self.invited(path, index, k, bool(rng.random() < INVITED_JOIN))

    def invited(self, path: str, mentor_index: int, k: int, joins: bool) -> None:
        """One invited neighbour, in their own browser: the invitation, consent, baseline
        and, if they join, the join page."""
        client = self.app.test_client()
        page = client.get(path)
        self._check("GET", "/p/r/invitation", page)
        key = FORM_KEY_RE.search(page.get_data(as_text=True))
        response = client.post(
            path, data={"decision": "agree", "form_key": key.group(1) if key else ""}
        )
        self._check("POST", "/p/r/invitation", response)
        target = response.headers.get("Location", "")
        match = LINK_RE.search(target)
        if match is None:
            raise DemoError(f"an invitation link answered {response.status_code} without a page")
        token = match.group(1)
        row = self.invitees.iloc[(mentor_index * INVITES_PER_MENTOR + k) % len(self.invitees)]
        self._check(
            "POST",
            "/p/invited/baseline",
            client.post(f"/p/{token}/baseline", data=_baseline_form(row, [])),
        )
        self._check("GET", "/p/invited/entry", client.get(f"/p/{token}"))
        if joins:
            email = f"invited{mentor_index + 1:06d}-{k + 1}@{RESIDENT_DOMAIN}"
            self._check(
                "POST",
                "/p/invited/join",
                client.post(f"/p/{token}/join", data={"contact": "email", "email": email}),
            )

    def mentoring(self, joiners: list[tuple[int, str]]) -> None:
        """Joiners offered the mentor role take it up and pass their links on."""
        from nudge_app.extensions import db
        from nudge_app.models import Mentor, Participant

        # The neighbours mentors invite (not on the council's list): their baseline answers.
        self.invitees = simulate_population(
            max(10, INVITES_PER_MENTOR * len(joiners)), seed=self.options.seed + 7919
        )
        self.act_all("Mentors inviting", "mentor", _chunks(joiners, self._worker_count()))
        with self.app.app_context():
            cid = self.result.campaign_id
            self.result.mentors = int(
                db.session.scalar(select(func.count(Mentor.id)).where(Mentor.campaign_id == cid))
            )
            self.result.referred = int(
                db.session.scalar(
                    select(func.count(Participant.id)).where(
                        Participant.campaign_id == cid, Participant.referred_by.is_not(None)
                    )
                )
            )

    # -- the organiser's side -------------------------------------------------------------

    def record_attendance(self) -> None:
        """The organiser's attendance register of the monthly sessions (session k on the
        launch date + 4 (k - 1) weeks), as simulated: each attendee's number of sessions,
        session 3 (8 weeks on) among them when they were still coming."""
        from nudge_app.boundary import unit_of_work
        from nudge_app.extensions import db
        from nudge_app.models import Assignment, Campaign, Participant
        from nudge_app.services.attendance import check_in_code, import_register

        r = self.responses
        sessions = SimulationParams().sessions
        repeat_from = SimulationParams().repeat_from_session
        with self.app.app_context(), unit_of_work():
            campaign = db.session.get(Campaign, self.result.campaign_id)
            start = campaign.launched_at.date()
            rows = ["reference,session"]
            # Only randomized participants can be checked in as participants.
            for pid, email in db.session.execute(
                select(Participant.id, Participant.email)
                .join(Assignment, Assignment.participant_id == Participant.id)
                .where(Participant.campaign_id == campaign.id, Participant.erased_at.is_(None))
            ):
                index = _resident_index(email or "")
                if index is None or not r.at[index, "attended"]:
                    continue
                count = int(r.at[index, "sessions_attended"])
                if r.at[index, "attended_repeat"]:
                    others = [k for k in range(1, sessions + 1) if k != repeat_from]
                    chosen = [repeat_from, *others[: count - 1]]
                else:
                    chosen = list(range(1, count + 1))
                code = check_in_code(pid)
                for k in chosen:
                    when = start + timedelta(weeks=4 * (k - 1))
                    rows.append(f"{code},{when.isoformat()}")
            result = import_register(campaign, "\n".join(rows).encode(), None, None, "demo")
        self.result.checked_in = result.checked_in

    # -- acting in parallel --------------------------------------------------------------

    def _act(self, action: str, index: int, token: str) -> None:
        if action == "open":
            self.open_link(index, token, self.list_mode)
        elif action == "join":
            self.join(token)
        elif action == "survey":
            self.answer_survey(token, self.responses.loc[index], index)
        elif action == "mentor":
            self.mentor(index, token)

    def _worker_count(self) -> int:
        if self.options.workers > 0:
            return self.options.workers
        return max(1, min(4, os.cpu_count() or 1))

    def act_all(self, label: str, action: str, groups: list[list[tuple[int, str]]]) -> None:
        """Run `action` for every (resident, token): each group in order, groups in parallel.

        Each worker process is forked with its own database connections and test client.
        """
        with _timed(self.result, label.lower()):
            self._act_all(label, action, groups)

    def _act_all(self, label: str, action: str, groups: list[list[tuple[int, str]]]) -> None:
        groups = [g for g in groups if g]
        total = sum(len(g) for g in groups)
        if total == 0:
            return
        workers = min(self._worker_count(), len(groups))
        if workers <= 1 or total < 100:
            items = [item for g in groups for item in g]
            for index, token in self.progress(label, items, total):
                self._act(action, index, token)
            return
        lanes = _balance(groups, workers)
        from nudge_app.extensions import db

        with self.app.app_context():
            db.engine.dispose()
        ctx = multiprocessing.get_context("fork")
        queue = ctx.Queue()
        procs = [
            ctx.Process(target=self._lane, args=(action, lane, queue), daemon=True)
            for lane in lanes
        ]
        for proc in procs:
            proc.start()
        errors: list[str] = []
        finished = 0

        def ticks():
            nonlocal finished
            while finished < len(procs):
                kind, value = queue.get()
                if kind == "done":
                    yield int(value)
                    finished += 1
                elif kind == "error":
                    errors.append(str(value))
                    finished += 1
                else:
                    yield int(value)

        bar = self.progress(label, _units(ticks()), total)
        for _ in bar:
            pass
        for proc in procs:
            proc.join()
        if errors:
            raise DemoError(errors[0])
        bad = [p.exitcode for p in procs if p.exitcode]
        if bad:
            raise DemoError(f"a resident worker stopped with exit code {bad[0]}")

    def _lane(self, action: str, items: list[tuple[int, str]], queue) -> None:
        """One worker process: its own connections, its own test client."""
        from nudge_app.db import sqlite_begin_mode
        from nudge_app.extensions import db

        try:
            # Several writers at once: each transaction takes SQLite's write lock up front,
            # as the platform does (a test body may have set DEFERRED for its own reads).
            sqlite_begin_mode.set("IMMEDIATE")
            with self.app.app_context():
                db.engine.dispose(close=False)
            self.client = self.app.test_client()
            step = 0
            for index, token in items:
                self._act(action, index, token)
                step += 1
                if step == 25:
                    queue.put(("progress", step))
                    step = 0
            queue.put(("done", step))
        except BaseException as exc:  # reported to the parent, which stops with it
            queue.put(("error", f"{type(exc).__name__}: {exc}"))

    def stratum_groups(self, design: CampaignDesign, items: dict[int, str]):
        """Residents grouped by the stratum they will be randomized in (survey-first)."""
        from experiments.randomization import band_specs, stratum_of

        specs = band_specs(design.randomization.strata)
        if design.randomization.method != "blocked" or not specs:
            return [sorted(items.items())]
        f = self.population
        groups: dict[str, list[tuple[int, str]]] = {}
        for index in sorted(items):
            row = f.iloc[index]
            values = {
                "age": int(row["age"]),
                "self_efficacy": (
                    int(row["self_efficacy_safety"])
                    + int(row["self_efficacy_environment"])
                    + int(row["self_efficacy_health"])
                )
                / 3,
                "gender": row["gender"],
                "individual_coproduction": len(self.activities[index]),
                "country": None,
            }
            groups.setdefault(stratum_of(values, specs), []).append((index, items[index]))
        return list(groups.values())

    def saturation_joins(self, design: CampaignDesign) -> None:
        """Who joins in a saturation design: the chance under control plus the direct
        effect when offered the mentoring arm, or the spillover from offered neighbours."""
        from nudge_app.extensions import db
        from nudge_app.models import Assignment, Participant
        from nudge_app.services.saturation_assignment import saturation_of_label

        with self.app.app_context():
            rows = db.session.execute(
                select(Participant.external_ref, Assignment.stratum)
                .join(Assignment, Assignment.participant_id == Participant.id)
                .where(Participant.campaign_id == self.result.campaign_id)
            ).all()
        saturation = np.zeros(len(self.population))
        for ref, stratum in rows:
            if ref and ref.startswith("R"):
                saturation[int(ref[1:]) - 1] = saturation_of_label(stratum) or 0.0
        treated = self.arms() == next(a.key for a in design.arms if not a.control)
        joined, _ = joined_given(
            self.population, "neighbourhood", saturation, treated, self.options.seed
        )
        self.responses["joined"] = joined.astype(bool)

    # -- the whole run -------------------------------------------------------------------

    def run(self, design: CampaignDesign) -> None:
        list_mode = self.list_mode = design.enrolment_mode == "list"
        saturated = bool(design.randomization.saturations)
        # In a saturation design every listed resident reads their message (the truth is
        # then the spillover simulator's alone).
        exposure = LIST_EXPOSURE if list_mode and not saturated else 1.0
        self.import_and_launch(design)
        # Demo time starts once the first messages are due (just written, due now).
        start = self.clock = datetime.now(UTC) + timedelta(seconds=1)
        self.tick(start)
        first = self.read_mail(("nudge",) if list_mode else ("invitation",))
        if not first:
            self.result.skipped.append("the residents' visits (no first message was sent)")
            return
        if list_mode:
            # Randomized in batch at launch: who opens the message is drawn knowing the arm.
            self.responses = simulate_responses(
                self.population,
                self.arms(),
                self.effects,
                seed=self.options.seed,
                exposure=exposure,
            )
            if saturated:
                self.saturation_joins(design)
            visitors = {i: t for i, t in first.items() if self.responses.at[i, "exposed"]}
            groups = _chunks(sorted(visitors.items()), self._worker_count())
        else:
            visitors = first
            groups = self.stratum_groups(design, visitors)
        self.act_all("Residents enrolling", "open", groups)
        self.consented[list(visitors)] = True
        arms = self.arms()
        self.result.enrolled = int(np.sum(arms != None))  # noqa: E711 (elementwise)
        self.result.screened_out = self.screened_out()
        if not list_mode:
            self.responses = simulate_responses(
                self.population, arms, self.effects, seed=self.options.seed, exposure=1.0
            )
        # Only the randomized can join: the eligibility rules screened the others out.
        joiners = [
            (i, first[i])
            for i in sorted(visitors)
            if arms[i] is not None and self.responses.at[i, "joined"]
        ]
        self.act_all("Residents joining", "join", _chunks(joiners, self._worker_count()))
        self.result.joined = len(joiners)
        if design.mentoring is not None:
            self.mentoring(joiners)

        # A follow-up is due its offset after the resident enrolled; enrolling takes real
        # time (minutes for thousands), so each step's round runs that long after the
        # last enrolment, else the later strata's reminders and surveys would not be due.
        enrolled_by = max(start, datetime.now(UTC))
        for step in sorted(design.follow_ups, key=lambda s: s.offset_hours):
            self.tick(enrolled_by + timedelta(hours=step.offset_hours, minutes=5))
            mail = self.read_mail((step.kind,))
            if step.kind != "survey":
                continue
            answering = [
                (i, mail[i])
                for i in sorted(mail)
                if self.consented[i] and self.responses.at[i, "surveyed"]
            ]
            self.act_all(
                f"Answering {step.key}", "survey", _chunks(answering, self._worker_count())
            )
            self.result.surveyed += len(answering)
        self.record_attendance()


def _chunks(items: list, n: int) -> list[list]:
    """`items` cut into `n` contiguous runs of nearly equal length."""
    n = max(1, n)
    size = -(-len(items) // n) if items else 0
    return [items[i : i + size] for i in range(0, len(items), size)] if size else []


def _balance(groups: list[list], lanes: int) -> list[list]:
    """Whole groups spread over `lanes` lanes as evenly as possible.

    Two lanes and a few groups (the strata of a design): the best split of all. Otherwise
    largest group first, each to the lightest lane.
    """
    if lanes == 2 and 1 < len(groups) <= 16:
        total = sum(len(g) for g in groups)
        best = min(
            range(1 << (len(groups) - 1)),
            key=lambda mask: abs(
                total - 2 * sum(len(g) for i, g in enumerate(groups) if mask >> i & 1)
            ),
        )
        split: list[list] = [[], []]
        for i, group in enumerate(groups):
            split[best >> i & 1].extend(group)
        return [lane for lane in split if lane]
    out: list[list] = [[] for _ in range(lanes)]
    for group in sorted(groups, key=len, reverse=True):
        min(out, key=len).extend(group)
    return [lane for lane in out if lane]


def _units(counts: Iterable[int]) -> Iterator[None]:
    for count in counts:
        for _ in range(count):
            yield None


def _write_report(app: Flask, result: DemoResult, out: Path, echo) -> None:
    from nudge_app.extensions import db
    from nudge_app.models import Campaign
    from nudge_app.services import reporting

    with app.app_context():
        campaign = db.session.get(Campaign, result.campaign_id)
        try:
            # numpy warns on degenerate cells of a tiny demo (the estimators already turn
            # them into NaN and an error code); the report says so itself.
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)
                report = reporting.campaign_report(campaign)
        except reporting.ReportNotReady as exc:
            result.skipped.append(f"the report files (the report is not ready: {exc})")
            return
        files = {
            "report.html": report.to_html(),
            "report.json": report.to_json(),
            "report.csv": report.to_csv(),
        }
    for name, text in files.items():
        path = out / name
        path.write_text(text, encoding="utf-8")
        result.report_files.append(path)
    result.estimates = {e.arm: (e.estimate, e.ci_low, e.ci_high) for e in report.analysis.effects}
    result.spillover = [row.to_dict() for row in report.analysis.spillover]


def _write_truth(
    result: DemoResult,
    truth: TrueEffects,
    by_outcome: dict[str, dict[str, float]],
    mediated: dict[str, float],
    out: Path,
    rules: list | None = None,
    eligible_n: int | None = None,
    spillover: dict[str, dict[str, float]] | None = None,
) -> None:
    """What the simulator knows and the report estimates: the true effects on joining (per
    band too), on every other outcome, and the part mediated by follow-up self-efficacy."""
    path = out / "truth.json"
    data = {
        "note": "True average effects of each arm in this simulated sample "
        "(experiments.simulate.true_effects); the report's intervals should cover them. "
        "Survey outcomes count every resident, as if all had answered. They are about "
        "the eligible residents only: those the campaign's eligibility rules admit.",
        "eligibility": [rule.text for rule in rules or []],
        "eligible": eligible_n,
        "outcome": truth.outcome,
        "control": truth.control,
        "control_rate": truth.control_rate,
        "effects": truth.overall,
        "subgroups": truth.by_band,
        "band_sizes": truth.band_sizes,
        "effects_by_outcome": by_outcome,
        "mediated": mediated,
    }
    if spillover is not None:
        # A saturation design: per saturation, the true direct, spillover and total effect
        # on joining against pure-control neighbourhoods (experiments.simulate_saturation).
        data["spillover"] = spillover
        result.spillover_truth = spillover
    path.write_text(json.dumps(data, indent=2), encoding="utf-8")
    result.truth = dict(truth.overall)
    result.report_files.append(path)
