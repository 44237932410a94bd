"""Routes: GET /reports/<slug> (HTML in the console's frame), /reports/<slug>.json and
/reports/<slug>.csv, and the report's stylesheet.

Thin: find the logged-in staff member's campaign (404 for another council's), build the
report with `services.reporting.campaign_report`, render it. A campaign without enough
data yet answers a short page (HTML) or 409 with a JSON error, never a 500.
"""

from __future__ import annotations

from flask import Blueprint, Response, jsonify, render_template
from markupsafe import Markup

from experiments.report.html import render_body
from experiments.report.html import stylesheet as report_stylesheet
from nudge_app.auth import council_campaign_or_404, current_staff, login_required
from nudge_app.services import audit
from nudge_app.services.reporting import ReportNotReady, campaign_report

bp = Blueprint("reports", __name__, template_folder="templates")


def _report(campaign_slug: str, export: str | None = None):
    """The campaign's report; a download (`export` names its format) is audit-logged."""
    staff = current_staff()
    campaign = council_campaign_or_404(staff.council_id, campaign_slug)
    report = campaign_report(campaign)
    if export:
        audit.record(
            council_id=staff.council_id,
            actor=f"user:{staff.id}",
            actor_id=staff.id,
            action="export.report",
            object_type="campaign",
            object_id=campaign.id,
            after={"format": export},
        )
    return campaign, report


@bp.get("/<campaign_slug>")
@login_required
def report_html(campaign_slug: str):
    """The report inside the console's frame (its header, the way back to the campaign);
    `nudge report` and the .json/.csv downloads give it without."""
    staff = current_staff()
    campaign = council_campaign_or_404(staff.council_id, campaign_slug)
    try:
        report = campaign_report(campaign)
    except ReportNotReady as exc:
        return render_template("reports/not_ready.html", c=campaign, reason=str(exc))
    return render_template("reports/report.html", c=campaign, body=Markup(render_body(report)))


@bp.get("/static/report.css")
def stylesheet():
    """The report's rules as a stylesheet (the CSP admits no inline style)."""
    response = Response(report_stylesheet(), 200, mimetype="text/css")
    response.cache_control.public = True
    response.cache_control.max_age = 3600
    return response


@bp.get("/<campaign_slug>.json")
@login_required
def report_json(campaign_slug: str):
    try:
        _, report = _report(campaign_slug, export="json")
    except ReportNotReady as exc:
        response = jsonify({"error": "not_ready", "message": str(exc)})
        response.status_code = 409
        return response
    return Response(report.to_json(), 200, mimetype="application/json")


@bp.get("/<campaign_slug>.csv")
@login_required
def report_csv(campaign_slug: str):
    try:
        campaign, report = _report(campaign_slug, export="csv")
    except ReportNotReady as exc:
        return Response(str(exc) + "\n", 409, mimetype="text/plain")
    disposition = f'attachment; filename="{campaign.slug}-report.csv"'
    return Response(
        report.to_csv(), 200, mimetype="text/csv", headers={"Content-Disposition": disposition}
    )
