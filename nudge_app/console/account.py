"""Console pages for one's own account and an admin's reset of another user's password.

`/account/password` changes one's password (the current one first; every other session
ends). An admin's reset gives a temporary password, shown once, that opens only this
page; it ends all the user's sessions.
"""

from __future__ import annotations

from flask import abort, flash, redirect, render_template, url_for

from nudge_app.auth import current_session, current_staff, login_required, roles_required
from nudge_app.console import bp
from nudge_app.console.forms import PasswordChangeForm
from nudge_app.extensions import db
from nudge_app.models import StaffUser
from nudge_app.passwords import MIN_LENGTH
from nudge_app.services import staff as staff_service


@bp.route("/account/password", methods=["GET", "POST"])
@login_required
def password():
    form = PasswordChangeForm()
    staff = current_staff()
    if form.validate_on_submit():
        try:
            staff_service.change_password(
                staff, form.current.data, form.new.data, keep=current_session()
            )
        except staff_service.StaffError as exc:
            db.session.rollback()
            getattr(form, exc.field or "new").errors.append(str(exc).partition(": ")[2])
        else:
            db.session.commit()
            flash("Your password is changed. Your other sessions were signed out.")
            return redirect(url_for("console.index"))
    status = 422 if form.errors else 200
    return render_template(
        "console/password.html", form=form, min_length=MIN_LENGTH, forced=staff.must_change_password
    ), status


@bp.post("/admin/users/<int:user_id>/reset-password")
@roles_required("admin")
def user_reset_password(user_id: int):
    staff = current_staff()
    user = db.session.get(StaffUser, user_id)
    if user is None or user.council_id != staff.council_id:
        abort(404)
    if user.id == staff.id:
        flash("Change your own password on the account page.")
        return redirect(url_for("console.users"))
    temporary = staff_service.reset_password(user, actor=f"user:{staff.id}", actor_id=staff.id)
    db.session.commit()
    return render_template("console/password_reset.html", user=user, temporary=temporary)
