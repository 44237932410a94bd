"""The council console: staff pages for campaigns, participants, monitoring (issue 5)."""

from __future__ import annotations

from flask import Blueprint, redirect, url_for

bp = Blueprint("console", __name__, template_folder="templates")


@bp.get("/")
def index():
    return redirect(url_for("health.healthz"))
