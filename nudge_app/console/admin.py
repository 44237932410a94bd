"""Admins' pages: the council's audit log (and its CSV), staff users and API tokens."""

from __future__ import annotations

import csv
import io
import json

from flask import Response, abort, flash, redirect, render_template, request, url_for
from sqlalchemy import select

from nudge_app.auth import current_staff, roles_required
from nudge_app.boundary import discard
from nudge_app.console.common import actor, bp, csv_cell
from nudge_app.extensions import db
from nudge_app.models import ROLES, ApiToken, AuditEntry, StaffUser
from nudge_app.services import staff as staff_service


def _audit_rows(limit: int | None = 500):
    staff = current_staff()
    query = (
        select(AuditEntry)
        .where(AuditEntry.council_id == staff.council_id)
        .order_by(AuditEntry.at.desc(), AuditEntry.id.desc())
    )
    if limit:
        query = query.limit(limit)
    return db.session.scalars(query).all()


@bp.get("/audit")
@roles_required("admin")
def audit_log():
    return render_template("console/audit.html", entries=_audit_rows())


@bp.get("/audit.csv")
@roles_required("admin")
def audit_export():
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["at", "actor", "action", "object_type", "object_id", "before", "after"])
    for e in _audit_rows(limit=None):
        writer.writerow(
            [
                csv_cell(v)
                for v in (
                    e.at.isoformat(),
                    e.actor,
                    e.action,
                    e.object_type,
                    e.object_id,
                    json.dumps(e.before, sort_keys=True) if e.before is not None else "",
                    json.dumps(e.after, sort_keys=True) if e.after is not None else "",
                )
            ]
        )
    return Response(
        out.getvalue(),
        mimetype="text/csv",
        headers={"Content-Disposition": 'attachment; filename="audit-log.csv"'},
    )


@bp.route("/admin/users", methods=["GET", "POST"])
@roles_required("admin")
def users():
    staff = current_staff()
    status = 200
    error = None
    if request.method == "POST":
        who, who_id = actor()
        try:
            staff_service.create_user(
                staff.council,
                request.form.get("email", ""),
                request.form.get("role", ""),
                request.form.get("password", ""),
                actor=who,
                actor_id=who_id,
            )
        except staff_service.StaffError as exc:
            error, status = str(exc), 422
        else:
            flash("User created.")
            return redirect(url_for("console.users"))
    return render_template(
        "console/users.html",
        users=staff_service.council_users(staff.council_id),
        roles=ROLES,
        error=error,
    ), status


def _council_user(user_id: int) -> StaffUser:
    user = db.session.get(StaffUser, user_id)
    if user is None or user.council_id != current_staff().council_id:
        abort(404)
    return user


@bp.post("/admin/users/<int:user_id>")
@roles_required("admin")
def user_update(user_id: int):
    user = _council_user(user_id)
    who, who_id = actor()
    if user.id == who_id:
        flash("You cannot change your own role or deactivate yourself.")
        return redirect(url_for("console.users"))
    try:
        if "role" in request.form:
            staff_service.set_user_role(user, request.form["role"], who, who_id)
        if "active" in request.form:
            staff_service.set_user_active(user, request.form["active"] == "1", who, who_id)
    except staff_service.StaffError as exc:
        discard()  # a role changed before the refusal must not be kept by the redirect
        flash(str(exc))
        return redirect(url_for("console.users"))
    flash(f"User {user.email} updated.")
    return redirect(url_for("console.users"))


@bp.route("/admin/tokens", methods=["GET", "POST"])
@roles_required("admin")
def tokens():
    staff = current_staff()
    new_secret = None
    error = None
    status = 200
    if request.method == "POST":
        who, who_id = actor()
        try:
            new = staff_service.create_token(
                staff.council, request.form.get("name", ""), actor=who, actor_id=who_id
            )
        except staff_service.StaffError as exc:
            error, status = str(exc), 422
        else:
            new_secret = new.secret
            status = 201
    return render_template(
        "console/tokens.html",
        tokens=staff_service.council_tokens(staff.council_id),
        new_secret=new_secret,
        error=error,
    ), status


@bp.post("/admin/tokens/<int:token_id>/revoke")
@roles_required("admin")
def token_revoke(token_id: int):
    token = db.session.get(ApiToken, token_id)
    if token is None or token.council_id != current_staff().council_id:
        abort(404)
    who, who_id = actor()
    staff_service.revoke_token(token, actor=who, actor_id=who_id)
    flash(f"Token {token.name!r} revoked: it stops working now.")
    return redirect(url_for("console.tokens"))
