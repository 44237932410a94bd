"""Text message costs as GOV.UK Notify counts them, checked against a count written here.

The reference below follows Notify's published pricing rules on its own (the GSM 03.38
table by code point, its extension table, 160/153 and 70/67 places), and fills the
placeholders itself: the console must never count a template before it is filled.
"""

from __future__ import annotations

import math
import re
from pathlib import Path

import pytest

from nudge_app.sms_fragments import sms_length

CATALOG = Path(__file__).resolve().parents[2] / "experiments" / "catalog"

# GSM 03.38 default alphabet, by code point (3GPP TS 23.038, table 6.2.1).
GSM_DEFAULT = {
    *range(0x20, 0x24), *range(0x25, 0x40), *range(0x41, 0x5B), *range(0x61, 0x7B),
    0x40, 0xA3, 0x24, 0xA5, 0xE8, 0xE9, 0xF9, 0xEC, 0xF2, 0xC7, 0x0A, 0xD8, 0xF8, 0x0D,
    0xC5, 0xE5, 0x394, 0x5F, 0x3A6, 0x393, 0x39B, 0x3A9, 0x3A0, 0x3A8, 0x3A3, 0x398, 0x39E,
    0xC6, 0xE6, 0xDF, 0xC9, 0xA4, 0xA1, 0xC4, 0xD6, 0xD1, 0xDC, 0xA7, 0xBF, 0xE4, 0xF6,
    0xF1, 0xFC, 0xE0,
}  # fmt: skip
GSM_EXTENSION = {0x5E, 0x7B, 0x7D, 0x5C, 0x5B, 0x7E, 0x5D, 0x7C, 0x20AC}
# Notify's published downgrades: typographic quotes and dashes, ellipsis.
DOWNGRADE = str.maketrans({"‘": "'", "’": "'", "“": '"', "”": '"', "–": "-", "—": "-"})


def reference_fragments(text: str) -> tuple[int, int]:
    """(places, fragments) of a filled-in SMS by Notify's published rules."""
    text = text.translate(DOWNGRADE).replace("…", "...")
    text = "\n".join(re.sub(r"\s+", " ", line).strip() for line in text.splitlines()).strip()
    points = [ord(c) for c in text]
    if all(p in GSM_DEFAULT or p in GSM_EXTENSION for p in points):
        places = len(points) + sum(p in GSM_EXTENSION for p in points)
        first, each = 160, 153
    else:
        places, first, each = len(points), 70, 67
    if places == 0:
        return 0, 0
    return places, 1 if places <= first else math.ceil(places / each)


def fill(template: str, values: dict) -> str:
    return re.sub(r"\{(\w+)\}", lambda m: str(values[m.group(1)]), template)


@pytest.mark.parametrize(
    ("text", "places", "fragments"),
    [
        ("a" * 160, 160, 1),
        ("a" * 161, 161, 2),
        ("a" * 306, 306, 2),
        ("a" * 307, 307, 3),
        ("a" * 159 + "€", 161, 2),  # the euro sign takes two places
        ("{" * 80, 160, 1),
        ("ŵ" * 70, 70, 1),  # Welsh w-circumflex is not GSM: Unicode
        ("ŵ" + "a" * 70, 71, 2),
        ("ŵ" + "a" * 133, 134, 2),
        ("ŵ" + "a" * 134, 135, 3),
        ("It’s “here” – come", 18, 1),  # typography downgraded, still GSM-7
        ("  two   spaces\t\tand tabs  ", 19, 1),
        ("", 0, 0),
    ],
)
def test_sms_length_follows_notify_rules(text, places, fragments):
    counted = sms_length(text)
    assert (counted.characters, counted.fragments) == (places, fragments)
    assert reference_fragments(text) == (places, fragments)


def test_encoding_named():
    assert sms_length("Hello").encoding == "GSM-7"
    assert sms_length("Croeso i’r ŵyl").encoding == "Unicode"
    assert sms_length("It’s fine").encoding == "GSM-7"


@pytest.mark.parametrize("design", sorted(p.stem for p in CATALOG.glob("*.toml")))
def test_catalog_fragments_equal_notify_count(app, council, make_campaign, design):
    """Every SMS of every catalog campaign, per arm and step, filled in as it is sent."""
    from nudge_app.console.message_costs import SAMPLE_FIRST_NAME, campaign_cost
    from nudge_app.services.outbox import NEUTRAL_INVITATION

    campaign = make_campaign(council, design)
    campaign.planned_sample_size = 1000
    link = app.config["BASE_URL"].rstrip("/") + "/p/" + "x" * 43  # a 256-bit token, base64
    cost = campaign_cost(campaign)
    assert cost.participants == 1000 and cost.basis == "planned"
    total = 0
    for arm, arm_cost in zip(campaign.arms, cost.arms, strict=True):
        values = {
            "first_name": SAMPLE_FIRST_NAME,
            "council": council.name,
            "campaign": campaign.name,
            "activity": campaign.activity_name,
            "activity_where": campaign.activity_where,
            "activity_when": campaign.activity_when,
            "neighbourhood": "Riverside",
            "framing": arm.framing,
            "link": link,
            "survey_link": link + "/follow-up",
            "opt_out_link": link + "/opt-out",
        }
        expected = []
        if arm.sms_template:
            own = reference_fragments(fill(arm.sms_template, values))
            assert (arm_cost.arm_sms.length.characters, arm_cost.arm_sms.length.fragments) == own
            if campaign.enrolment_mode == "list":
                expected.append(own)
        if campaign.enrolment_mode != "list":
            expected.append(reference_fragments(fill(NEUTRAL_INVITATION["sms"], values)))
        for step in campaign.follow_up_steps:
            if step.sms_template:
                expected.append(reference_fragments(fill(step.sms_template, values)))
        got = [(m.length.characters, m.length.fragments) for m in arm_cost.messages]
        assert got == expected, (design, arm.key)
        per_person = sum(f for _, f in expected)
        assert arm_cost.fragments_per_participant == per_person
        total += arm_cost.participants * per_person
    assert sum(a.participants for a in cost.arms) == 1000
    assert cost.fragments == total


def test_filled_message_costs_more_than_its_template(app, council, make_campaign):
    """The finding: "62 chars, 1 segment" for a template whose messages are 2 fragments."""
    from nudge_app.console.message_costs import campaign_cost

    campaign = make_campaign(council, "self-efficacy-cleanup")
    nudge = campaign_cost(campaign).arms[1].arm_sms
    template = campaign.arms[1].sms_template
    assert sms_length(template).fragments == 1
    assert nudge.length.characters > len(template) + 100
    assert nudge.length.fragments == 2


def test_campaign_page_shows_filled_costs_and_total(signed_in, council, make_campaign):
    campaign = make_campaign(council, "self-efficacy-cleanup")
    client, _, _ = signed_in(council, "designer")
    page = client.get(f"/campaigns/{campaign.slug}").get_data(as_text=True)
    assert "Text message costs" in page
    assert "2 fragments" in page  # each arm's nudge, filled in
    assert "Total for the campaign:" in page and "4,000 participants (planned)" in page
    preview = client.get(f"/campaigns/{campaign.slug}/preview").get_data(as_text=True)
    assert "as Notify counts this message" in preview
