"""The campaign editor's "Peer mentoring" section writes the design file's `[mentoring]`
table: on or off, whom to offer the role (rules checked by the eligibility grammar and
the baseline registry), invitations per mentor, days a link works, the mentor consent
text and introductions. Every problem is shown beside its field with what was typed
kept, and nothing is saved; a design saved unchanged keeps its hash; the campaign page
says the settings in words."""

from __future__ import annotations

import html
import re
from html.parser import HTMLParser

from editor_forms import settings_form

from experiments.design import load_design, parse_design

MENTORING = {
    "mentoring": "yes",
    "mentor_offer_to": "self_efficacy >= 4\r\nage >= 18",
    "mentor_invite_limit": "5",
    "mentor_link_days": "30",
    "mentor_consent_text": "I will invite neighbours I know.\r\nI can stop at any time.",
    "mentor_introductions": "2",
}


class _FormValues(HTMLParser):
    """What a browser would post from the page's settings form, as it stands."""

    def __init__(self) -> None:
        super().__init__()
        self.values: list[tuple[str, str]] = []
        self._in_form = self._done = False
        self._select: str | None = None
        self._textarea: str | None = None
        self._text: list[str] = []

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "form" and (a.get("action") or "").endswith("/edit") and not self._done:
            self._in_form = True
        if not self._in_form:
            return
        name = a.get("name")
        if tag == "input" and name:
            kind = a.get("type", "text")
            if kind in ("checkbox", "radio") and "checked" not in a:
                return
            self.values.append((name, a.get("value", "")))
        elif tag == "select":
            self._select = name
        elif tag == "option" and self._select and "selected" in a:
            self.values.append((self._select, a.get("value", "")))
        elif tag == "textarea":
            self._textarea, self._text = name, []

    def handle_data(self, data):
        if self._textarea:
            self._text.append(data)

    def handle_endtag(self, tag):
        if tag == "form" and self._in_form:
            self._in_form, self._done = False, True
        elif tag == "select":
            self._select = None
        elif tag == "textarea" and self._textarea:
            text = "".join(self._text)
            # A browser drops the one newline that follows <textarea>.
            text = text[2:] if text.startswith("\r\n") else text.removeprefix("\n")
            self.values.append((self._textarea, text))
            self._textarea = None


def form_as_shown(page: str) -> dict[str, str | list[str]]:
    parser = _FormValues()
    parser.feed(page)
    out: dict[str, str | list[str]] = {}
    for name, value in parser.values:
        value = html.unescape(value)
        if name in out:
            before = out[name]
            out[name] = [*before, value] if isinstance(before, list) else [before, value]
        else:
            out[name] = value
    return out


def _peer_mentoring(make_campaign, council, catalog_path, **mentoring):
    design = load_design(str(catalog_path("peer-mentoring")))
    for key, value in mentoring.items():
        setattr(design.mentoring, key, value)
    return make_campaign(council, design), design


def _design(client, slug: str):
    return parse_design(client.get(f"/campaigns/{slug}/design.toml").get_data(as_text=True))


def test_the_editor_writes_the_mentoring_table_and_the_page_says_it(
    signed_in, council, make_campaign
):
    campaign = make_campaign(council)  # the self-efficacy clean-up: no mentoring
    client, _, token = signed_in(council, "designer")
    page = client.get(f"/campaigns/{campaign.slug}/edit").get_data(as_text=True)
    assert "Peer mentoring" in page and 'id="mentor_offer_to"' in page
    assert "self_efficacy (" in page  # the variables a rule may name, as a hint
    assert "country (" not in page  # survey-first: only what the baseline page asks
    shown = form_as_shown(page)
    assert shown["mentoring"] == "no" and shown["mentor_invite_limit"] == "10"
    assert "No mentor role is offered" in client.get(f"/campaigns/{campaign.slug}").get_data(
        as_text=True
    )

    saved = client.post(f"/campaigns/{campaign.slug}/edit", data=settings_form(token, **MENTORING))
    assert saved.status_code == 302, saved.get_data(as_text=True)
    m = _design(client, campaign.slug).mentoring
    assert m.offer_to == ["self_efficacy >= 4", "age >= 18"]
    assert (m.invite_limit, m.link_days, m.introductions) == (5, 30, 2)
    assert m.consent_text == "I will invite neighbours I know.\nI can stop at any time."

    summary = client.get(f"/campaigns/{campaign.slug}").get_data(as_text=True)
    words = " ".join(html.unescape(summary).split())
    assert "Participants who meet every rule <code>self_efficacy >= 4</code>, " in words
    assert "enrols up to 5 residents and works for 30 days after the mentor agrees" in words
    assert "introduces each mentor to up to 2 neighbours on the list by message" in words
    assert "the campaign's own consent text: <q>I will invite neighbours I know." in words

    # No introductions: 0 (or empty) leaves the key out; one rule reads "the rule".
    saved = client.post(
        f"/campaigns/{campaign.slug}/edit",
        data=settings_form(
            token,
            **{
                **MENTORING,
                "mentor_offer_to": "self_efficacy >= 4",
                "mentor_introductions": "0",
                "mentor_consent_text": "",
            },
        ),
    )
    assert saved.status_code == 302
    text = client.get(f"/campaigns/{campaign.slug}/design.toml").get_data(as_text=True)
    assert "[mentoring]" in text and "introductions" not in text
    words = " ".join(client.get(f"/campaigns/{campaign.slug}").get_data(as_text=True).split())
    assert "meet the rule <code>self_efficacy &gt;= 4</code> are offered" in words
    assert "The platform sends no introductions for mentors." in words
    assert "Mentors agree to the standard consent text." in words

    # Off removes the table, whatever the other fields hold.
    off = client.post(
        f"/campaigns/{campaign.slug}/edit",
        data=settings_form(token, **{**MENTORING, "mentoring": "no", "mentor_invite_limit": "0"}),
    )
    assert off.status_code == 302
    said = client.get(f"/campaigns/{campaign.slug}").get_data(as_text=True)
    assert "Peer mentoring is off: participants are no longer offered the mentor role." in said
    text = client.get(f"/campaigns/{campaign.slug}/design.toml").get_data(as_text=True)
    assert "mentoring" not in text
    assert _design(client, campaign.slug).mentoring is None

    # Rules typed while the role is off are not saved, and the officer is told so.
    off = client.post(
        f"/campaigns/{campaign.slug}/edit",
        data=settings_form(token, **{**MENTORING, "mentoring": "no"}),
    )
    assert off.status_code == 302
    said = html.unescape(client.get(f"/campaigns/{campaign.slug}").get_data(as_text=True))
    assert "Peer mentoring is off, so the rules typed under it were not saved" in said
    assert _design(client, campaign.slug).mentoring is None


def test_saved_unchanged_a_mentoring_design_keeps_its_hash(
    signed_in, council, make_campaign, catalog_path, db_session
):
    """Post back exactly what the editor shows: the design (and its file) is unchanged,
    for a table without introductions, with introductions = 0 and with 3 and a consent
    text over several lines."""
    from nudge_app.services.campaigns import design_of

    client, _, _ = signed_in(council, "designer")
    for changes in (
        {},
        {"introductions": 0},
        {"introductions": 3, "consent_text": "I agree.\n\nI can stop  at any time.\n"},
    ):
        campaign, _ = _peer_mentoring(make_campaign, council, catalog_path, **changes)
        before = design_of(campaign)
        file_before = client.get(f"/campaigns/{campaign.slug}/design.toml").get_data()
        page = client.get(f"/campaigns/{campaign.slug}/edit").get_data(as_text=True)
        shown = form_as_shown(page)
        assert shown["mentoring"] == "yes", changes
        saved = client.post(f"/campaigns/{campaign.slug}/edit", data=shown)
        assert saved.status_code == 302, saved.get_data(as_text=True)
        db_session.expire_all()
        after = design_of(campaign)
        assert after.design_hash() == before.design_hash(), changes
        assert after.mentoring == before.mentoring
        assert client.get(f"/campaigns/{campaign.slug}/design.toml").get_data() == file_before
        assert parse_design(file_before.decode()).design_hash() == before.design_hash()


def test_every_mentoring_problem_beside_its_field_values_kept_nothing_saved(
    signed_in, council, make_campaign, catalog_path, console
):
    campaign, design = _peer_mentoring(make_campaign, council, catalog_path)
    client, _, token = signed_in(council, "designer")
    shown = form_as_shown(client.get(f"/campaigns/{campaign.slug}/edit").get_data(as_text=True))
    file_before = client.get(f"/campaigns/{campaign.slug}/design.toml").get_data()
    typed = {
        "mentor_offer_to": "self_efficacy >= 4\r\nkindness >= 3",
        "mentor_invite_limit": "0",
        "mentor_link_days": "soon",
        "mentor_introductions": "101",
        "mentor_consent_text": "x" * 5001,
        "minimum_spillover": "0.04",  # a good change elsewhere: not saved either
    }
    refused = client.post(
        f"/campaigns/{campaign.slug}/edit", data={**shown, "csrf_token": token, **typed}
    )
    assert refused.status_code == 422
    page = refused.get_data(as_text=True)
    assert "nothing was saved" in page
    expected = {
        "mentor_offer_to": "unknown baseline variable 'kindness'",
        "mentor_invite_limit": "must be at least 1",
        "mentor_link_days": "must be a finite number",
        "mentor_introductions": "must be at most 100",
        "mentor_consent_text": "must be at most 5000 characters",
    }
    for field, message in expected.items():
        beside = console.errors(page, field)
        assert any(message in e for e in beside), (field, beside)
        element = re.search(rf'<(?:input|textarea)[^>]*\bid="{field}"[^>]*>', page)
        assert element and 'aria-invalid="true"' in element.group(0), field
    kept = form_as_shown(page)
    for field, value in typed.items():
        assert kept[field] == value.replace("\r\n", "\n") or kept[field] == value, field
    assert kept["mentoring"] == "yes"
    assert client.get(f"/campaigns/{campaign.slug}/design.toml").get_data() == file_before

    def rules_refused(rules: str) -> list[str]:
        """The messages beside the rule field after saving `rules` (refused: 422)."""
        refused = client.post(
            f"/campaigns/{campaign.slug}/edit",
            data={**shown, "csrf_token": token, "mentor_offer_to": rules},
        )
        assert refused.status_code == 422
        return console.errors(refused.get_data(as_text=True), "mentor_offer_to")

    # Switched on with no rule: the rule field says what to give.
    beside = rules_refused("  \r\n")
    assert any("give at least one rule" in e for e in beside), beside

    # A rule given twice is named by its line, not by a design path.
    beside = rules_refused("age >= 18\r\nage>=18")
    assert any("the same rule as rule 1 (listed twice)" in e for e in beside), beside
    assert not any("require[" in e or "offer_to[" in e for e in beside), beside


def test_a_launched_campaign_shows_mentoring_read_only_and_refuses_a_save(
    signed_in, council, make_campaign, catalog_path, db_session
):
    design = load_design(str(catalog_path("peer-mentoring")))
    campaign = make_campaign(council, design, status="running")
    client, _, token = signed_in(council, "designer")
    page = client.get(f"/campaigns/{campaign.slug}/edit").get_data(as_text=True)
    assert 'id="read-only"' in page
    assert '<fieldset class="plain" disabled>' in page
    assert page.index('<fieldset class="plain" disabled>') < page.index('id="mentor_offer_to"')
    assert "Save settings" not in page
    shown = form_as_shown(page)
    refused = client.post(
        f"/campaigns/{campaign.slug}/edit",
        data={**shown, "csrf_token": token, "mentoring": "no"},
    )
    assert refused.status_code == 302  # as every frozen field: back to the campaign, said why
    assert _design(client, campaign.slug).mentoring == design.mentoring
    assert "frozen" in client.get(f"/campaigns/{campaign.slug}").get_data(as_text=True)


def test_a_mentoring_save_needs_the_csrf_token(signed_in, council, make_campaign):
    campaign = make_campaign(council)
    client, _, _ = signed_in(council, "designer")
    refused = client.post(
        f"/campaigns/{campaign.slug}/edit", data=settings_form("forged", **MENTORING)
    )
    assert refused.status_code == 400
    assert _design(client, campaign.slug).mentoring is None


def test_a_mentoring_rule_on_a_variable_the_campaign_cannot_know_is_refused(
    signed_in, council, make_campaign, catalog_path, console
):
    """As for eligibility: a survey-first campaign never has `country` (only a list's
    import carries it), so a mentor rule on it could never be met; a list campaign can."""
    survey_first = make_campaign(council)
    client, _, token = signed_in(council, "designer")
    data = settings_form(token, **{**MENTORING, "mentor_offer_to": "country = GB"})
    refused = client.post(f"/campaigns/{survey_first.slug}/edit", data=data)
    assert refused.status_code == 422
    beside = console.errors(refused.get_data(as_text=True), "mentor_offer_to")
    assert any("country is not asked on the baseline page" in e for e in beside), beside
    assert _design(client, survey_first.slug).mentoring is None

    listed, _ = _peer_mentoring(make_campaign, council, catalog_path)
    page = client.get(f"/campaigns/{listed.slug}/edit").get_data(as_text=True)
    assert "country (" in page  # a list's import carries it
    shown = form_as_shown(page)
    saved = client.post(
        f"/campaigns/{listed.slug}/edit", data={**shown, "mentor_offer_to": "country = GB"}
    )
    assert saved.status_code == 302, saved.get_data(as_text=True)
    assert _design(client, listed.slug).mentoring.offer_to == ["country = GB"]
