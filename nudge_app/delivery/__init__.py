"""Message delivery: channels (file, SMTP, GOV.UK Notify) and provider receipts.

`bp` is registered at `/callbacks` (CSRF-exempt); its routes live in `receipts`.
"""

from __future__ import annotations

from flask import Blueprint

bp = Blueprint("delivery", __name__)

from nudge_app.delivery import receipts  # noqa: E402,F401  (registers the routes on bp)
