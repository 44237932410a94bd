"""Console pages of the data-protection lifecycle: a campaign's retention period and
lawful basis (editable while it runs; each change of wording is a new consent version),
its record of processing (page and Markdown), and subject-access requests (admins)."""

from __future__ import annotations

import json

from flask import Response, flash, redirect, render_template, url_for

from nudge_app.auth import current_staff, login_required, roles_required
from nudge_app.console.common import EDITORS, actor, bp, own_campaign
from nudge_app.console.forms import DataProtectionForm, SubjectAccessForm
from nudge_app.services import campaigns as campaign_service
from nudge_app.services import processing_record
from nudge_app.services.consent import counts_by_version
from nudge_app.services.subject_access import document


@bp.route("/campaigns/<slug>/data-protection", methods=["GET", "POST"])
@roles_required(*EDITORS)
def data_protection(slug: str):
    c = own_campaign(slug)
    form = DataProtectionForm(obj=c)
    if form.validate_on_submit():
        who, who_id = actor()
        campaign_service.set_data_protection(
            c, form.retention_days.data, form.lawful_basis.data, actor=who, actor_id=who_id
        )
        flash("Data-protection settings saved; the consent page now says so.")
        return redirect(url_for("console.data_protection", slug=c.slug))
    return render_template(
        "console/data_protection.html", c=c, form=form, versions=counts_by_version(c)
    ), (422 if form.errors else 200)


@bp.get("/campaigns/<slug>/record-of-processing")
@login_required
def record_of_processing(slug: str):
    c = own_campaign(slug)
    return render_template("console/record.html", c=c, record=processing_record.build(c))


@bp.get("/campaigns/<slug>/record-of-processing.md")
@login_required
def record_of_processing_markdown(slug: str):
    c = own_campaign(slug)
    return Response(
        processing_record.build(c).to_markdown(),
        mimetype="text/markdown",
        headers={"Content-Disposition": f'attachment; filename="{c.slug}-record-of-processing.md"'},
    )


@bp.route("/admin/subject-access", methods=["GET", "POST"])
@roles_required("admin")
def subject_access():
    form = SubjectAccessForm()
    if form.validate_on_submit():
        who, who_id = actor()
        found = document(current_staff().council, form.contact.data, actor=who, actor_id=who_id)
        return Response(
            json.dumps(found, indent=2, ensure_ascii=False, sort_keys=True),
            mimetype="application/json",
            headers={"Content-Disposition": 'attachment; filename="subject-access.json"'},
        )
    return render_template("console/subject_access.html", form=form), (422 if form.errors else 200)
