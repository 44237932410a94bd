"""The participant pages' catalogs: the languages offered are exactly those with a
complete catalog, every text is translated, the compiled .mo files are current, and each
page says in `<html lang>` the language it is written in."""

from __future__ import annotations

import re
from io import BytesIO
from pathlib import Path

import pytest
from babel.messages.extract import extract_from_dir
from babel.messages.mofile import read_mo, write_mo
from babel.messages.pofile import read_po

from experiments import baseline
from experiments.languages import LANGUAGE_NAMES, LANGUAGES, SOURCE_LANGUAGE

ROOT = Path(__file__).resolve().parents[2]
TRANSLATIONS = ROOT / "nudge_app" / "translations"
TRANSLATED = tuple(lang for lang in LANGUAGES if lang != SOURCE_LANGUAGE)
PLACEHOLDER_RE = re.compile(r"%\(\w+\)s")


def _source_messages() -> set[str]:
    """Every translatable text in the participant code, templates and the baseline-variable
    declarations, extracted afresh (as babel.cfg says)."""
    method_map = [
        ("nudge_app/participant/**.py", "python"),
        ("nudge_app/participant/templates/**.html", "jinja2"),
        ("nudge_app/templates/error.html", "jinja2"),
        ("experiments/baseline.py", "python"),
    ]
    keywords = {"_": None, "gettext": None, "_l": None, "lazy_gettext": None, "N_": None}
    found = set()
    for _file, _line, message, _comments, _context in extract_from_dir(
        str(ROOT), method_map, keywords=keywords
    ):
        found.add(message if isinstance(message, str) else message[0])
    return found


def _catalog(lang: str) -> dict[str, str]:
    with (TRANSLATIONS / lang / "LC_MESSAGES" / "messages.po").open("rb") as f:
        return {m.id: m.string for m in read_po(f) if m.id}


def test_languages_offered_are_exactly_the_catalogs():
    from nudge_app.participant import LANGUAGES as ui

    catalogs = {p.parent.parent.name for p in TRANSLATIONS.glob("*/LC_MESSAGES/messages.po")}
    assert set(ui) == set(LANGUAGES) == {SOURCE_LANGUAGE, *catalogs}
    assert "cy" in ui, "Welsh councils must offer Welsh"
    from experiments.design import LANGUAGES as design_languages

    assert tuple(design_languages) == LANGUAGES


def test_the_extraction_sees_the_baseline_questions():
    # Guards the test below: a registered question missing from the extraction would
    # otherwise pass unnoticed.
    assert baseline.get("collective_coproduction").question in _source_messages()


@pytest.mark.parametrize("lang", TRANSLATED)
def test_every_text_is_translated_and_the_mo_is_current(lang):
    translated = _catalog(lang)
    shown = {t for v in baseline.variables() if v.survey for t in v.texts()}
    missing = sorted(m for m in _source_messages() | shown if not translated.get(m))
    assert not missing, (
        f"{lang}: untranslated (run pybabel, see translations/README.md): {missing[:5]}"
    )
    for msgid, text in translated.items():
        # Placeholders survive translation.
        assert set(PLACEHOLDER_RE.findall(msgid)) == set(PLACEHOLDER_RE.findall(text)), (
            f"{lang}: placeholders differ in {msgid!r}"
        )
    po_path = TRANSLATIONS / lang / "LC_MESSAGES" / "messages.po"
    with po_path.open("rb") as f:
        catalog = read_po(f)
    buffer = BytesIO()
    write_mo(buffer, catalog)
    buffer.seek(0)
    expected = {m.id: m.string for m in read_mo(buffer) if m.id}
    with (po_path.with_suffix(".mo")).open("rb") as f:
        compiled = {m.id: m.string for m in read_mo(f) if m.id}
    assert compiled == expected, f"{lang}: messages.mo is stale: run pybabel compile"


def _in(lang: str, text: str) -> str:
    return text if lang == SOURCE_LANGUAGE else _catalog(lang)[text]


@pytest.mark.parametrize("lang", LANGUAGES)
def test_each_page_is_in_its_language_and_says_so(
    lang, council, make_campaign, make_person, journey, client
):
    """The campaign's language picks the pages' language; `<html lang>` names it and the
    texts are that language's (a missing catalog would leave English under another lang)."""
    campaign = make_campaign(council, status="running", language=lang)
    _, token = make_person(campaign)
    consent = client.get(f"/p/{token}").get_data(as_text=True)
    assert f'<html lang="{lang}">' in consent
    assert _in(lang, "What we keep") in consent
    journey.consent(token)
    survey = client.get(f"/p/{token}").get_data(as_text=True)
    assert f'<html lang="{lang}">' in survey
    question = baseline.get("collective_coproduction").question
    assert _in(lang, question).replace("'", "&#39;") in survey
    missing = client.get(f"/p/no-such-token?lang={lang}").get_data(as_text=True)
    assert f'<html lang="{lang}">' in missing and _in(lang, "Page not found") in missing
    # The language switch names every language in itself.
    for code, name in LANGUAGE_NAMES.items():
        assert f'lang="{code}"' in survey and name in survey
