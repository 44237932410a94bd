"""The preview of a campaign's messages: each arm's page, e-mail and SMS, and each
follow-up step, for a built-in sample person or (for those who see contacts) a real one."""

from __future__ import annotations

from types import SimpleNamespace

from flask import render_template, request
from sqlalchemy import select

from nudge_app.auth import login_required
from nudge_app.console.common import bp, own_campaign, sees_contacts
from nudge_app.extensions import db
from nudge_app.models import Campaign, Participant
from nudge_app.sms_fragments import sms_length

SAMPLE = SimpleNamespace(
    id=0,
    first_name="Alex",
    neighbourhood="Riverside",
    access_nonce="preview-sample",
    email="alex@example.org",
    phone="+447700900000",
)


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

    c = own_campaign(slug)
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
                "sms_count": sms_length(sms["text"]) if "text" in sms else None,
            }
        )
    control = next((a for a in c.arms if a.is_control), None)
    steps = []
    for step in c.follow_up_steps:
        per_arm = []
        for arm in c.arms:
            ctx = _context(c, person, arm)
            step_sms = show(step.sms_template, ctx)
            per_arm.append(
                {
                    "arm": arm,
                    "subject": show(step.email_subject_template, ctx),
                    "body": show(step.email_body_template, ctx, html=True),
                    "sms": step_sms,
                    "sms_count": sms_length(step_sms["text"]) if "text" in step_sms else None,
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
