"""The participant pages: links, consent, baseline, nudge, join, follow-up, opt-out (issue 6).

This package also attaches the two extensions its public pages need to every app:
Flask-Babel (the campaign picks the language, the participant can switch) and
Flask-Limiter (rate limits on the public routes; off in tests unless asked for).
"""

from __future__ import annotations

from flask import Blueprint, Flask, g, request
from flask_babel import Babel, get_locale, refresh
from flask_limiter import Limiter
from flask_limiter.util import get_remote_address

from nudge_app.hooks import on_app_init

# UI languages with a catalog in nudge_app/translations (English is the source).
LANGUAGES = {"en": "English", "fr": "Français", "de": "Deutsch"}
LANG_COOKIE = "nudge_lang"

bp = Blueprint(
    "participant",
    __name__,
    template_folder="templates",
    static_folder="static",
    static_url_path="/static",
)

# One limiter for the process; each app's config (RATELIMIT_ENABLED, _STORAGE_URI) binds it.
limiter = Limiter(get_remote_address)
# Generous enough for a household behind one address, tight enough to stop scripted abuse.
PAGE_LIMIT = "120 per minute;2000 per hour"
ENROL_LIMIT = "10 per minute"


def select_locale() -> str:
    """?lang=, then the remembered choice, then the participant's, then the campaign's."""
    for candidate in (request.args.get("lang"), request.cookies.get(LANG_COOKIE)):
        if candidate in LANGUAGES:
            return candidate
    participant = g.get("participant")
    if participant is not None and participant.locale in LANGUAGES:
        return participant.locale
    campaign = g.get("campaign")
    if campaign is not None and campaign.language in LANGUAGES:
        return campaign.language
    return "en"


@on_app_init
def init_participant_extensions(app: Flask) -> None:
    Babel(app, locale_selector=select_locale)
    limiter.init_app(app)

    @app.before_request
    def _fresh_request_state():
        # The app context (and so `g`) can outlive one request, e.g. under the test client.
        for name in ("participant", "campaign", "token"):
            g.pop(name, None)
        refresh()

    @app.context_processor
    def _language_context():
        return {"current_locale": str(get_locale() or "en"), "languages": LANGUAGES}


from nudge_app.participant import routes  # noqa: E402,F401  (registers the views on bp)

limiter.limit(PAGE_LIMIT)(bp)
