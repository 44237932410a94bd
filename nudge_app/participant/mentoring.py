"""The mentoring pages: the mentor role (consent, note, invitation link, counts, card,
stop) behind a participant's personal token, and the invitation link `/p/r/<code>`,
which shows the mentor's note and the normal consent page and enrols the resident with
`referred_by`. Thin views over `nudge_app.services.mentoring`.

An invited resident who already has a page in the campaign in this browser goes back to
it: they keep their arm and their referral is not recorded again.
"""

from __future__ import annotations

import secrets
from urllib.parse import quote

from flask import abort, current_app, g, redirect, render_template, request, url_for
from flask_babel import get_locale
from flask_babel import gettext as _

from nudge_app.extensions import csrf
from nudge_app.participant import ENROL_LIMIT, limiter
from nudge_app.participant.routes import (
    OPEN_COOKIE,
    _load,
    _see,
    _unavailable,
    bp,
    remember,
)
from nudge_app.services import enrolment, mentoring
from nudge_app.services.attendance import qr_svg
from nudge_app.services.enrolment import CampaignNotOpen

OPENED_COOKIE = "nudge_ref_{}"
UNUSABLE_STATUS = {"unknown": 404, "expired": 410, "full": 410, "stopped": 410}


def _mentor_context(participant, mentor):
    settings = mentoring.settings_of(participant.campaign)
    link = mentoring.referral_link(mentor)
    subject = _("An invitation to %(activity)s", activity=participant.campaign.activity_name)
    body = "\n\n".join(x for x in (mentor.note, link) if x)
    return {
        "referral_link": link,
        "mailto": f"mailto:?subject={quote(subject)}&body={quote(body)}",
        "opened": mentor.opened,
        "accepted": mentoring.accepted(mentor),
        "introductions": settings.introductions if settings else 0,
        "introduced": mentoring.introduced(mentor),
        "introductions_left": mentoring.introductions_left(mentor),
    }


@bp.route("/<token>/mentor", methods=["GET", "POST"])
@csrf.exempt
def mentor(token: str):
    """Offer (consent text, note) or, for a mentor, their link and counts."""
    participant = _load(token)
    campaign = participant.campaign
    if campaign.status != "running":
        return _unavailable(campaign)
    existing = mentoring.mentor_of(participant)
    if existing is None and not mentoring.is_offered(participant):
        abort(404)
    settings = mentoring.settings_of(campaign)
    errors, values, status = {}, {}, 200
    if request.method == "POST":
        if request.form.get("decision") != "agree":
            return _see(token)
        values = request.form
        try:
            mentoring.become_mentor(
                participant, request.form.get("note"), request.form.get("show_first_name") == "on"
            )
            return redirect(url_for("participant.mentor", token=token), 303)
        except mentoring.InvalidNote:
            errors, status = {"note": _("Write at most 280 characters.")}, 422
        except mentoring.MentoringError:
            return redirect(url_for("participant.mentor", token=token), 303)
    context = {}
    if existing is not None and existing.stopped_at is None:
        context = _mentor_context(participant, existing)
    return render_template(
        "participant/mentor.html",
        participant=participant,
        campaign=campaign,
        mentor=existing,
        consent_text=settings.consent_text if settings else "",
        own_text=bool(
            campaign.mentoring and (campaign.mentoring.get("consent_text") or "").strip()
        ),
        errors=errors,
        values=values,
        **context,
    ), status


@bp.post("/<token>/mentor/stop")
@csrf.exempt
def mentor_stop(token: str):
    participant = _load(token)
    existing = mentoring.mentor_of(participant)
    if existing is None:
        abort(404)
    mentoring.stop(existing)
    return redirect(url_for("participant.mentor", token=token), 303)


@bp.post("/<token>/mentor/introduce")
@csrf.exempt
def mentor_introduce(token: str):
    """The mentor asks the council to introduce them to neighbours (through the outbox)."""
    participant = _load(token)
    existing = mentoring.mentor_of(participant)
    if existing is None or existing.stopped_at is not None:
        abort(404)
    if participant.campaign.status != "running":
        return _unavailable(participant.campaign)
    mentoring.introduce(existing)
    return redirect(url_for("participant.mentor", token=token), 303)


@bp.get("/<token>/mentor/card")
def mentor_card(token: str):
    """A printable card: the activity, the mentor's note and the link as a QR code."""
    participant = _load(token)
    existing = mentoring.mentor_of(participant)
    if existing is None or existing.stopped_at is not None:
        abort(404)
    link = mentoring.referral_link(existing)
    qr = qr_svg(link, _("QR code of the invitation link"))
    return render_template(
        "participant/mentor_card.html",
        participant=participant,
        campaign=participant.campaign,
        mentor=existing,
        referral_link=link,
        qr=qr,
        hide_leave_links=True,
    )


def _unusable(reason: str, mentor=None):
    if reason == "closed" and mentor is not None:
        return _unavailable(mentor.participant.campaign)
    html = render_template(
        "participant/referral_unusable.html",
        reason=reason,
        campaign=mentor.participant.campaign if mentor is not None else None,
    )
    return html, UNUSABLE_STATUS.get(reason, 410)


@bp.route("/r/<code>", methods=["GET", "POST"])
@limiter.limit(ENROL_LIMIT, methods=["POST"])
def referral(code: str):
    """An invitation link: the mentor's note, then the normal consent page."""
    found = mentoring.mentor_by_code(code)
    if found is None:
        return _unusable("unknown")
    campaign = found.participant.campaign
    g.campaign = campaign
    returning = enrolment.participant_by_token(
        request.cookies.get(OPEN_COOKIE.format(campaign.id), "")
    )
    if returning is not None and returning.campaign_id == campaign.id:
        # Already in the campaign: their own page, their arm, no second referral.
        return redirect(url_for("participant.entry", token=enrolment.token_of(returning)), 303)
    reason = mentoring.unusable_reason(found)
    if reason:
        return _unusable(reason, found)
    if request.method == "POST":
        if request.form.get("decision") != "agree":
            return render_template("participant/declined.html", campaign=campaign, listed=False)
        try:
            participant, _new = mentoring.enrol_referred(
                found, request.form.get("form_key", ""), locale=str(get_locale())
            )
        except mentoring.InvitationUnusable as exc:
            return _unusable(exc.reason, found)
        except CampaignNotOpen:
            return _unavailable(campaign)
        except enrolment.EnrolmentError:
            abort(400)
        token = enrolment.token_of(participant)
        response = redirect(url_for("participant.entry", token=token), code=303)
        remember(response, OPEN_COOKIE.format(campaign.id), token, path="/p/")
        return response
    first_name = found.participant.first_name if found.show_first_name else None
    response = current_app.make_response(
        render_template(
            "participant/referral.html",
            campaign=campaign,
            mentor=found,
            first_name=first_name,
            action=url_for("participant.referral", code=code),
            form_key=secrets.token_urlsafe(16),
            listed=False,
        )
    )
    cookie = OPENED_COOKIE.format(found.id)
    if request.method == "GET" and not request.cookies.get(cookie):
        mentoring.record_open(found)
        remember(response, cookie, "1", path="/p/r/")
    return response
