"""A campaign's participants: the list, the CSV import (with its downloadable error
report and template) and the export with each person's arm."""

from __future__ import annotations

import io
import re
import secrets
from pathlib import Path
from types import SimpleNamespace

from flask import Response, abort, current_app, flash, redirect, render_template, request, url_for
from sqlalchemy import func, select

from experiments import csv_cells
from nudge_app.auth import login_required, roles_required
from nudge_app.console.common import EDITORS, actor, bp, own_campaign, record_export, sees_contacts
from nudge_app.extensions import db
from nudge_app.models import Assignment, ConsentVersion, Event, Participant
from nudge_app.private_files import private_dir, write_private
from nudge_app.services.participants_import import (
    OPTIONAL_COLUMNS,
    REQUIRED_COLUMNS,
    ImportNotAllowed,
    ImportRejected,
    baseline_column_help,
    import_csv,
    template_csv,
)

REPORT_ID_RE = re.compile(r"^[0-9a-f]{32}$")


def _report_dir() -> Path:
    # Error reports name people's references: owner-only, like the database.
    return private_dir(Path(current_app.instance_path) / "import-reports")


@bp.route("/campaigns/<slug>/participants", methods=["GET", "POST"])
@login_required
def participants(slug: str):
    c = own_campaign(slug)
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
                problems = exc.problems[:200]
                total_problems = exc.total
                report_id = secrets.token_hex(16)
                write_private(_report_dir() / f"{c.id}-{report_id}.csv", exc.report_csv())
                status = 422
            except ImportNotAllowed as exc:
                problems = [SimpleNamespace(row=0, column="", message=str(exc))]
                total_problems = 1
                status = 409
            else:
                flash(
                    f"Imported {result.imported} participant(s)."
                    + (
                        f" Skipped {result.suppressed} on the suppression list."
                        if result.suppressed
                        else ""
                    )
                    + (f" Randomized {result.randomized}." if result.randomized else "")
                    + (
                        f" Screened out {result.screened_out} by the eligibility rules."
                        if result.screened_out
                        else ""
                    )
                    + (f" {result.messages} message(s) scheduled." if result.messages else "")
                    + (
                        f" Passed over {result.erased} withdrawn (erased) participant(s)."
                        if result.erased
                        else ""
                    )
                    + (
                        " Not imported (the export's results of the earlier campaign): "
                        + ", ".join(result.read_past)
                        + "."
                        if result.read_past
                        else ""
                    )
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
    c = own_campaign(slug)
    if not REPORT_ID_RE.match(report_id):
        abort(404)
    path = _report_dir() / f"{c.id}-{report_id}.csv"
    if not path.exists():
        abort(404)
    record_export("import_errors", "campaign", c.id)
    return Response(
        path.read_text(encoding="utf-8"),
        mimetype="text/csv",
        headers={"Content-Disposition": f'attachment; filename="{c.slug}-import-errors.csv"'},
    )


@bp.get("/campaigns/<slug>/participants/template.csv")
@login_required
def import_template(slug: str):
    own_campaign(slug)
    return Response(
        template_csv(),
        mimetype="text/csv",
        headers={"Content-Disposition": 'attachment; filename="participants-template.csv"'},
    )


@bp.get("/campaigns/<slug>/participants.csv")
@login_required
def participants_export(slug: str):
    """Participants with their arm; contact details only for admins and designers."""
    c = own_campaign(slug)
    contacts = sees_contacts()
    arms = {a.id: a.key for a in c.arms}
    versions = dict(
        db.session.execute(
            select(ConsentVersion.id, ConsentVersion.number).where(
                ConsentVersion.campaign_id == c.id
            )
        ).all()
    )
    joined = set(
        db.session.scalars(
            select(Event.participant_id).where(Event.campaign_id == c.id, Event.kind == "join")
        )
    )
    out = io.StringIO()
    writer = csv_cells.writer(out)
    header = ["participant_id", "external_ref"]
    if contacts:
        header += ["first_name", "email", "phone", "postcode", "neighbourhood", "locale"]
    header += [
        "age",
        "gender",
        "se_safety",
        "se_environment",
        "se_health",
        "self_efficacy",
        "cluster",
        "consent_status",
        "arm",
        "stratum",
        "assigned_at",
        "joined",
        "consent_version",
    ]
    writer.writerow(header)
    rows = 0
    for p, arm_id, stratum, assigned_at in db.session.execute(
        select(Participant, Assignment.arm_id, Assignment.stratum, Assignment.assigned_at)
        .outerjoin(Assignment, Assignment.participant_id == Participant.id)
        .where(Participant.campaign_id == c.id)
        .order_by(Participant.id)
    ):
        row = [p.id, p.external_ref]
        if contacts:
            row += [p.first_name, p.email, p.phone, p.postcode, p.neighbourhood, p.locale]
        row += [
            p.age,
            p.gender,
            p.se_safety,
            p.se_environment,
            p.se_health,
            p.self_efficacy,
            p.cluster,
            p.consent_status,
            arms.get(arm_id, ""),
            stratum or "",
            assigned_at.isoformat() if assigned_at else "",
            int(p.id in joined),
            versions.get(p.consent_version_id, ""),
        ]
        writer.writerow(row)
        rows += 1
    record_export("participants", "campaign", c.id, rows=rows, contacts=contacts)
    return Response(
        out.getvalue(),
        mimetype="text/csv",
        headers={"Content-Disposition": f'attachment; filename="{c.slug}-participants.csv"'},
    )
