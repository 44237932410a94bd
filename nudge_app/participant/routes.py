"""The participant pages: thin views that check the step, call one service, and render.

GET never records a join and HEAD records nothing at all (link scanners and previews
fetch pages); a person's first GET of their link is the visit, their first view of the
arm's page the exposure. Every form is a POST followed by a redirect.

The unguessable token in the path is the credential of every personal page, so their
forms carry no CSRF token (a forged cross-site post would need the token itself, exactly
as with RFC 8058 one-click unsubscribe) and use no session cookie. The open enrolment
form, which has no token, keeps CSRF protection.

A revisit of the nudge page (the common case) is answered from a small per-process cache
of rendered pages after one indexed query, keyed by everything the page shows. The
consent page of a listed person differs from everyone else's only by their token: it is
rendered once per campaign and language, and the token put in.
"""

from __future__ import annotations

import secrets
import threading
from collections import OrderedDict

from flask import (
    Blueprint,
    abort,
    current_app,
    g,
    make_response,
    redirect,
    render_template,
    request,
    url_for,
)
from flask_babel import get_locale
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l

from experiments import baseline as registry
from nudge_app.boundary import discard
from nudge_app.db import LAZY, sqlite_begin_mode
from nudge_app.extensions import csrf
from nudge_app.links import participant_links
from nudge_app.models import Assignment, Campaign, Participant
from nudge_app.participant import (
    ENROL_LIMIT,
    LANG_COOKIE,
    LANGUAGES,
    PAGE_LIMIT,
    choose_locale,
    limiter,
    survey,
)
from nudge_app.services import enrolment, mentoring, screening
from nudge_app.services.attendance import check_in_code, qr_svg
from nudge_app.services.enrolment import CampaignNotOpen, InvalidAnswers, StepOutOfOrder
from nudge_app.templating import html_paragraphs, render

bp = Blueprint(
    "participant",
    __name__,
    template_folder="templates",
    static_folder="static",
    static_url_path="/static",
)
limiter.limit(PAGE_LIMIT)(bp)

OPEN_COOKIE = "nudge_open_{}"
COOKIE_MAX_AGE = 180 * 24 * 3600

# Messages beside answers that are not baseline questions (those declare their own in
# experiments.baseline); the service's own messages are for logs and tests.
CONTACT_LABELS = {
    "email": _l("By email"),
    "phone": _l("By phone"),
    "none": _l("Please do not contact me; I will just come along"),
}
FIELD_ERRORS = {
    "participated": _l("Answer yes or no."),
    "contact": _l("Choose how we may contact you."),
    "email": _l("Enter an email address like name@example.org, or leave it empty."),
}
STATUS_TITLES = {
    "paused": _l("This campaign is paused"),
    "closed": _l("This campaign has closed"),
}


def _errors(exc: InvalidAnswers) -> dict[str, str]:
    year = enrolment.utcnow().year
    return {
        field: survey.error_text(field, year)
        or str(FIELD_ERRORS.get(field, _l("Check this answer.")))
        for field in exc.errors
    }


# --- request plumbing -------------------------------------------------------------------


@bp.after_request
def _remember_language(response):
    lang = request.args.get("lang")
    if lang in LANGUAGES and request.cookies.get(LANG_COOKIE) != lang:
        remember(response, LANG_COOKIE, lang)
    return response


def remember(response, name: str, value: str, path: str = "/") -> None:
    """Set a participant cookie: kept half a year, sent only to our own pages (SameSite
    Lax), hidden from scripts, Secure when the session cookie is."""
    response.set_cookie(
        name,
        value,
        max_age=COOKIE_MAX_AGE,
        path=path,
        samesite="Lax",
        httponly=True,
        secure=current_app.config.get("SESSION_COOKIE_SECURE", False),
    )


def _load(token: str) -> Participant:
    """The participant of a personal link, or the friendly 404 (unknown or withdrawn)."""
    participant = enrolment.participant_by_token(token)
    if participant is None or participant.campaign.status == "draft":
        abort(404)
    g.participant = participant
    g.campaign = participant.campaign
    g.token = token
    return participant


@bp.before_request
def _write_lock_for_writes_only():
    """SQLite: a page's reads run outside a transaction and its first write takes the
    write lock (nudge_app.db, WRITE mode), so pages are served in parallel. A form (POST)
    is there to write: its transaction takes the lock at its first statement, so the
    person it read is the current row and need not be read again under the lock."""
    mode = "IMMEDIATE" if request.method == "POST" else LAZY
    g.sqlite_mode_token = sqlite_begin_mode.set(mode)


@bp.teardown_request
def _restore_sqlite_mode(exc=None):
    token = g.pop("sqlite_mode_token", None)
    if token is not None:
        sqlite_begin_mode.reset(token)


def _is_head() -> bool:
    return request.method == "HEAD"


def _unavailable(campaign: Campaign):
    code = 410 if campaign.status == "closed" else 503
    html = render_template(
        "participant/unavailable.html",
        campaign=campaign,
        title=STATUS_TITLES.get(campaign.status, STATUS_TITLES["closed"]),
        status=campaign.status,
    )
    return html, code


def _see(token: str, endpoint: str = "participant.entry"):
    return redirect(url_for(endpoint, token=token), code=303)


# --- trivial endpoint for the load benchmark --------------------------------------------


@bp.get("/ping")
def ping():
    return "ok", 200, {"Content-Type": "text/plain; charset=utf-8"}


# --- open enrolment ---------------------------------------------------------------------


@bp.route("/join/<code>", methods=["GET", "POST"])
@limiter.limit(ENROL_LIMIT, methods=["POST"])
def open_entry(code: str):
    campaign = enrolment.campaign_by_open_code(code)
    if campaign is None or campaign.status == "draft":
        abort(404)
    g.campaign = campaign
    if campaign.status != "running":
        return _unavailable(campaign)
    cookie = OPEN_COOKIE.format(campaign.id)
    returning = enrolment.participant_by_token(request.cookies.get(cookie, ""))
    if returning is not None and returning.campaign_id == campaign.id:
        return redirect(url_for("participant.entry", token=enrolment.token_of(returning)), 303)
    if request.method == "POST":
        if request.form.get("decision") != "agree":
            return render_template("participant/declined.html", campaign=campaign, listed=False)
        try:
            participant = enrolment.enrol_open(
                campaign, request.form.get("form_key", ""), locale=str(get_locale())
            )
        except CampaignNotOpen:
            return _unavailable(campaign)
        except enrolment.EnrolmentError:
            abort(400)
        token = enrolment.token_of(participant)
        response = redirect(url_for("participant.entry", token=token), code=303)
        # So the person who scans the poster again comes back to their own page.
        remember(response, cookie, token, path="/p/")
        return response
    page = render_template(
        "participant/consent.html",
        campaign=campaign,
        action=url_for("participant.open_entry", code=code),
        form_key=secrets.token_urlsafe(16),
        listed=False,
    )
    if not _is_head():
        # Written after rendering, as on the nudge page: SQLite's write lock (taken by the
        # first write, released when the request commits) is held for the insert alone.
        enrolment.record_visit(campaign)
    return page


# --- the personal link ------------------------------------------------------------------


@bp.get("/<token>")
def entry(token: str):
    """Whatever comes next for this person: consent, the baseline, or the arm's page."""
    kinds: set[str] = set()  # the once-only events the person already has
    cache_key = consent_key = None
    if not _is_head():
        quick = enrolment.quick_state(token)
        if quick is None:
            abort(404)
        cache_key = _cache_key(quick, token)
        if cache_key is not None:
            html = _page_cache.get(cache_key)
            if html is not None:
                return html
        kinds = {kind for kind in enrolment.ONCE_KINDS if getattr(quick, f"has_{kind}")}
        consent_key = _consent_key(quick)
        if consent_key is not None:
            shared = _consent_pages.get(consent_key)
            if shared is not None:  # a listed person's first visit: no objects needed
                if "visit" not in kinds:
                    enrolment.record_visit_of(quick.campaign_id, quick.id)
                return shared.replace(TOKEN_SLOT, token)
    participant = _load(token)
    campaign = participant.campaign
    if participant.opted_out_at is not None:
        return render_template("participant/opted_out.html", participant=participant, done=False)
    if campaign.status != "running":
        return _unavailable(campaign)
    if _is_head():  # scanners: same status, no side effect
        return "", 200, {"Content-Type": "text/html; charset=utf-8"}
    assignment = None
    if screening.is_screened_out(participant):
        page = _ineligible_page(participant)
    elif participant.consent_status != "given":
        page = _consent_page(campaign, token, consent_key)
    elif participant.baseline_completed_at is None:
        page = _baseline_page(participant)
    else:
        try:
            assignment = participant.assignment or enrolment.ensure_assigned(participant)
        except CampaignNotOpen:
            return _unavailable(campaign)
        if assignment is None and screening.is_screened_out(participant):
            page = _ineligible_page(participant)
        elif assignment is None:  # cannot happen after the baseline; say so plainly
            abort(503)
        else:
            page = _nudge_page(participant, assignment, joined="join" in kinds)
            if cache_key is not None and page[1] == 200:
                _page_cache.put(cache_key, page[0])
    # Render first, then write: the visit and the exposure are single idempotent inserts,
    # so the write lock (SQLite), released when the request commits right after this
    # view, is held for them alone, and a revisit (the common case) costs two indexed
    # reads and no write.
    if "visit" not in kinds:
        enrolment.record_visit(campaign, participant)
    if assignment is not None and "exposure" not in kinds:
        enrolment.record_exposure(participant, assignment)
    return page


class _PageCache:
    """A small thread-safe LRU of rendered nudge pages (per worker process)."""

    def __init__(self, size: int = 2000):
        self.size = size
        self.pages: OrderedDict[tuple, str] = OrderedDict()
        self.lock = threading.Lock()

    def get(self, key: tuple) -> str | None:
        with self.lock:
            html = self.pages.get(key)
            if html is not None:
                self.pages.move_to_end(key)
            return html

    def put(self, key: tuple, html: str) -> None:
        with self.lock:
            self.pages[key] = html
            while len(self.pages) > self.size:
                self.pages.popitem(last=False)


_page_cache = _PageCache()


# Stands for the person's token in a page shared by everyone who has not yet consented.
TOKEN_SLOT = "\x00token\x00"
_consent_pages = _PageCache(size=200)


def _consent_page(campaign: Campaign, token: str, key: tuple | None) -> str:
    """A listed person's consent page: the same for everyone of the campaign (in their
    language) but for their token, so it is rendered once and the token put in (kept
    under `key`, from `_consent_key`)."""
    html = render_template(
        "participant/consent.html",
        campaign=campaign,
        action=url_for("participant.consent", token=token),
        listed=True,
    )
    if key is not None:
        _consent_pages.put(key, html.replace(token, TOKEN_SLOT))
    return html


def _consent_key(quick) -> tuple | None:
    """The key of the shared consent page a person is shown now, or None when they are
    shown something else (consent given, opted out, screened out, campaign not running).
    Every input the page shows: the campaign (and its version), council and language."""
    if (
        quick.consent_status == "given"
        or quick.opted_out
        or quick.erased
        or quick.screened_out
        or quick.campaign_status != "running"
    ):
        return None
    return (
        quick.campaign_id,
        str(quick.campaign_updated_at),
        quick.council_name,
        choose_locale(quick.locale, quick.campaign_language),
    )


def _cache_key(quick, token: str) -> tuple | None:
    """The key of a revisit's page: every input the page shows, or None if not cacheable.

    Only the steady state is cached: consent given, baseline done, arm assigned, visit and
    exposure recorded, not opted out, campaign running. Anything else takes the full path.
    """
    if (
        quick.consent_status != "given"
        or not quick.baseline_done
        or quick.arm_id is None
        or quick.opted_out
        or quick.erased
        or quick.campaign_status != "running"
        or not (quick.has_visit and quick.has_exposure)
    ):
        return None
    return (
        token,
        quick.id,
        choose_locale(quick.locale, quick.campaign_language),
        quick.has_join,
        quick.has_email,
        quick.first_name,
        quick.neighbourhood,
        quick.arm_id,
        str(quick.campaign_updated_at),
        quick.council_name,
    )


def _nudge_page(
    participant: Participant,
    assignment: Assignment,
    joined: bool,
    errors: dict | None = None,
    values=None,
    status: int = 200,
):
    campaign = participant.campaign
    arm = assignment.arm
    links = participant_links(participant)
    context = {
        "first_name": participant.first_name or _("neighbour"),
        "council": campaign.council.name,
        "campaign": campaign.name,
        "activity": campaign.activity_name,
        "activity_where": campaign.activity_where,
        "activity_when": campaign.activity_when,
        "neighbourhood": participant.neighbourhood or _("your area"),
        "framing": arm.framing,
        **links,
    }
    message = html_paragraphs(render(arm.page_template, context))
    code = check_in_code(participant.id)
    return render_template(
        "participant/nudge.html",
        check_in_code=code,
        check_in_qr=qr_svg(code, _("QR code of your check-in code %(code)s", code=code)),
        participant=participant,
        campaign=campaign,
        arm=arm,
        message=message,
        joined=joined,
        contact_labels=CONTACT_LABELS,
        ask_email=participant.email is None,
        mentor_offer=joined and mentoring.is_offered(participant),
        errors=errors or {},
        values=values or {},
    ), status


def _ineligible_page(participant: Participant):
    """The kind page of a resident the campaign's eligibility rules screened out: no arm,
    no message; what the council does instead and how to hear about other activities."""
    return render_template(
        "participant/ineligible.html", participant=participant, campaign=participant.campaign
    )


@bp.post("/<token>/consent")
@csrf.exempt
def consent(token: str):
    participant = _load(token)
    decision = request.form.get("decision")
    try:
        if decision == "agree":
            enrolment.give_consent(participant, locale=str(get_locale()))
        elif participant.consent_status != "given":
            enrolment.refuse_consent(participant)
            return render_template(
                "participant/declined.html", campaign=participant.campaign, listed=True
            )
    except CampaignNotOpen:
        return _unavailable(participant.campaign)
    except StepOutOfOrder:
        discard()  # answered with a redirect to the right step, which the boundary commits
    return _see(token)


def _baseline_page(participant: Participant, errors=None, values=None, ask=None, status=200):
    """The baseline questions, or (after a list import) the answers to confirm with the
    questions the import left out."""
    if ask is None:
        ask = request.args.get("answer") == "1" or not enrolment.has_imported_baseline(participant)
    variables = registry.survey_variables() if ask else enrolment.unanswered(participant)
    return render_template(
        "participant/baseline.html",
        participant=participant,
        campaign=participant.campaign,
        ask=ask,
        errors=errors or {},
        values=values or {},
        questions=survey.questions(variables),
        confirm=[] if ask else survey.summary(participant),
        screened=bool(screening.needed(participant.campaign)),
    ), status


@bp.post("/<token>/baseline")
@csrf.exempt
def baseline(token: str):
    participant = _load(token)
    if participant.opted_out_at is not None:
        return _see(token)
    confirmed = request.form.get("decision") == "confirm"
    asked = enrolment.unanswered(participant) if confirmed else registry.survey_variables()
    raw = survey.form_answers(request.form, asked)
    try:
        answers = enrolment.check_baseline(
            raw, variables=asked, required=screening.needed(participant.campaign)
        )
    except InvalidAnswers as exc:
        return _baseline_page(
            participant, errors=_errors(exc), values=raw, ask=not confirmed, status=422
        )
    try:
        enrolment.submit_baseline(participant, answers, confirmed=confirmed)
    except CampaignNotOpen:
        return _unavailable(participant.campaign)
    except StepOutOfOrder:
        discard()  # answered with a redirect to the right step, which the boundary commits
    return _see(token)


@bp.route("/<token>/join", methods=["GET", "POST"])
@csrf.exempt
def join(token: str):
    """'I'll take part': recorded from a POST only; a GET (a scanner) just shows the page."""
    participant = _load(token)
    if request.method != "POST":
        return _see(token)
    try:
        enrolment.join(
            participant,
            contact=request.form.get("contact") or "none",
            email=request.form.get("email") or None,
        )
    except InvalidAnswers as exc:
        assignment = enrolment.ensure_assigned(participant)
        return _nudge_page(
            participant, assignment, False, errors=_errors(exc), values=request.form, status=422
        )
    except CampaignNotOpen:
        return _unavailable(participant.campaign)
    except StepOutOfOrder:
        discard()  # answered with a redirect to the right step, which the boundary commits
        return _see(token)
    return redirect(url_for("participant.entry", token=token, _anchor="joined"), 303)


@bp.route("/<token>/follow-up", methods=["GET", "POST"])
@csrf.exempt
def follow_up(token: str):
    participant = _load(token)
    campaign = participant.campaign
    if participant.opted_out_at is not None and not enrolment.has_follow_up(participant):
        return render_template("participant/opted_out.html", participant=participant, done=False)
    if participant.consent_status != "given":
        return _see(token)
    done = enrolment.has_follow_up(participant)
    errors, values, status = {}, {}, 200
    if request.method == "POST" and not done:
        values = survey.form_answers(request.form, registry.follow_up_variables())
        try:
            enrolment.submit_follow_up(participant, enrolment.check_follow_up(values))
            return redirect(url_for("participant.follow_up", token=token), 303)
        except InvalidAnswers as exc:
            errors, status = _errors(exc), 422
    return render_template(
        "participant/follow_up.html",
        participant=participant,
        campaign=campaign,
        done=done,
        errors=errors,
        values=values,
        questions=survey.questions(registry.follow_up_variables()),
    ), status


@bp.route("/<token>/opt-out", methods=["GET", "POST"])
@csrf.exempt
def opt_out(token: str):
    """GET shows one button; POST (the button, or RFC 8058 one-click) stops every message."""
    participant = _load(token)
    if request.method == "POST":
        one_click = request.form.get("List-Unsubscribe") == "One-Click"
        enrolment.opt_out(participant, via="one-click" if one_click else "page")
        if one_click:
            return (
                "You will get no more messages from this campaign.\n",
                200,
                {"Content-Type": "text/plain; charset=utf-8"},
            )
        return render_template("participant/opted_out.html", participant=participant, done=True)
    if participant.opted_out_at is not None:
        return render_template("participant/opted_out.html", participant=participant, done=False)
    return render_template("participant/opt_out.html", participant=participant)


@bp.route("/<token>/withdraw", methods=["GET", "POST"])
@csrf.exempt
def withdraw(token: str):
    """Withdrawal: erase names and contact details, or (on request) delete everything."""
    participant = _load(token)
    campaign = participant.campaign
    if request.method == "POST":
        choice = request.form.get("choice")
        if choice == "erase":
            enrolment.erase(participant)
        elif choice == "delete":
            enrolment.delete_participant(participant)
        else:
            return render_template(
                "participant/withdraw.html",
                participant=participant,
                errors={"choice": _("Choose one of the two options.")},
            ), 422
        response = make_response(
            render_template("participant/withdrawn.html", campaign=campaign, choice=choice)
        )
        response.delete_cookie(OPEN_COOKIE.format(campaign.id), path="/p/")
        return response
    return render_template("participant/withdraw.html", participant=participant, errors={})
