"""Message delivery: channels (file, SMTP, GOV.UK Notify) and provider receipts (issue 7)."""

from __future__ import annotations

from flask import Blueprint

bp = Blueprint("delivery", __name__)
