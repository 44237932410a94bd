"""The campaign editor: settings, arms and follow-up steps one at a time, and the design
file's download and upload; every change goes through the design rules, none after launch."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from flask import Response, abort, flash, redirect, render_template, request, url_for

from experiments.design import DesignError, Problem, design_to_toml, parse_design
from nudge_app.auth import login_required, roles_required
from nudge_app.boundary import discard
from nudge_app.console import design_forms as forms
from nudge_app.console.common import (
    EDITORS,
    actor,
    baseline_choices,
    bp,
    design_choices,
    own_campaign,
    problems_of,
)
from nudge_app.models import Campaign
from nudge_app.services import campaigns as campaign_service


def _save_design(c: Campaign, tables: dict, template: str, status_ok: str, **context):
    """Check the edited tables and store them, or show the problems on the same form."""
    who, who_id = actor()
    try:
        design = parse_design(tables)
        campaign_service.update_design(c, design, actor=who, actor_id=who_id)
    except (DesignError, campaign_service.CampaignError) as exc:
        return render_template(template, c=c, problems=problems_of(exc), **context), 422
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
    c = own_campaign(slug)
    design = campaign_service.design_of(c)
    choices = {**design_choices(), **baseline_choices(c, design)}
    choices["eligibility_help"] = forms.eligibility_help()
    if request.method == "GET":
        return render_template("console/campaign_edit.html", c=c, d=design, **choices)
    if (refused := _refuse_if_frozen(c)) is not None:
        return refused
    tables = forms.design_tables(design)
    try:
        tables = forms.apply_settings(tables, request.form)
    except DesignError as exc:
        return render_template(
            "console/campaign_edit.html", c=c, d=design, problems=exc.problems, **choices
        ), 422
    return _save_design(
        c, tables, "console/campaign_edit.html", "Campaign settings saved.", d=design, **choices
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
    context=lambda arm, new: {"arm": arm, "new": new, **design_choices()},
)
STEPS = _Part(
    table="follow_ups",
    noun="Follow-up",
    template="console/step_edit.html",
    items=lambda design: design.follow_ups,
    apply=forms.apply_step,
    context=lambda step, new: {"step": step, "new": new, **design_choices()},
)


def _edit_part(part: _Part, slug: str, key: str):
    """The editor of one arm or step (`key` "new" adds one), through the design rules."""
    c = own_campaign(slug)
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
    c = own_campaign(slug)
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
        discard()  # answered with a redirect, which the boundary would commit
        flash(
            f"The {part.noun.lower()} was not removed: "
            + "; ".join(str(p) for p in problems_of(exc))
        )
        return redirect(url_for("console.campaign", slug=c.slug))
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
    c = own_campaign(slug)
    text = design_to_toml(campaign_service.design_of(c))
    return Response(
        text,
        mimetype="application/toml",
        headers={"Content-Disposition": f'attachment; filename="{c.slug}.toml"'},
    )


@bp.route("/campaigns/<slug>/design", methods=["GET", "POST"])
@roles_required(*EDITORS)
def design_upload(slug: str):
    c = own_campaign(slug)
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
        return render_template("console/design_upload.html", c=c, problems=problems_of(exc)), 422
    flash("Design file uploaded: the campaign now follows it.")
    return redirect(url_for("console.campaign", slug=c.slug))
