"""The steps that cannot be undone, each behind a page that says what it will do and an
explicit confirmation: the launch checklist, closing a campaign, deleting a draft.

The checklist puts beside each other what an officer must see before launching:
participants imported against the plan, the power at that size, every template rendered
for a sample participant, every survey step's link, the scheduler's heartbeat, the quiet
hours and when the first messages will go. A "stop" item (the launch would be refused,
or a message cannot be rendered) disables the launch; a "warn" item asks for attention.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal
from zoneinfo import ZoneInfo

from flask import flash, redirect, render_template, url_for
from sqlalchemy import func, select

from experiments.design import DesignError, parse_design
from nudge_app.auth import roles_required
from nudge_app.boundary import discard
from nudge_app.console.campaign_forms import CloseForm, DeleteForm, LaunchForm
from nudge_app.console.campaigns import power_estimate, run_step
from nudge_app.console.common import EDITORS, actor, bp, own_campaign
from nudge_app.console.design_forms import design_tables
from nudge_app.db import utcnow
from nudge_app.delivery.quiet import next_allowed
from nudge_app.extensions import db
from nudge_app.models import Campaign, OutboundMessage, Participant
from nudge_app.scheduler.status import current as scheduler_status
from nudge_app.services import campaigns as campaign_service
from nudge_app.services import screening

State = Literal["ok", "warn", "stop"]


@dataclass(frozen=True)
class TemplateResult:
    """One template of one arm (and step) on one channel, rendered for a participant."""

    arm: str
    message: str
    state: Literal["ok", "stop", "empty"]
    text: str


@dataclass(frozen=True)
class Check:
    """One line of the checklist (`templates`: the messages line's template by template)."""

    key: str
    title: str
    state: State
    text: str
    details: list[str] = field(default_factory=list)
    templates: list[TemplateResult] = field(default_factory=list)


def _participants(c: Campaign) -> int:
    return db.session.scalar(
        select(func.count(Participant.id)).where(
            Participant.campaign_id == c.id, Participant.erased_at.is_(None)
        )
    )


def _participants_check(c: Campaign, imported: int) -> Check:
    planned = c.planned_sample_size
    if c.enrolment_mode != "list":
        text = "Residents enrol through the campaign's open link after launch"
        text += f"; the plan is {planned:,}." if planned else " (no planned sample size set)."
        return Check("participants", "Participants", "ok" if planned else "warn", text)
    if imported == 0:
        return Check(
            "participants",
            "Participants",
            "warn",
            "No participants are imported: launching randomizes nobody and sends nothing. "
            "Import the list first.",
        )
    if planned and imported < planned:
        return Check(
            "participants",
            "Participants",
            "warn",
            f"{imported:,} of the planned {planned:,} participants are imported "
            f"({imported / planned:.0%}).",
        )
    text = f"{imported:,} participants imported"
    text += f" (planned {planned:,})." if planned else " (no planned sample size set)."
    return Check("participants", "Participants", "ok", text)


def _eligibility_check(c: Campaign) -> Check | None:
    """Who the rules admit: for a list campaign, how its imported residents screen now."""
    if not c.eligibility:
        return None
    rules = "; ".join(c.eligibility)
    if c.enrolment_mode != "list":
        return Check(
            "eligibility",
            "Eligibility",
            "ok",
            f"Residents are screened on their baseline answers ({rules}) before "
            "randomization; the planned sample size counts the eligible.",
        )
    found = screening.preview(c)
    if found["unknown"]:
        return Check(
            "eligibility",
            "Eligibility",
            "stop",
            f"{found['unknown']:,} imported participant(s) lack an answer the rules ({rules}) "
            "need: import them again with those answers, or change the rules.",
        )
    text = (
        f"{found['eligible']:,} imported participant(s) meet the rules ({rules}) and will "
        f"be randomized; {found['screened_out']:,} will be screened out (no message)."
    )
    return Check("eligibility", "Eligibility", "ok" if found["eligible"] else "warn", text)


def _power_check(c: Campaign, size: int | None) -> Check:
    power = power_estimate(c, sample=size or None)
    if not power.get("available"):
        return Check("power", "Power", "stop", power["message"])
    effect = power["minimum_effect"] * 100
    needed = power.get("needed_total")
    plan = (
        f"to detect a rise of {effect:.1f} points from {power['baseline_rate'] * 100:.1f}% "
        f"the plan needs {needed:,} participants"
        if needed
        else power.get("needed_error", "")
    )
    if not size:
        return Check("power", "Power", "warn", f"No sample size to judge: {plan}.")
    mde = power.get("planned_mde")
    detects = f"; {size:,} detect about {mde * 100:.1f} points" if mde else ""
    if power.get("enough"):
        return Check("power", "Power", "ok", f"Enough: {plan}{detects}.")
    return Check("power", "Power", "warn", f"Not enough: {plan}{detects}.")


def _messages_check(c: Campaign) -> Check:
    """Every template of every arm, step and channel, rendered for the first imported
    participant (or the preview's sample resident), with each one's result: its length
    and text-message fragments as Notify counts them, or what stops it rendering."""
    from nudge_app.console.preview import SAMPLE, _context
    from nudge_app.sms_fragments import sms_length
    from nudge_app.templating import TemplateError, render

    person = (
        db.session.scalar(
            select(Participant)
            .where(Participant.campaign_id == c.id, Participant.erased_at.is_(None))
            .order_by(Participant.id)
            .limit(1)
        )
        or SAMPLE
    )
    who = "the sample resident" if person is SAMPLE else f"participant {person.external_ref}"
    results: list[TemplateResult] = []
    for arm in c.arms:
        context = _context(c, person, arm)
        templates = [
            ("web page", "page", arm.page_template),
            ("email subject", "email", arm.email_subject_template),
            ("email body", "email", arm.email_body_template),
            ("text message", "sms", arm.sms_template),
        ]
        for step in c.follow_up_steps:
            templates += [
                (f"{step.kind} {step.key!r}: email subject", "email", step.email_subject_template),
                (f"{step.kind} {step.key!r}: email body", "email", step.email_body_template),
                (f"{step.kind} {step.key!r}: text message", "sms", step.sms_template),
            ]
        for name, channel, template in templates:
            if not (template or "").strip():
                results.append(TemplateResult(arm.key, name, "empty", "None written: not sent."))
                continue
            try:
                text = render(template, context)
            except TemplateError as exc:
                results.append(TemplateResult(arm.key, name, "stop", str(exc)))
                continue
            if channel == "sms":
                length = sms_length(text)
                plural = "" if length.fragments == 1 else "s"
                said = (
                    f"Renders: {length.characters:,} characters, {length.fragments} "
                    f"fragment{plural} ({length.encoding})."
                )
            else:
                said = f"Renders: {len(text):,} characters."
            results.append(TemplateResult(arm.key, name, "ok", said))
    errors = [f"arm {r.arm!r}, {r.message}: {r.text}" for r in results if r.state == "stop"]
    rendered = sum(r.state == "ok" for r in results)
    if errors:
        return Check(
            "messages",
            "Messages",
            "stop",
            f"{len(errors)} of {rendered + len(errors)} templates do not render for {who}:",
            errors,
            results,
        )
    return Check(
        "messages", "Messages", "ok", f"All {rendered} templates render for {who}.", [], results
    )


def _survey_check(c: Campaign) -> Check:
    problems = campaign_service.survey_link_problems(c)
    if problems:
        return Check(
            "survey", "Survey links", "stop", "A survey step has no survey link:", problems
        )
    steps = [s.key for s in c.follow_up_steps if s.kind == "survey"]
    if not steps:
        return Check("survey", "Survey links", "ok", "No survey step: no follow-up survey is sent.")
    names = ", ".join(repr(k) for k in steps)
    return Check("survey", "Survey links", "ok", f"Every survey step ({names}) carries its link.")


def _sending_checks(c: Campaign) -> list[Check]:
    status = scheduler_status()
    scheduler = Check("scheduler", "Scheduler", "ok" if status.ok else "warn", status.sentence())
    council = c.council
    zone = ZoneInfo(council.timezone or "Europe/London")
    quiet = (
        "No quiet hours."
        if council.quiet_start == council.quiet_end
        else f"Quiet hours {council.quiet_start} to {council.quiet_end} ({zone.key}): "
        "nothing is sent then."
    )
    now = utcnow()
    first = next_allowed(now, zone.key, council.quiet_start, council.quiet_end)
    what = "first messages" if c.enrolment_mode == "list" else "invitations"
    when = (
        "within a minute of launch"
        if first <= now
        else f"at {first.astimezone(zone):%H:%M on %d %B} (when quiet hours end)"
    )
    if not status.ok:
        when += ", once the scheduler runs"
    sending = Check("sending", "Quiet hours and first send", "ok", f"{quiet} The {what} go {when}.")
    return [scheduler, sending]


def _design_check(c: Campaign) -> Check | None:
    problems = campaign_service.launch_problems(c)
    try:
        parse_design(design_tables(campaign_service.design_of(c)))
    except DesignError as exc:
        problems += [str(p) for p in exc.problems]
    if problems:
        return Check("design", "Design", "stop", "The launch would be refused:", problems)
    return None


def checklist(c: Campaign) -> list[Check]:
    imported = _participants(c)
    size = imported if c.enrolment_mode == "list" else c.planned_sample_size
    eligible = _eligibility_check(c)
    if eligible is not None and c.enrolment_mode == "list":
        size = screening.preview(c)["eligible"]  # power counts the eligible only
    checks = [
        _participants_check(c, imported),
        *([eligible] if eligible else []),
        _power_check(c, size),
        _messages_check(c),
        _survey_check(c),
        *_sending_checks(c),
    ]
    design = _design_check(c)
    return [design, *checks] if design else checks


def _not_possible(c: Campaign, what: str):
    flash(f"Campaign {c.name!r} is {c.status}: it cannot be {what}.")
    return redirect(url_for("console.campaign", slug=c.slug))


@bp.route("/campaigns/<slug>/launch", methods=["GET", "POST"])
@roles_required(*EDITORS)
def launch(slug: str):
    c = own_campaign(slug)
    if c.status != "draft":
        return _not_possible(c, "launched")
    form = LaunchForm()
    checks = checklist(c)
    blocked = any(check.state == "stop" for check in checks)
    if form.validate_on_submit() and not blocked:
        return run_step(c, "launch")
    status = 422 if form.is_submitted() else 200
    return render_template(
        "console/launch.html", c=c, form=form, checks=checks, blocked=blocked
    ), status


@bp.route("/campaigns/<slug>/close", methods=["GET", "POST"])
@roles_required(*EDITORS)
def close(slug: str):
    c = own_campaign(slug)
    if c.status == "closed":
        return _not_possible(c, "closed again")
    form = CloseForm()
    if form.validate_on_submit():
        return run_step(c, "close")
    pending = db.session.scalar(
        select(func.count(OutboundMessage.id)).where(
            OutboundMessage.campaign_id == c.id, OutboundMessage.status == "pending"
        )
    )
    status = 422 if form.is_submitted() else 200
    return render_template("console/close.html", c=c, form=form, pending=pending), status


@bp.route("/campaigns/<slug>/delete", methods=["GET", "POST"])
@roles_required(*EDITORS)
def delete(slug: str):
    c = own_campaign(slug)
    if c.status != "draft":
        return _not_possible(c, "deleted (close it instead)")
    form = DeleteForm()
    if form.validate_on_submit():
        who, who_id = actor()
        try:
            removed = campaign_service.delete_draft(c, actor=who, actor_id=who_id)
        except campaign_service.CampaignError as exc:
            discard()
            flash(str(exc))
            return redirect(url_for("console.campaign", slug=slug)), 303
        flash(
            f"Draft {removed['name']!r} deleted, with its {removed['participants']:,} "
            "participant(s)."
        )
        return redirect(url_for("console.index")), 303
    status = 422 if form.is_submitted() else 200
    return render_template(
        "console/delete.html", c=c, form=form, participants=_participants(c)
    ), status
