"""The languages participants can be addressed in: the one list the design files, the
console and the participant pages read.

A language is listed only when every participant page and message text has a complete
translation (`tests/participant/test_translations.py` fails otherwise); English is the
source. Names are written in their own language, as the language switch shows them.
"""

from __future__ import annotations

LANGUAGE_NAMES: dict[str, str] = {
    "en": "English",
    "cy": "Cymraeg",
    "fr": "Français",
    "de": "Deutsch",
    "da": "Dansk",
    "cs": "Čeština",
}
LANGUAGES: tuple[str, ...] = tuple(LANGUAGE_NAMES)
SOURCE_LANGUAGE = "en"
