"""UK phone numbers as officers type them: normalised to E.164, exports re-importable.

The expected E.164 forms are written out by hand from the numbering plan (a UK mobile is
07 and nine digits; +44 replaces the leading 0), not produced by the code under test.
"""

from __future__ import annotations

import pytest
from participant_lists import export_participants, upload_participants
from sqlalchemy import select

from experiments.csv_cells import is_formula
from nudge_app.models import Participant
from nudge_app.phones import PhoneProblem, lookup_form, normalise_phone
from nudge_app.services.participants_import import import_csv


@pytest.mark.parametrize(
    ("typed", "stored"),
    [
        ("07700 900123", "+447700900123"),
        ("07700900123", "+447700900123"),
        ("(07700) 900-123", "+447700900123"),
        ("+44 7700 900123", "+447700900123"),
        ("+44 (0)7700 900123", "+447700900123"),
        ("0044 7700 900123", "+447700900123"),
        ("+447700900123", "+447700900123"),
        (" 07911 123456 ", "+447911123456"),
        ("+33 6 12 34 56 78", "+33612345678"),
        ("+1 202 555 0143", "+12025550143"),
    ],
)
def test_national_and_international_forms_become_e164(typed, stored):
    assert normalise_phone(typed) == stored
    assert lookup_form(typed) == stored


@pytest.mark.parametrize(
    ("typed", "reason"),
    [
        ("020 7946 0000", "landline"),
        ("0800 123 4567", "landline or service"),
        ("07700 90012", "not a UK mobile"),
        ("07700 9001234", "not a UK mobile"),
        ("12345", "not a UK mobile"),
        ("phone me", "not a phone number"),
        ("+999 1234", "not a phone number"),
        ("+33 1 23 45 67 89", "landline"),
        ("+1 202 555", r"not a valid number for country code \+1"),
        ("", "empty"),
    ],
)
def test_numbers_a_text_cannot_reach_are_refused_with_the_reason(typed, reason):
    with pytest.raises(PhoneProblem, match=reason):
        normalise_phone(typed)


HEADER = "external_ref,first_name,email,phone,age,gender,se_safety,se_environment,se_health\n"
TYPED = ["07700 900123", "+44 7700 900124", "0044 7700 900125", "(07700) 900-126", ""]


def test_import_export_import_round_trip(app, council, make_campaign, signed_in, db_session):
    """National numbers import; the export writes E.164 without a leading apostrophe;
    the export file, as it is, imports into another campaign with the same details."""
    first = make_campaign(council)
    rows = "".join(
        f"R{i},Ann{i},{'' if i == 3 else f'ann{i}@example.org'},{phone},{30 + i},woman,2,3,4\n"
        for i, phone in enumerate(TYPED)
    )
    result = import_csv(first, HEADER + rows, actor="test")
    db_session.commit()
    assert result.imported == 5
    stored = dict(
        db_session.execute(
            select(Participant.external_ref, Participant.phone).where(
                Participant.campaign_id == first.id
            )
        ).all()
    )
    assert stored == {
        "R0": "+447700900123",
        "R1": "+447700900124",
        "R2": "+447700900125",
        "R3": "+447700900126",
        "R4": None,
    }

    client, _, _ = signed_in(council, "designer")
    export, table = export_participants(client, first)
    assert [r["phone"] for r in table] == [
        "+447700900123",
        "+447700900124",
        "+447700900125",
        "+447700900126",
        "",
    ]
    assert not any(c.startswith("'") for r in table for c in r.values())
    assert not any(is_formula(c) for r in table for c in r.values())

    second = make_campaign(council)
    again = import_csv(second, export, actor="test")
    db_session.commit()
    assert again.imported == 5
    assert set(again.read_past) >= {"participant_id", "arm", "consent_status", "self_efficacy"}
    fields = ("external_ref", "first_name", "email", "phone", "age", "gender", "self_efficacy")

    def people(campaign):
        return [
            tuple(getattr(p, f) for f in fields)
            for p in db_session.scalars(
                select(Participant)
                .where(Participant.campaign_id == campaign.id)
                .order_by(Participant.external_ref)
            )
        ]

    assert people(second) == people(first)


def test_console_import_of_national_numbers_and_a_bad_one(council, make_campaign, signed_in):
    campaign = make_campaign(council)
    client, _, token = signed_in(council, "designer")

    bad = upload_participants(
        client, campaign, token, HEADER + "R1,Ann,,020 7946 0000,30,woman,2,3,4\n"
    )
    assert bad.status_code == 422
    page = bad.get_data(as_text=True)
    assert "landline" in page and "phone" in page
    good = upload_participants(
        client, campaign, token, HEADER + "R1,Ann,,07700 900123,30,woman,2,3,4\n"
    )
    assert good.status_code == 302
    assert "Imported 1 participant" in client.get(good.headers["Location"]).get_data(as_text=True)


def test_suppression_matches_a_number_in_any_form(council, make_campaign, db_session):
    """A person who opted out with +44... is not reached again when listed as 07700 ..."""
    from nudge_app.services import suppression

    suppression.suppress_many(council, [(None, "+447700900123")], "opt-out")
    db_session.commit()
    assert suppression.is_suppressed(council, None, "07700 900123")
    campaign = make_campaign(council)
    result = import_csv(campaign, HEADER + "R1,Ann,,07700 900123,30,woman,2,3,4\n")
    assert result.imported == 0 and result.suppressed == 1
