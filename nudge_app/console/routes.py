"""Console pages: sign-in, campaigns and their editor, previews, participants, lifecycle,
monitoring, the audit log, users and API tokens.

Routes are thin: check the role, find the council's own object (404 otherwise), call one
service function, commit, render. Every form carries a CSRF token (CSRFProtect is global).
"""

from __future__ import annotations

import csv
import io
import json
import re
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from flask import (
    Response,
    abort,
    current_app,
    flash,
    g,
    redirect,
    render_template,
    request,
    url_for,
)
from sqlalchemy import func, select
from werkzeug.exceptions import RequestEntityTooLarge

from experiments import baseline
from experiments.design import (
    CHANNELS,
    CORRECTIONS,
    ENROLMENT_MODES,
    LANGUAGES,
    OUTCOMES,
    PLACEHOLDERS,
    POLICY_DOMAINS,
    PRE_TREATMENT,
    RANDOMIZATION_METHODS,
    STEP_CONDITIONS,
    STEP_KINDS,
    DesignError,
    Problem,
    design_to_toml,
    parse_design,
)
from nudge_app.auth import (
    council_campaign_or_404,
    current_staff,
    login_required,
    login_staff,
    logout_staff,
    roles_required,
)
from nudge_app.console import bp
from nudge_app.console import design_forms as forms
from nudge_app.extensions import db
from nudge_app.models import (
    ROLES,
    ApiToken,
    Assignment,
    AuditEntry,
    Campaign,
    Event,
    Participant,
    StaffUser,
)
from nudge_app.services import answers
from nudge_app.services import campaigns as campaign_service
from nudge_app.services import staff as staff_service
from nudge_app.services.monitoring import campaign_monitoring
from nudge_app.services.participants_import import (
    COLUMNS,
    OPTIONAL_COLUMNS,
    REQUIRED_COLUMNS,
    ImportNotAllowed,
    ImportRejected,
    baseline_column_help,
    import_csv,
)

EDITORS = ("designer",)  # admins always pass roles_required
SAMPLE = SimpleNamespace(
    id=0,
    first_name="Alex",
    neighbourhood="Riverside",
    access_nonce="preview-sample",
    email="alex@example.org",
    phone="+447700900000",
)
REPORT_ID_RE = re.compile(r"^[0-9a-f]{32}$")


def actor() -> tuple[str, int]:
    staff = current_staff()
    return f"user:{staff.id}", staff.id


def sees_contacts() -> bool:
    staff = current_staff()
    return staff is not None and staff.role in ("admin", "designer")


@bp.before_app_request
def _fresh_request_state() -> None:
    # Who is signed in and the CSRF token belong to one request, even when the caller
    # (a test, a script) keeps one app context, and so one `g`, across many requests.
    g.pop("staff", None)
    g.pop("csrf_token", None)


@bp.after_request
def _headers(response: Response) -> Response:
    response.headers.setdefault("X-Frame-Options", "DENY")
    response.headers.setdefault("X-Content-Type-Options", "nosniff")
    response.headers.setdefault("Referrer-Policy", "same-origin")
    if response.mimetype == "text/html":
        response.headers.setdefault("Cache-Control", "no-store")
    return response


@bp.app_context_processor
def _console_context():
    return {"staff": current_staff()}


@bp.errorhandler(RequestEntityTooLarge)
def _too_large(exc):
    limit = current_app.config.get("MAX_CONTENT_LENGTH") or 0
    size = f"{limit / 1e6:.0f} MB" if limit >= 1e6 else f"{limit / 1e3:.0f} kB"
    message = f"The file is too large: the limit is {size}. Split it into smaller files."
    return render_template("console/message.html", title="File too large", message=message), 413


# --- sign in ----------------------------------------------------------------------------


def _safe_next(target: str | None) -> str:
    if target and target.startswith("/") and not target.startswith("//") and "\\" not in target:
        return target
    return url_for("console.index")


@bp.route("/login", methods=["GET", "POST"])
def login():
    if request.method == "GET":
        if current_staff() is not None:
            return redirect(url_for("console.index"))
        return render_template("console/login.html", next=request.args.get("next", ""))
    email = (request.form.get("email") or "").strip()
    password = request.form.get("password") or ""
    client = request.remote_addr or "unknown"
    try:
        user = staff_service.authenticate(email, password, client)
    except staff_service.LoginThrottled as exc:
        db.session.commit()
        response = render_template(
            "console/login.html", error=str(exc), email=email, next=request.form.get("next")
        )
        return response, 429, {"Retry-After": str(exc.retry_after_seconds)}
    db.session.commit()
    if user is None:
        return render_template(
            "console/login.html",
            error="The email or password is not right.",
            email=email,
            next=request.form.get("next"),
        ), 401
    login_staff(user)
    return redirect(_safe_next(request.form.get("next")))


@bp.post("/logout")
def logout():
    logout_staff()
    flash("You are signed out.")
    return redirect(url_for("console.login"))


# --- campaigns --------------------------------------------------------------------------


@bp.get("/")
@login_required
def index():
    staff = current_staff()
    rows = db.session.execute(
        select(Campaign, func.count(Participant.id))
        .outerjoin(Participant, Participant.campaign_id == Campaign.id)
        .where(Campaign.council_id == staff.council_id)
        .group_by(Campaign.id)
        .order_by(Campaign.created_at.desc())
    ).all()
    return render_template("console/index.html", rows=rows)


def _campaign(slug: str) -> Campaign:
    return council_campaign_or_404(current_staff().council_id, slug)


def _problems_of(exc: Exception) -> list[Problem]:
    if isinstance(exc, DesignError):
        return exc.problems
    return [Problem("", str(exc))]


@bp.route("/campaigns/new", methods=["GET", "POST"])
@roles_required(*EDITORS)
def campaign_new():
    staff = current_staff()
    choices = {"catalog": forms.catalog_designs()}
    if request.method == "GET":
        return render_template("console/campaign_new.html", form={}, **choices, **_enums())
    source = request.form.get("source", "form")
    try:
        if source == "catalog":
            text = forms.catalog_text(request.form.get("catalog", ""))
            if text is None:
                raise DesignError([Problem("catalog", "choose one of the catalog designs")])
            design = parse_design(text)
        elif source == "file":
            upload = request.files.get("design_file")
            if upload is None or not upload.filename:
                raise DesignError([Problem("design_file", "choose a design file (.toml)")])
            design = parse_design(upload.read())
        else:
            design = parse_design(forms.starter_design(request.form))
    except DesignError as exc:
        db.session.rollback()
        return render_template(
            "console/campaign_new.html",
            form=request.form,
            problems=exc.problems,
            **choices,
            **_enums(),
        ), 422
    if (design.slug or campaign_service._slugify(design.name)) == "new":
        design.slug = "new-campaign"  # /campaigns/new is this page
    campaign = campaign_service.create_campaign(
        staff.council, design, actor=f"user:{staff.id}", actor_id=staff.id
    )
    db.session.commit()
    flash(f"Draft campaign {campaign.name!r} created.")
    return redirect(url_for("console.campaign", slug=campaign.slug))


def _enums(campaign: Campaign | None = None, design=None) -> dict:
    """The editor's choices; a campaign's strata and moderators are the baseline variables
    it can have data for, and any its design already names."""
    offered = list(PRE_TREATMENT)
    if campaign is not None:
        offered = [v.name for v in answers.variables_with_data(campaign)]
        offered += [s.moderator for s in design.randomization.strata]
        offered += [*design.analysis.moderators, *design.analysis.covariates]
        offered = list(dict.fromkeys(offered))
    return {
        "policy_domains": POLICY_DOMAINS,
        "enrolment_modes": ENROLMENT_MODES,
        "languages": LANGUAGES,
        "methods": RANDOMIZATION_METHODS,
        "outcomes": OUTCOMES,
        "strata_offered": [n for n in offered if n in baseline.stratum_names()],
        "moderators_offered": [n for n in offered if n in baseline.moderator_names()],
        "banded": [v.name for v in baseline.variables() if v.bands is not None],
        "corrections": CORRECTIONS,
        "channels": CHANNELS,
        "step_kinds": STEP_KINDS,
        "step_conditions": STEP_CONDITIONS,
        "placeholders": PLACEHOLDERS,
    }


def power_estimate(campaign: Campaign) -> dict:
    """The analysis engine's sample size and MDE beside the planned sample size."""
    try:
        from experiments.power import minimum_detectable_effect, sample_size_two_proportions
    except ImportError:
        return {"available": False, "message": "Power estimate not available in this build."}
    plan = campaign.analysis_plan or {}
    arms = campaign.arms
    if len(arms) < 2:
        return {"available": False, "message": "Add at least two arms to estimate power."}
    p0 = float(plan.get("baseline_rate", 0.1))
    mde = float(plan.get("minimum_effect", 0.03))
    alpha = float(plan.get("alpha", 0.05))
    power = float(plan.get("power", 0.8))
    correction = plan.get("correction", "holm")
    out: dict = {"available": True, "baseline_rate": p0, "minimum_effect": mde}
    try:
        need = sample_size_two_proportions(
            p0, min(p0 + mde, 0.999), alpha, power, arms=len(arms), correction=correction
        )
        out["needed_total"] = need.n_total
        out["needed_per_arm"] = need.n_per_arm
    except ValueError as exc:
        out["needed_error"] = str(exc)
    planned = campaign.planned_sample_size
    out["planned"] = planned
    if planned:
        total_weight = sum(a.weight for a in arms) or 1
        control = next((a for a in arms if a.is_control), arms[0])
        smallest = min((a for a in arms if not a.is_control), key=lambda a: a.weight)
        n_c = max(int(planned * control.weight / total_weight), 2)
        n_t = max(int(planned * smallest.weight / total_weight), 2)
        try:
            detectable = minimum_detectable_effect(
                p0, n_t, n_c, alpha, power, comparisons=len(arms) - 1, correction=correction
            )
            out["planned_mde"] = None if detectable != detectable else detectable
        except ValueError:
            out["planned_mde"] = None
        out["enough"] = bool(out.get("needed_total")) and planned >= out["needed_total"]
    return out


@bp.get("/campaigns/<slug>")
@login_required
def campaign(slug: str):
    c = _campaign(slug)
    participants = db.session.scalar(
        select(func.count(Participant.id)).where(Participant.campaign_id == c.id)
    )
    template_sms = {
        arm.key: forms.sms_segments(arm.sms_template) for arm in c.arms if arm.sms_template
    }
    return render_template(
        "console/campaign.html",
        c=c,
        participants=participants,
        power=power_estimate(c),
        sms=template_sms,
        can_edit=sees_contacts(),
    )


def _save_design(c: Campaign, tables: dict, template: str, status_ok: str, **context):
    """Check the edited tables and store them, or show the problems on the same form."""
    who, who_id = actor()
    try:
        design = parse_design(tables)
        campaign_service.update_design(c, design, actor=who, actor_id=who_id)
    except (DesignError, campaign_service.CampaignError) as exc:
        db.session.rollback()
        return render_template(template, c=c, problems=_problems_of(exc), **context), 422
    db.session.commit()
    flash(status_ok)
    return redirect(url_for("console.campaign", slug=c.slug))


def _refuse_if_frozen(c: Campaign):
    if c.is_frozen:
        flash(
            f"This campaign was launched on {c.launched_at:%d %B %Y}: its design "
            "(arms, templates, randomization, analysis plan) is frozen and cannot be edited."
        )
        return redirect(url_for("console.campaign", slug=c.slug))
    return None


@bp.route("/campaigns/<slug>/edit", methods=["GET", "POST"])
@roles_required(*EDITORS)
def campaign_edit(slug: str):
    c = _campaign(slug)
    design = campaign_service.design_of(c)
    if request.method == "GET":
        return render_template("console/campaign_edit.html", c=c, d=design, **_enums(c, design))
    if (refused := _refuse_if_frozen(c)) is not None:
        return refused
    tables = forms.design_tables(design)
    try:
        tables = forms.apply_settings(tables, request.form)
    except DesignError as exc:
        return render_template(
            "console/campaign_edit.html", c=c, d=design, problems=exc.problems, **_enums(c, design)
        ), 422
    return _save_design(
        c,
        tables,
        "console/campaign_edit.html",
        "Campaign settings saved.",
        d=design,
        **_enums(c, design),
    )


@dataclass(frozen=True)
class _Part:
    """A list of the design edited one item at a time: the arms or the follow-up steps."""

    table: str  # the design file's table: "arms" or "follow_ups"
    noun: str
    template: str
    items: Callable[[Any], list]  # design -> its items
    apply: Callable  # forms.apply_arm or forms.apply_step
    context: Callable[[Any, bool], dict]  # (item or None, new) -> template context

    def index(self, design, key: str) -> int:
        for i, item in enumerate(self.items(design)):
            if item.key == key:
                return i
        abort(404)


ARMS = _Part(
    table="arms",
    noun="Arm",
    template="console/arm_edit.html",
    items=lambda design: design.arms,
    apply=forms.apply_arm,
    context=lambda arm, new: {"arm": arm, "new": new, "placeholders": PLACEHOLDERS},
)
STEPS = _Part(
    table="follow_ups",
    noun="Follow-up",
    template="console/step_edit.html",
    items=lambda design: design.follow_ups,
    apply=forms.apply_step,
    context=lambda step, new: {"step": step, "new": new, **_enums()},
)


def _edit_part(part: _Part, slug: str, key: str):
    """The editor of one arm or step (`key` "new" adds one), through the design rules."""
    c = _campaign(slug)
    design = campaign_service.design_of(c)
    new = key == "new"
    index = None if new else part.index(design, key)
    context = part.context(None if new else part.items(design)[index], new)
    if request.method == "GET":
        return render_template(part.template, c=c, **context)
    if (refused := _refuse_if_frozen(c)) is not None:
        return refused
    tables = forms.design_tables(design)
    try:
        tables = part.apply(tables, index, request.form)
    except DesignError as exc:
        return render_template(
            part.template, c=c, problems=exc.problems, form=request.form, **context
        ), 422
    context["form"] = request.form
    return _save_design(c, tables, part.template, f"{part.noun} saved.", **context)


def _delete_part(part: _Part, slug: str, key: str):
    """Remove one arm or step, unless the design rules refuse the result (then say why)."""
    c = _campaign(slug)
    if (refused := _refuse_if_frozen(c)) is not None:
        return refused
    design = campaign_service.design_of(c)
    index = part.index(design, key)
    tables = forms.design_tables(design)
    del tables[part.table][index]
    who, who_id = actor()
    try:
        campaign_service.update_design(c, parse_design(tables), actor=who, actor_id=who_id)
    except (DesignError, campaign_service.CampaignError) as exc:
        db.session.rollback()
        flash(
            f"The {part.noun.lower()} was not removed: "
            + "; ".join(str(p) for p in _problems_of(exc))
        )
        return redirect(url_for("console.campaign", slug=c.slug))
    db.session.commit()
    flash(f"{part.noun} {key!r} removed.")
    return redirect(url_for("console.campaign", slug=c.slug))


@bp.route("/campaigns/<slug>/arms/<key>", methods=["GET", "POST"])
@roles_required(*EDITORS)
def arm_edit(slug: str, key: str):
    return _edit_part(ARMS, slug, key)


@bp.post("/campaigns/<slug>/arms/<key>/delete")
@roles_required(*EDITORS)
def arm_delete(slug: str, key: str):
    return _delete_part(ARMS, slug, key)


@bp.route("/campaigns/<slug>/follow-ups/<key>", methods=["GET", "POST"])
@roles_required(*EDITORS)
def step_edit(slug: str, key: str):
    return _edit_part(STEPS, slug, key)


@bp.post("/campaigns/<slug>/follow-ups/<key>/delete")
@roles_required(*EDITORS)
def step_delete(slug: str, key: str):
    return _delete_part(STEPS, slug, key)


# --- design file ------------------------------------------------------------------------


@bp.get("/campaigns/<slug>/design.toml")
@login_required
def design_download(slug: str):
    c = _campaign(slug)
    text = design_to_toml(campaign_service.design_of(c))
    return Response(
        text,
        mimetype="application/toml",
        headers={"Content-Disposition": f'attachment; filename="{c.slug}.toml"'},
    )


@bp.route("/campaigns/<slug>/design", methods=["GET", "POST"])
@roles_required(*EDITORS)
def design_upload(slug: str):
    c = _campaign(slug)
    if request.method == "GET":
        return render_template("console/design_upload.html", c=c)
    if (refused := _refuse_if_frozen(c)) is not None:
        return refused
    upload = request.files.get("design_file")
    if upload is None or not upload.filename:
        return render_template(
            "console/design_upload.html",
            c=c,
            problems=[Problem("design_file", "choose a design file (.toml)")],
        ), 422
    who, who_id = actor()
    try:
        design = parse_design(upload.read())
        campaign_service.update_design(c, design, actor=who, actor_id=who_id)
    except (DesignError, campaign_service.CampaignError) as exc:
        db.session.rollback()
        return render_template("console/design_upload.html", c=c, problems=_problems_of(exc)), 422
    db.session.commit()
    flash("Design file uploaded: the campaign now follows it.")
    return redirect(url_for("console.campaign", slug=c.slug))


# --- previews ---------------------------------------------------------------------------


def _preview_person(c: Campaign):
    """The chosen sample participant (evaluators only see the built-in sample)."""
    ref = request.args.get("participant", "")
    if ref and sees_contacts():
        p = db.session.scalar(
            select(Participant).where(
                Participant.campaign_id == c.id, Participant.external_ref == ref
            )
        )
        if p is not None and p.erased_at is None:
            return p
    return SAMPLE


def _context(c: Campaign, person, arm) -> dict:
    from nudge_app.links import participant_links

    context = {
        "first_name": person.first_name or "neighbour",
        "council": c.council.name,
        "campaign": c.name,
        "activity": c.activity_name,
        "activity_where": c.activity_where,
        "activity_when": c.activity_when,
        "neighbourhood": getattr(person, "neighbourhood", None) or "your area",
        "framing": arm.framing if arm is not None else "",
    }
    # Example links of the right length: a preview never shows a person's working link.
    context.update(participant_links(SAMPLE))
    return context


@bp.get("/campaigns/<slug>/preview")
@login_required
def preview(slug: str):
    from nudge_app.templating import TemplateError, html_paragraphs, render

    c = _campaign(slug)
    person = _preview_person(c)
    samples = []
    if sees_contacts():
        samples = db.session.scalars(
            select(Participant.external_ref)
            .where(Participant.campaign_id == c.id, Participant.erased_at.is_(None))
            .order_by(Participant.id)
            .limit(50)
        ).all()

    def show(template: str, context: dict, html: bool = False):
        try:
            text = render(template or "", context)
        except TemplateError as exc:
            return {"error": str(exc)}
        if html:
            return {"html": html_paragraphs(text)}
        return {"text": text}

    arms = []
    for arm in c.arms:
        ctx = _context(c, person, arm)
        sms = show(arm.sms_template, ctx)
        arms.append(
            {
                "arm": arm,
                "page": show(arm.page_template, ctx, html=True),
                "subject": show(arm.email_subject_template, ctx),
                "body": show(arm.email_body_template, ctx, html=True),
                "sms": sms,
                "sms_count": forms.sms_segments(sms.get("text", "")) if arm.sms_template else None,
            }
        )
    control = next((a for a in c.arms if a.is_control), None)
    steps = []
    for step in c.follow_up_steps:
        per_arm = []
        for arm in c.arms:
            ctx = _context(c, person, arm)
            per_arm.append(
                {
                    "arm": arm,
                    "subject": show(step.email_subject_template, ctx),
                    "body": show(step.email_body_template, ctx, html=True),
                    "sms": show(step.sms_template, ctx),
                }
            )
        steps.append({"step": step, "arms": per_arm})
    return render_template(
        "console/preview.html",
        c=c,
        person=person,
        is_sample=person is SAMPLE,
        samples=samples,
        arms=arms,
        steps=steps,
        control=control,
    )


# --- participants -----------------------------------------------------------------------


def _report_dir() -> Path:
    path = Path(current_app.instance_path) / "import-reports"
    path.mkdir(parents=True, exist_ok=True)
    return path


@bp.route("/campaigns/<slug>/participants", methods=["GET", "POST"])
@login_required
def participants(slug: str):
    c = _campaign(slug)
    problems = None
    report_id = None
    total_problems = 0
    status = 200
    if request.method == "POST":
        if not sees_contacts():
            abort(403)
        upload = request.files.get("file")
        if upload is None or not upload.filename:
            problems = [SimpleNamespace(row=0, column="file", message="choose a CSV file")]
            total_problems = 1
            status = 422
        else:
            who, who_id = actor()
            try:
                result = import_csv(c, upload.read(), actor=who, actor_id=who_id)
            except ImportRejected as exc:
                db.session.rollback()
                problems = exc.problems[:200]
                total_problems = exc.total
                report_id = secrets.token_hex(16)
                (_report_dir() / f"{c.id}-{report_id}.csv").write_text(
                    exc.report_csv(), encoding="utf-8"
                )
                status = 422
            except ImportNotAllowed as exc:
                db.session.rollback()
                problems = [SimpleNamespace(row=0, column="", message=str(exc))]
                total_problems = 1
                status = 409
            else:
                db.session.commit()
                flash(
                    f"Imported {result.imported} participant(s)."
                    + (f" Randomized {result.randomized}." if result.randomized else "")
                    + (f" {result.messages} message(s) scheduled." if result.messages else "")
                )
                return redirect(url_for("console.participants", slug=c.slug))
    counts = dict(
        db.session.execute(
            select(Participant.consent_status, func.count())
            .where(Participant.campaign_id == c.id)
            .group_by(Participant.consent_status)
        ).all()
    )
    arms = {a.id: a.key for a in c.arms}
    rows = db.session.execute(
        select(Participant, Assignment.arm_id, Assignment.stratum)
        .outerjoin(Assignment, Assignment.participant_id == Participant.id)
        .where(Participant.campaign_id == c.id)
        .order_by(Participant.id)
        .limit(100)
    ).all()
    return render_template(
        "console/participants.html",
        c=c,
        counts=counts,
        total=sum(counts.values()),
        rows=rows,
        arms=arms,
        contacts=sees_contacts(),
        problems=problems,
        total_problems=total_problems,
        report_id=report_id,
        required=REQUIRED_COLUMNS,
        optional=OPTIONAL_COLUMNS,
        baseline_help=baseline_column_help(),
    ), status


@bp.get("/campaigns/<slug>/participants/import-errors/<report_id>.csv")
@roles_required(*EDITORS)
def import_errors(slug: str, report_id: str):
    c = _campaign(slug)
    if not REPORT_ID_RE.match(report_id):
        abort(404)
    path = _report_dir() / f"{c.id}-{report_id}.csv"
    if not path.exists():
        abort(404)
    return Response(
        path.read_text(encoding="utf-8"),
        mimetype="text/csv",
        headers={"Content-Disposition": f'attachment; filename="{c.slug}-import-errors.csv"'},
    )


@bp.get("/campaigns/<slug>/participants/template.csv")
@login_required
def import_template(slug: str):
    _campaign(slug)
    example = {
        "external_ref": "R0001",
        "first_name": "Sam",
        "email": "sam@example.org",
        "phone": "+447700900123",
        "neighbourhood": "Riverside",
        "consent_basis": "public-task",
        "locale": "en",
    }
    for variable in baseline.variables():
        if variable.imported:
            example.update(variable.example())
    header = ",".join(COLUMNS)
    row = ",".join(example.get(column, "") for column in COLUMNS)
    return Response(
        header + "\n" + row + "\n",
        mimetype="text/csv",
        headers={"Content-Disposition": 'attachment; filename="participants-template.csv"'},
    )


def _cell(value) -> str:
    text = "" if value is None else str(value)
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


@bp.get("/campaigns/<slug>/participants.csv")
@login_required
def participants_export(slug: str):
    """Participants with their arm; contact details only for admins and designers."""
    c = _campaign(slug)
    contacts = sees_contacts()
    arms = {a.id: a.key for a in c.arms}
    joined = set(
        db.session.scalars(
            select(Event.participant_id).where(Event.campaign_id == c.id, Event.kind == "join")
        )
    )
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    header = ["participant_id", "external_ref"]
    if contacts:
        header += ["first_name", "email", "phone"]
    header += [
        "age",
        "gender",
        "self_efficacy",
        "cluster",
        "consent_status",
        "arm",
        "stratum",
        "assigned_at",
        "joined",
    ]
    writer.writerow(header)
    for p, arm_id, stratum, assigned_at in db.session.execute(
        select(Participant, Assignment.arm_id, Assignment.stratum, Assignment.assigned_at)
        .outerjoin(Assignment, Assignment.participant_id == Participant.id)
        .where(Participant.campaign_id == c.id)
        .order_by(Participant.id)
    ):
        row = [p.id, p.external_ref]
        if contacts:
            row += [p.first_name, p.email, p.phone]
        row += [
            p.age,
            p.gender,
            p.self_efficacy,
            p.cluster,
            p.consent_status,
            arms.get(arm_id, ""),
            stratum or "",
            assigned_at.isoformat() if assigned_at else "",
            int(p.id in joined),
        ]
        writer.writerow([_cell(v) for v in row])
    return Response(
        out.getvalue(),
        mimetype="text/csv",
        headers={"Content-Disposition": f'attachment; filename="{c.slug}-participants.csv"'},
    )


# --- lifecycle --------------------------------------------------------------------------

LIFECYCLE = {
    "launch": (campaign_service.launch_campaign, "Campaign launched: the design is frozen."),
    "pause": (campaign_service.pause_campaign, "Campaign paused: no enrolment, no sending."),
    "resume": (campaign_service.resume_campaign, "Campaign resumed."),
    "close": (campaign_service.close_campaign, "Campaign closed."),
}


@bp.post("/campaigns/<slug>/<any(launch, pause, resume, close):step>")
@roles_required(*EDITORS)
def lifecycle(slug: str, step: str):
    c = _campaign(slug)
    action, message = LIFECYCLE[step]
    who, who_id = actor()
    try:
        action(c, actor=who, actor_id=who_id)
    except campaign_service.CampaignError as exc:
        db.session.rollback()
        flash(str(exc))
        return redirect(url_for("console.campaign", slug=slug)), 303
    db.session.commit()
    flash(message)
    return redirect(url_for("console.campaign", slug=slug)), 303


# --- monitoring -------------------------------------------------------------------------


@bp.get("/campaigns/<slug>/monitor")
@login_required
def monitor(slug: str):
    c = _campaign(slug)
    m = campaign_monitoring(c)
    peak = max([max((row[k] for k in m.arms), default=0) for row in m.by_day] or [0])
    return render_template("console/monitor.html", c=c, m=m, peak=peak or 1)


# --- audit log, users, tokens (admins) ---------------------------------------------------


def _audit_rows(limit: int | None = 500):
    staff = current_staff()
    query = (
        select(AuditEntry)
        .where(AuditEntry.council_id == staff.council_id)
        .order_by(AuditEntry.at.desc(), AuditEntry.id.desc())
    )
    if limit:
        query = query.limit(limit)
    return db.session.scalars(query).all()


@bp.get("/audit")
@roles_required("admin")
def audit_log():
    return render_template("console/audit.html", entries=_audit_rows())


@bp.get("/audit.csv")
@roles_required("admin")
def audit_export():
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["at", "actor", "action", "object_type", "object_id", "before", "after"])
    for e in _audit_rows(limit=None):
        writer.writerow(
            [
                _cell(v)
                for v in (
                    e.at.isoformat(),
                    e.actor,
                    e.action,
                    e.object_type,
                    e.object_id,
                    json.dumps(e.before, sort_keys=True) if e.before is not None else "",
                    json.dumps(e.after, sort_keys=True) if e.after is not None else "",
                )
            ]
        )
    return Response(
        out.getvalue(),
        mimetype="text/csv",
        headers={"Content-Disposition": 'attachment; filename="audit-log.csv"'},
    )


@bp.route("/admin/users", methods=["GET", "POST"])
@roles_required("admin")
def users():
    staff = current_staff()
    status = 200
    error = None
    if request.method == "POST":
        who, who_id = actor()
        try:
            staff_service.create_user(
                staff.council,
                request.form.get("email", ""),
                request.form.get("role", ""),
                request.form.get("password", ""),
                actor=who,
                actor_id=who_id,
            )
        except staff_service.StaffError as exc:
            db.session.rollback()
            error, status = str(exc), 422
        else:
            db.session.commit()
            flash("User created.")
            return redirect(url_for("console.users"))
    return render_template(
        "console/users.html",
        users=staff_service.council_users(staff.council_id),
        roles=ROLES,
        error=error,
    ), status


def _council_user(user_id: int) -> StaffUser:
    user = db.session.get(StaffUser, user_id)
    if user is None or user.council_id != current_staff().council_id:
        abort(404)
    return user


@bp.post("/admin/users/<int:user_id>")
@roles_required("admin")
def user_update(user_id: int):
    user = _council_user(user_id)
    who, who_id = actor()
    if user.id == who_id:
        flash("You cannot change your own role or deactivate yourself.")
        return redirect(url_for("console.users"))
    try:
        if "role" in request.form:
            staff_service.set_user_role(user, request.form["role"], who, who_id)
        if "active" in request.form:
            staff_service.set_user_active(user, request.form["active"] == "1", who, who_id)
    except staff_service.StaffError as exc:
        db.session.rollback()
        flash(str(exc))
        return redirect(url_for("console.users"))
    db.session.commit()
    flash(f"User {user.email} updated.")
    return redirect(url_for("console.users"))


@bp.route("/admin/tokens", methods=["GET", "POST"])
@roles_required("admin")
def tokens():
    staff = current_staff()
    new_secret = None
    error = None
    status = 200
    if request.method == "POST":
        who, who_id = actor()
        try:
            new = staff_service.create_token(
                staff.council, request.form.get("name", ""), actor=who, actor_id=who_id
            )
        except staff_service.StaffError as exc:
            db.session.rollback()
            error, status = str(exc), 422
        else:
            db.session.commit()
            new_secret = new.secret
            status = 201
    return render_template(
        "console/tokens.html",
        tokens=staff_service.council_tokens(staff.council_id),
        new_secret=new_secret,
        error=error,
    ), status


@bp.post("/admin/tokens/<int:token_id>/revoke")
@roles_required("admin")
def token_revoke(token_id: int):
    token = db.session.get(ApiToken, token_id)
    if token is None or token.council_id != current_staff().council_id:
        abort(404)
    who, who_id = actor()
    staff_service.revoke_token(token, actor=who, actor_id=who_id)
    db.session.commit()
    flash(f"Token {token.name!r} revoked: it stops working now.")
    return redirect(url_for("console.tokens"))
