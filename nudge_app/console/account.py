"""The console page for one's own password: the current one first, then a new one under
the password rule; every other session of the user ends. After an admin's reset it is
the only page the temporary password opens."""

from __future__ import annotations

from flask import flash, redirect, render_template, url_for

from nudge_app.auth import current_session, current_staff, login_required
from nudge_app.console.common import bp
from nudge_app.console.forms import PasswordChangeForm
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
            getattr(form, exc.field or "new").errors.append(str(exc).partition(": ")[2])
        else:
            flash("Your password is changed. Your other sessions were signed out.")
            return redirect(url_for("console.index"))
    status = 422 if form.errors else 200
    return render_template(
        "console/password.html", form=form, min_length=MIN_LENGTH, forced=staff.must_change_password
    ), status
