"""The campaign editor: settings, arms and follow-up steps one at a time, and the design
file's download and upload; every change goes through the design rules, none after launch."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from flask import Response, abort, flash, redirect, render_template, request, url_for

from experiments.design import PLACEHOLDERS, DesignError, Problem, design_to_toml, parse_design
from nudge_app.auth import login_required, roles_required
from nudge_app.boundary import discard
from nudge_app.console import design_forms as forms
from nudge_app.console.campaign_forms import (
    STRATUM_ROWS,
    ArmForm,
    SettingsForm,
    StepForm,
    arm_data,
    control_choices,
    options,
    part_paths,
    place_problems,
    settings_data,
    settings_paths,
    step_data,
)
from nudge_app.console.common import (
    EDITORS,
    actor,
    baseline_choices,
    bp,
    own_campaign,
    problems_of,
)
from nudge_app.models import Campaign
from nudge_app.services import campaigns as campaign_service


def _save_design(c: Campaign, tables: dict, problems: list[Problem]) -> list[Problem]:
    """Check the edited tables and store them; the problems (the form's and the design
    rules') if any, else an empty list."""
    who, who_id = actor()
    try:
        design = forms.check(tables, problems)
        campaign_service.update_design(c, design, actor=who, actor_id=who_id)
    except (DesignError, campaign_service.CampaignError) as exc:
        return problems_of(exc)
    return []


def _mentoring_off_notice(before, data: dict) -> str | None:
    """What saving with peer mentoring off did, when it did more than nothing: removed
    the mentor role, or left out the rules typed for it."""
    if data.get("mentoring") == "yes":
        return None
    if before.mentoring is not None:
        return "Peer mentoring is off: participants are no longer offered the mentor role."
    if (data.get("mentor_offer_to") or "").strip():
        return (
            "Peer mentoring is off, so the rules typed under it were not saved: choose "
            "'Offer a mentor role' to use them."
        )
    return None


def _frozen_notice(c: Campaign) -> str | None:
    if not c.is_frozen:
        return None
    return (
        f"This campaign was launched on {c.launched_at:%d %B %Y}: its design (arms, "
        "templates, randomization, analysis plan) is frozen, so this page is read-only."
    )


def _refuse_if_frozen(c: Campaign):
    if c.is_frozen:
        flash(_frozen_notice(c))
        return redirect(url_for("console.campaign", slug=c.slug))
    return None


@bp.route("/campaigns/<slug>/edit", methods=["GET", "POST"])
@roles_required(*EDITORS)
def campaign_edit(slug: str):
    c = own_campaign(slug)
    design = campaign_service.design_of(c)
    choices = baseline_choices(c, design)
    choices["eligibility_help"] = forms.eligibility_help(c.enrolment_mode)
    posted = request.method == "POST"
    form = SettingsForm() if posted else SettingsForm(data=settings_data(design))
    for i in range(STRATUM_ROWS):
        field = getattr(form, f"stratum_{i}_moderator")
        field.choices = options([("", "(none)"), *choices["strata_offered"]])
    form.moderators.choices = options(choices["moderators_offered"])
    form.covariates.choices = options(choices["moderators_offered"])
    context = {"c": c, "form": form, "frozen": _frozen_notice(c), **choices}
    if not posted:
        return render_template("console/campaign_edit.html", **context)
    if (refused := _refuse_if_frozen(c)) is not None:
        return refused
    if form.validate():
        problems: list[Problem] = []
        tables = forms.apply_settings(forms.design_tables(design), form.data, problems)
        problems = _save_design(c, tables, problems)
        if not problems:
            flash("Campaign settings saved.")
            if (notice := _mentoring_off_notice(design, form.data)) is not None:
                flash(notice)
            return redirect(url_for("console.campaign", slug=c.slug))
        place_problems(form, problems, settings_paths(form.data), tables)
    return render_template("console/campaign_edit.html", **context), 422


@dataclass(frozen=True)
class _Part:
    """A list of the design edited one item at a time: the arms or the follow-up steps."""

    table: str  # the design file's table: "arms" or "follow_ups"
    noun: str
    template: str
    items: Callable[[Any], list]  # design -> its items
    apply: Callable  # forms.apply_arm or forms.apply_step
    form: Callable  # ArmForm or StepForm
    data: Callable  # item or None -> the form's values

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
    form=ArmForm,
    data=arm_data,
)
STEPS = _Part(
    table="follow_ups",
    noun="Follow-up",
    template="console/step_edit.html",
    items=lambda design: design.follow_ups,
    apply=forms.apply_step,
    form=StepForm,
    data=step_data,
)


def _edit_part(part: _Part, slug: str, key: str):
    """The editor of one arm or step (`key` "new" adds one), through the design rules."""
    c = own_campaign(slug)
    design = campaign_service.design_of(c)
    new = key == "new"
    index = None if new else part.index(design, key)
    item = None if new else part.items(design)[index]
    posted = request.method == "POST"
    form = part.form() if posted else part.form(data=part.data(item))
    if part is ARMS:
        form.control.choices = control_choices(design, item)
    context = {
        "c": c,
        "form": form,
        "new": new,
        "item": item,
        "frozen": _frozen_notice(c),
        "placeholders": PLACEHOLDERS,
    }
    if not posted:
        return render_template(part.template, **context)
    if (refused := _refuse_if_frozen(c)) is not None:
        return refused
    if form.validate():
        problems: list[Problem] = []
        tables = part.apply(forms.design_tables(design), index, form.data, problems)
        before = next((a.key for a in design.arms if a.control), None)
        problems = _save_design(c, tables, problems)
        if not problems:
            flash(f"{part.noun} saved.")
            if (
                part is ARMS
                and form.control.data == "yes"
                and before not in (None, item and item.key)
            ):
                flash(f"{form.key.data!r} is now the control arm; {before!r} is a message arm.")
            return redirect(url_for("console.campaign", slug=c.slug))
        at = len(part.items(design)) if index is None else index
        place_problems(form, problems, part_paths(part.table, at), tables)
    return render_template(part.template, **context), 422


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
