"""Routes: GET /reports/<slug> (HTML), /reports/<slug>.json and /reports/<slug>.csv.

Thin: find the logged-in staff member's campaign (404 for another council's), build the
report with `services.reporting.campaign_report`, render it. A campaign without enough
data yet answers a short page (HTML) or 409 with a JSON error, never a 500.
"""

from __future__ import annotations

from html import escape

from flask import Blueprint, Response, jsonify

from nudge_app.auth import council_campaign_or_404, current_staff, login_required
from nudge_app.headers import style_nonce, with_style_nonce
from nudge_app.services import audit
from nudge_app.services.reporting import ReportNotReady, campaign_report

bp = Blueprint("reports", __name__)


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
@with_style_nonce
def report_html(campaign_slug: str):
    try:
        campaign, report = _report(campaign_slug)
    except ReportNotReady as exc:
        page = (
            '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>'
            "Report not ready</title></head><body><h1>Report not ready</h1><p>"
            f"{escape(str(exc))}</p></body></html>"
        )
        return Response(page, 200, mimetype="text/html")
    # The page is self-contained (its own <style>): the CSP admits that style by nonce.
    html = report.to_html().replace("<style>", f'<style nonce="{style_nonce()}">')
    return Response(html, 200, mimetype="text/html")


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
