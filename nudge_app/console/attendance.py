"""Verified attendance at the door and from a register: the organiser's phone page (find a
participant by name or check-in code, one tap to check in, the session's count), the QR
scan (a static script fills the code field where the browser can read QR codes) and the
upload of an attendance register (CSV)."""

from __future__ import annotations

from flask import abort, flash, redirect, render_template, request, url_for

from nudge_app.auth import login_required
from nudge_app.console.common import actor, bp, own_campaign, sees_contacts
from nudge_app.services import attendance as checkins
from nudge_app.services.attendance import AttendanceError, RegisterRejected


def _campaign(slug: str):
    c = own_campaign(slug)
    # Names and contacts: the roles that see them (admins, designers) run the door.
    if not sees_contacts():
        abort(403)
    return c


def _session() -> str:
    text = request.values.get("session") or checkins.today()
    try:
        return checkins.parse_session(text)
    except AttendanceError:
        return checkins.today()


def _back(c, session: str, q: str = ""):
    return redirect(
        url_for("console.attendance", slug=c.slug, session=session, **({"q": q} if q else {}))
        + "#find"
    )


def _page(c, session: str, q: str = "", problems=None, unmatched=None, error=None, status=200):
    found = checkins.search(c, q) if q else []
    counts = checkins.session_counts(c)
    return render_template(
        "console/attendance.html",
        c=c,
        session=session,
        q=q,
        found=found,
        counts=counts,
        here=dict(counts).get(session, 0),
        register_problems=problems,
        unmatched=unmatched,
        error=error,
    ), status


@bp.get("/campaigns/<slug>/attendance")
@login_required
def attendance(slug: str):
    c = _campaign(slug)
    return _page(c, _session(), (request.args.get("q") or "").strip()[:100])


@bp.post("/campaigns/<slug>/attendance/check-in")
@login_required
def attendance_check_in(slug: str):
    c = _campaign(slug)
    session, q = _session(), (request.form.get("q") or "").strip()[:100]
    who, who_id = actor()
    try:
        pid = int(request.form.get("participant_id", ""))
        done = checkins.check_in(c, pid, session, "door", who_id, who)
    except (ValueError, AttendanceError) as exc:
        message = str(exc) if isinstance(exc, AttendanceError) else "choose a participant"
        return _page(c, session, q, error=message, status=422)
    flash(_said(done))
    return _back(c, session, q)


@bp.post("/campaigns/<slug>/attendance/code")
@login_required
def attendance_code(slug: str):
    c = _campaign(slug)
    session = _session()
    who, who_id = actor()
    method = "qr" if request.form.get("scanned") == "1" else "door"
    try:
        p = checkins.by_code(c, request.form.get("code", ""))
        done = checkins.check_in(c, p.id, session, method, who_id, who)
    except AttendanceError as exc:
        return _page(c, session, error=str(exc), status=422)
    flash(_said(done))
    return _back(c, session)


@bp.post("/campaigns/<slug>/attendance/undo")
@login_required
def attendance_undo(slug: str):
    c = _campaign(slug)
    session, q = _session(), (request.form.get("q") or "").strip()[:100]
    who, who_id = actor()
    try:
        pid = int(request.form.get("participant_id", ""))
    except ValueError:
        abort(400)
    if checkins.undo_check_in(c, pid, session, who_id, who):
        flash(f"Check-in for {session} removed.")
    return _back(c, session, q)


@bp.post("/campaigns/<slug>/attendance/register")
@login_required
def attendance_register(slug: str):
    c = _campaign(slug)
    session = _session()
    upload = request.files.get("file")
    if upload is None or not upload.filename:
        return _page(c, session, problems=[(0, "file", "choose a CSV file")], status=422)
    who, who_id = actor()
    default = request.form.get("session") if request.form.get("use_session") == "1" else None
    try:
        result = checkins.import_register(c, upload.read(), default, who_id, who)
    except RegisterRejected as exc:
        return _page(c, session, problems=exc.problems[:200], status=422)
    text = (
        f"Register recorded: {result.checked_in} check-in(s)"
        + (f", {result.already} already recorded" if result.already else "")
        + "."
    )
    if result.unmatched:
        text += (
            f" {len(result.unmatched)} row(s) matched no participant (not in the trial?): "
            + ", ".join(f"row {n} ({what})" for n, what in result.unmatched[:50])
            + ("…" if len(result.unmatched) > 50 else "")
            + "."
        )
    flash(text)
    return _back(c, session)


def _said(done) -> str:
    name = done.first_name or "The participant"
    if done.already:
        return f"{name} was already checked in for {done.session}."
    return f"{name} checked in for {done.session}."
