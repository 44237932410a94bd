"""Campaign pages: the council's list, a new campaign, a campaign's overview (with its
power estimate) and its lifecycle steps (launch, pause, resume, close)."""

from __future__ import annotations

from flask import flash, redirect, render_template, request, url_for
from sqlalchemy import func, select

from experiments.design import DesignError, Problem, parse_design
from nudge_app.auth import current_staff, login_required, roles_required
from nudge_app.boundary import discard
from nudge_app.console import design_forms as forms
from nudge_app.console.campaign_forms import (
    NEW_CAMPAIGN_PATHS,
    NewCampaignForm,
    describe,
    options,
    place_problems,
)
from nudge_app.console.common import (
    EDITORS,
    actor,
    bp,
    own_campaign,
    sees_contacts,
)
from nudge_app.console.message_costs import campaign_cost
from nudge_app.extensions import db
from nudge_app.models import Campaign, Participant
from nudge_app.services import campaigns as campaign_service


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


def _new_campaign_design(form: NewCampaignForm):
    """The design the new-campaign form asks for. A chosen design file is used even if its
    radio button was not picked too (the file says what the officer meant); a catalog
    choice still needs its radio, since the list always shows a design."""
    upload = request.files.get("design_file")
    source = form.source.data or "form"
    if upload is not None and upload.filename and source == "form":
        source = form.source.data = "file"
    if source == "catalog":
        text = forms.catalog_text(form.catalog.data or "")
        if text is None:
            raise DesignError([Problem("catalog", "choose one of the catalog designs")])
        return parse_design(text)
    if source == "file":
        if upload is None or not upload.filename:
            raise DesignError([Problem("design_file", "choose a design file (.toml)")])
        raw = upload.read()
        try:
            return parse_design(raw)
        except DesignError as exc:
            # Problems inside the file are the file's: they stay beside its field, named
            # both in words and by the path the officer finds in the file.
            tables = forms.toml_tables(raw)
            raise DesignError(
                [
                    Problem(
                        "design_file",
                        f"{describe(p.path, tables)} ({p.path}): {p.message}"
                        if p.path
                        else p.message,
                    )
                    for p in exc.problems
                ]
            ) from None
    return parse_design(forms.starter_design(form.data))


@bp.route("/campaigns/new", methods=["GET", "POST"])
@roles_required(*EDITORS)
def campaign_new():
    staff = current_staff()
    form = NewCampaignForm()
    form.catalog.choices = options(forms.catalog_designs())
    if request.method == "GET":
        return render_template("console/campaign_new.html", form=form)
    design = None
    if form.validate():
        try:
            design = _new_campaign_design(form)
        except DesignError as exc:
            place_problems(form, exc.problems, NEW_CAMPAIGN_PATHS)
    if design is None:
        return render_template("console/campaign_new.html", form=form), 422
    if (design.slug or campaign_service._slugify(design.name)) == "new":
        design.slug = "new-campaign"  # /campaigns/new is this page
    campaign = campaign_service.create_campaign(
        staff.council, design, actor=f"user:{staff.id}", actor_id=staff.id
    )
    flash(f"Draft campaign {campaign.name!r} created.")
    return redirect(url_for("console.campaign", slug=campaign.slug))


def power_estimate(campaign: Campaign, sample: int | None = None) -> dict:
    """The analysis engine's sample size and MDE beside the planned sample size (or
    beside `sample`, the launch checklist's imported participants)."""
    # Imported here: the power module brings scipy and the analysis engine, which the
    # other console pages (and the app's start-up) do without.
    from experiments.power import minimum_detectable_effect, sample_size_two_proportions

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
    planned = campaign.planned_sample_size if sample is None else sample
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
    out["eligibility"] = _eligible_sample_note(campaign, out)
    return out


def _eligible_sample_note(campaign: Campaign, power: dict) -> str:
    """With eligibility rules, the sample sizes count eligible residents (those randomized),
    not everyone assessed; the screening rate so far says how many must answer for that."""
    if not campaign.eligibility:
        return ""
    from nudge_app.services import screening

    note = (
        "Planned sample size and power count eligible residents (those randomized), not "
        "everyone who answers the baseline: screened-out residents are never randomized."
    )
    found = screening.summary(campaign)
    assessed, eligible = int(found["assessed"]), int(found["eligible"])
    target = power.get("planned") or power.get("needed_total")
    if assessed >= 20 and eligible and target:
        share = eligible / assessed
        note += (
            f" So far {share:.0%} of the {assessed:,} assessed were eligible: reaching "
            f"{target:,} eligible takes about {round(target / share):,} residents assessed."
        )
    return note


@bp.get("/campaigns/<slug>")
@login_required
def campaign(slug: str):
    c = own_campaign(slug)
    participants = db.session.scalar(
        select(func.count(Participant.id)).where(Participant.campaign_id == c.id)
    )
    costs = campaign_cost(c)
    return render_template(
        "console/campaign.html",
        c=c,
        participants=participants,
        power=power_estimate(c),
        costs=costs,
        can_edit=sees_contacts(),
    )


LIFECYCLE = {
    "launch": (campaign_service.launch_campaign, "Campaign launched: the design is frozen."),
    "pause": (campaign_service.pause_campaign, "Campaign paused: no enrolment, no sending."),
    "resume": (campaign_service.resume_campaign, "Campaign resumed."),
    "close": (campaign_service.close_campaign, "Campaign closed."),
}


def run_step(c: Campaign, step: str):
    """One lifecycle step, answered with a redirect to the campaign's page."""
    action, message = LIFECYCLE[step]
    who, who_id = actor()
    try:
        action(c, actor=who, actor_id=who_id)
    except campaign_service.CampaignError as exc:
        discard()  # whatever the step wrote before it was refused goes, not the redirect's
        flash(str(exc))
        return redirect(url_for("console.campaign", slug=c.slug)), 303
    flash(message)
    return redirect(url_for("console.campaign", slug=c.slug)), 303


@bp.post("/campaigns/<slug>/<any(pause, resume):step>")
@roles_required(*EDITORS)
def lifecycle(slug: str, step: str):
    """Pause and resume: one click each, since either can be undone by the other. Launch,
    close and delete ask first (`console.launch`)."""
    return run_step(own_campaign(slug), step)
