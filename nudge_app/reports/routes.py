"""Routes: GET /reports/<slug> (HTML), /reports/<slug>.json and /reports/<slug>.csv.

Thin: find the logged-in staff member's campaign (404 for another council's), build the
report with `services.reporting.campaign_report`, render it. A campaign without enough
data yet answers a short page (HTML) or 409 with a JSON error, never a 500.
"""

from __future__ import annotations

from html import escape

from flask import Blueprint, Response, jsonify

from nudge_app.auth import council_campaign_or_404, current_staff, login_required
from nudge_app.services.reporting import ReportNotReady, campaign_report

bp = Blueprint("reports", __name__)

NO_STORE = {"Cache-Control": "no-store", "X-Content-Type-Options": "nosniff"}


def _report(campaign_slug: str):
    staff = current_staff()
    campaign = council_campaign_or_404(staff.council_id, campaign_slug)
    return campaign, campaign_report(campaign)


@bp.get("/<campaign_slug>")
@login_required
def report_html(campaign_slug: str):
    try:
        campaign, report = _report(campaign_slug)
    except ReportNotReady as exc:
        page = (
            '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>'
            "Report not ready</title></head><body><h1>Report not ready</h1><p>"
            f"{escape(str(exc))}</p></body></html>"
        )
        return Response(page, 200, mimetype="text/html", headers=NO_STORE)
    return Response(report.to_html(), 200, mimetype="text/html", headers=NO_STORE)


@bp.get("/<campaign_slug>.json")
@login_required
def report_json(campaign_slug: str):
    try:
        _, report = _report(campaign_slug)
    except ReportNotReady as exc:
        response = jsonify({"error": "not_ready", "message": str(exc)})
        response.status_code = 409
        response.headers.update(NO_STORE)
        return response
    return Response(report.to_json(), 200, mimetype="application/json", headers=NO_STORE)


@bp.get("/<campaign_slug>.csv")
@login_required
def report_csv(campaign_slug: str):
    try:
        campaign, report = _report(campaign_slug)
    except ReportNotReady as exc:
        return Response(str(exc) + "\n", 409, mimetype="text/plain", headers=NO_STORE)
    headers = dict(NO_STORE)
    headers["Content-Disposition"] = f'attachment; filename="{campaign.slug}-report.csv"'
    return Response(report.to_csv(), 200, mimetype="text/csv", headers=headers)
