"""Issue 19's finding 7 repeated in headless Chromium, on a desktop and at 375 px.

- The console offers exactly the languages with a complete catalog (Danish and Czech were
  offered while only French and German existed), each named in itself.
- A campaign's participant pages are in the campaign's language and say so in
  `<html lang>` (a Danish campaign's pages rendered in English); the language switch
  changes both.
- The settings page offers as moderators only what the campaign can have data for: a
  list that never carried `country` is not offered `country`; one that did, is.

Every page visited passes axe (no serious or critical violation) and fits the viewport.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from babel.messages.pofile import read_po
from console_browser import HAVE_CHROMIUM, check_page

from experiments.languages import LANGUAGE_NAMES, LANGUAGES, SOURCE_LANGUAGE

pytestmark = [
    pytest.mark.browser,
    pytest.mark.slow,
    pytest.mark.skipif(not HAVE_CHROMIUM, reason="needs Debian's chromium at /usr/bin/chromium"),
]

TRANSLATIONS = Path(__file__).resolve().parents[2] / "nudge_app" / "translations"
# The consent page's own heading for what is kept: in every catalog (test_translations).
KEPT = "What we keep"


def catalogs() -> set[str]:
    """The languages with a catalog on disk, and English, the source."""
    found = {p.parent.parent.name for p in TRANSLATIONS.glob("*/LC_MESSAGES/messages.po")}
    return {SOURCE_LANGUAGE, *found}


def in_language(lang: str, text: str) -> str:
    if lang == SOURCE_LANGUAGE:
        return text
    with (TRANSLATIONS / lang / "LC_MESSAGES" / "messages.po").open("rb") as f:
        translated = {m.id: m.string for m in read_po(f) if m.id}
    assert translated.get(text), f"{lang}: no translation of {text!r}"
    return translated[text]


def test_the_languages_offered_are_those_with_a_catalog(officer, axe, council, make_campaign):
    campaign = make_campaign(council)
    page = officer()
    page.goto(f"{page.base}/campaigns/{campaign.slug}/edit")  # where a language is chosen
    options = page.locator("#language option")
    codes = options.evaluate_all("os => os.map(o => o.value)")
    names = options.all_inner_texts()
    langs = options.evaluate_all("os => os.map(o => o.lang)")
    assert langs == codes  # each name read out in its own language
    assert set(codes) == catalogs() == set(LANGUAGES), codes
    assert len(codes) == len(set(codes))
    assert "cy" in codes, "Welsh councils must offer Welsh"
    for code, text in zip(codes, names, strict=True):
        assert LANGUAGE_NAMES[code] in text, f"{code} shown as {text!r}"
    check_page(page, axe, "languages-settings", folder="console-languages")


def test_each_campaigns_pages_are_in_its_language(officer, axe, council, make_campaign, db_session):
    from playwright.sync_api import expect

    from nudge_app.services import enrolment

    tokens = {}
    for n, lang in enumerate(LANGUAGES):
        campaign = make_campaign(council, status="running", language=lang)
        person = enrolment.new_participant(
            campaign, first_name="Ann", email=f"ann.{lang}.{n}@example.org"
        )
        db_session.commit()
        tokens[lang] = enrolment.token_of(person)
    page = officer()  # the server, at this viewport's size
    for lang, token in tokens.items():
        page.goto(f"{page.base}/p/{token}")
        assert page.evaluate("document.documentElement.lang") == lang
        expect(page.locator("main")).to_contain_text(in_language(lang, KEPT))
        if lang != SOURCE_LANGUAGE:
            expect(page.locator("main")).not_to_contain_text(KEPT)  # not English under it
        current = page.locator(".languages [aria-current=true]")
        expect(current).to_have_text(LANGUAGE_NAMES[lang])
        expect(current).to_have_attribute("lang", lang)
        check_page(page, axe, f"participant-{lang}", folder="console-languages")

    # The switch: a Danish campaign's page read in Welsh says so, and is in Welsh.
    page.goto(f"{page.base}/p/{tokens['da']}")
    page.click(".languages a[hreflang=cy]")
    assert page.evaluate("document.documentElement.lang") == "cy"
    expect(page.locator("main")).to_contain_text(in_language("cy", KEPT))
    check_page(page, axe, "participant-da-read-in-cy", folder="console-languages")


def test_moderators_are_offered_only_for_what_the_list_carries(
    officer, axe, council, make_campaign
):
    from playwright.sync_api import expect

    from nudge_app.services.participants_import import import_csv

    without = make_campaign(council, "council-consultation")
    import_csv(without, "external_ref,first_name,email,age\nR1,Ann,ann@example.org,40\n")
    carried = make_campaign(council, "council-consultation", name="With countries")
    import_csv(carried, "external_ref,first_name,email,country\nR1,Bo,bo@example.org,DK\n")
    page = officer()

    page.goto(f"{page.base}/campaigns/{without.slug}/edit")
    expect(page.locator("#moderators input[value=age]")).to_have_count(1)  # asked of all
    expect(page.locator("#moderators input[value=country]")).to_have_count(0)
    expect(page.locator("#covariates input[value=country]")).to_have_count(0)
    expect(page.locator("#stratum_0_moderator option[value=country]")).to_have_count(0)
    check_page(page, axe, "moderators-without-country", folder="console-languages")

    page.goto(f"{page.base}/campaigns/{carried.slug}/edit")
    expect(page.locator("#moderators input[value=country]")).to_have_count(1)
    expect(page.locator("#stratum_0_moderator option[value=country]")).to_have_count(1)
    check_page(page, axe, "moderators-with-country", folder="console-languages")
