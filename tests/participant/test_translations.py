"""The participant pages' catalogs: every text translated, the compiled .mo files current."""

from __future__ import annotations

from io import BytesIO
from pathlib import Path

import pytest
from babel.messages.extract import extract_from_dir
from babel.messages.mofile import read_mo, write_mo
from babel.messages.pofile import read_po

ROOT = Path(__file__).resolve().parents[2]
TRANSLATIONS = ROOT / "nudge_app" / "translations"
LANGUAGES = ("fr", "de")


def _source_messages() -> set[str]:
    """Every translatable text in the participant code and templates, extracted afresh."""
    method_map = [
        ("nudge_app/participant/**.py", "python"),
        ("nudge_app/participant/templates/**.html", "jinja2"),
        ("nudge_app/templates/error.html", "jinja2"),
    ]
    keywords = {"_": None, "gettext": None, "_l": None, "lazy_gettext": None}
    found = set()
    for _file, _line, message, _comments, _context in extract_from_dir(
        str(ROOT), method_map, keywords=keywords
    ):
        found.add(message if isinstance(message, str) else message[0])
    return found


def test_ui_languages_match_the_catalogs():
    from nudge_app.participant import LANGUAGES as ui

    assert set(ui) == {"en", *LANGUAGES}


@pytest.mark.parametrize("lang", LANGUAGES)
def test_every_text_is_translated_and_the_mo_is_current(lang):
    po_path = TRANSLATIONS / lang / "LC_MESSAGES" / "messages.po"
    with po_path.open("rb") as f:
        catalog = read_po(f)
    translated = {m.id: m.string for m in catalog if m.id}
    missing = sorted(m for m in _source_messages() if not translated.get(m))
    assert not missing, (
        f"{lang}: untranslated (run pybabel, see translations/README.md): {missing[:5]}"
    )
    for msgid, text in translated.items():
        # Placeholders survive translation.
        for name in ("%(council)s", "%(activity)s", "%(campaign)s", "%(date)s", "%(code)s"):
            assert (name in msgid) == (name in text), f"{lang}: {name} in {msgid!r}"
    buffer = BytesIO()
    write_mo(buffer, catalog)
    buffer.seek(0)
    expected = {m.id: m.string for m in read_mo(buffer) if m.id}
    with (po_path.with_suffix(".mo")).open("rb") as f:
        compiled = {m.id: m.string for m in read_mo(f) if m.id}
    assert compiled == expected, f"{lang}: messages.mo is stale: run pybabel compile"
