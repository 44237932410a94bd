"""The participant pages: links, consent, baseline, nudge, join, follow-up, opt-out.

The pages themselves are in `routes` (its blueprint `bp`). This module holds what they
share with the app: `init_app`, which the app factory calls, attaches Flask-Babel (the
campaign picks the language, the participant can switch) and Flask-Limiter (rate limits
on the public routes; off in tests unless asked for).
"""

from __future__ import annotations

import weakref

from flask import Flask, g, request
from flask_babel import Babel, get_locale
from flask_limiter import Limiter
from flask_limiter.util import get_remote_address
from sqlalchemy import create_engine

from experiments.languages import LANGUAGE_NAMES

# The languages offered: exactly those with a complete catalog (experiments.languages).
LANGUAGES = LANGUAGE_NAMES
LANG_COOKIE = "nudge_lang"

# One limiter for the process; each app's config (RATELIMIT_ENABLED, _STORAGE_URI) binds it.
limiter = Limiter(get_remote_address)
# Generous enough for a household behind one address, tight enough to stop scripted abuse.
PAGE_LIMIT = "120 per minute;2000 per hour"
ENROL_LIMIT = "10 per minute"


def choose_locale(participant_locale: str | None, campaign_language: str | None) -> str:
    """?lang=, then the remembered choice, then the participant's, then the campaign's."""
    for candidate in (
        request.args.get("lang"),
        request.cookies.get(LANG_COOKIE),
        participant_locale,
        campaign_language,
    ):
        if candidate in LANGUAGES:
            return candidate
    return "en"


def select_locale() -> str:
    participant = g.get("participant")
    campaign = g.get("campaign")
    return choose_locale(
        participant.locale if participant is not None else None,
        campaign.language if campaign is not None else None,
    )


def init_app(app: Flask) -> None:
    Babel(app, locale_selector=select_locale)
    limiter.init_app(app)
    _init_read_engine(app)

    @app.context_processor
    def _language_context():
        return {"current_locale": str(get_locale() or "en"), "languages": LANGUAGES}


def _init_read_engine(app: Flask) -> None:
    """On PostgreSQL, a small autocommit engine without pre-ping for the nudge page's one
    read (the hot path): one round trip instead of four. Disposed with the app."""
    url = app.config.get("SQLALCHEMY_DATABASE_URI") or ""
    if not url.startswith("postgresql"):
        return
    # As many connections as a worker has threads (nudge serve: 4), a few spare.
    engine = create_engine(url, isolation_level="AUTOCOMMIT", pool_size=4, max_overflow=2)
    app.extensions["nudge_read_engine"] = engine
    weakref.finalize(app, engine.dispose)
