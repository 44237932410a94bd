"""Console sign-in and sign-out."""

from __future__ import annotations

from flask import flash, redirect, render_template, request, url_for

from nudge_app.auth import current_staff, login_staff, logout_staff
from nudge_app.boundary import commit_now
from nudge_app.console.common import bp
from nudge_app.services import staff as staff_service


def _safe_next(target: str | None) -> str:
    if target and target.startswith("/") and not target.startswith("//") and "\\" not in target:
        return target
    return url_for("console.index")


@bp.route("/login", methods=["GET", "POST"])
def login():
    if request.method == "GET":
        if current_staff() is not None:
            return redirect(url_for("console.index"))
        return render_template("console/login.html", next=request.args.get("next", ""))
    email = (request.form.get("email") or "").strip()
    password = request.form.get("password") or ""
    client = request.remote_addr or "unknown"
    try:
        user = staff_service.authenticate(email, password, client)
    except staff_service.LoginThrottled as exc:
        commit_now()  # the attempt counts towards the throttle although the answer is 429
        response = render_template(
            "console/login.html", error=str(exc), email=email, next=request.form.get("next")
        )
        return response, 429, {"Retry-After": str(exc.retry_after_seconds)}
    if user is None:
        commit_now()  # the failed attempt counts towards the throttle although it is a 401
        return render_template(
            "console/login.html",
            error="The email or password is not right.",
            email=email,
            next=request.form.get("next"),
        ), 401
    login_staff(user)
    return redirect(_safe_next(request.form.get("next")))


@bp.post("/logout")
def logout():
    logout_staff()
    flash("You are signed out.")
    return redirect(url_for("console.login"))
