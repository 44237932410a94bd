"""UK postcodes where a council's list has them (issue 19, "postcodes validated where
collected"): checked and stored as `SW1A 1AA` however typed, bad ones refused with the
row named and nothing written, exported and re-imported as they are, erased with the
other personal details.

The expected forms are written out by hand from the postcode format (outward code, a
space, a digit and two letters), not produced by the code under test.
"""

from __future__ import annotations

import pytest
from participant_lists import export_participants, upload_participants
from sqlalchemy import func, select

from nudge_app.models import Participant
from nudge_app.postcodes import PostcodeProblem, normalise_postcode
from nudge_app.services.participants_import import ImportRejected, import_csv, template_csv


@pytest.mark.parametrize(
    ("typed", "stored"),
    [
        ("sw1a1aa", "SW1A 1AA"),  # AANA NAA
        ("SW1A 1AA", "SW1A 1AA"),
        (" sw1a  1aa ", "SW1A 1AA"),
        ("m1 1ae", "M1 1AE"),  # AN NAA
        ("B338TH", "B33 8TH"),  # ANN NAA
        ("cr2 6xh", "CR2 6XH"),  # AAN NAA
        ("DN55 1PT", "DN55 1PT"),  # AANN NAA
        ("w1a0ax", "W1A 0AX"),  # ANA NAA
        ("EC1A 1BB", "EC1A 1BB"),
        ("cf10 1ep", "CF10 1EP"),  # Cardiff
        ("gir 0aa", "GIR 0AA"),
    ],
)
def test_postcodes_as_typed_are_stored_in_one_form(typed, stored):
    assert normalise_postcode(typed) == stored


@pytest.mark.parametrize(
    ("typed", "reason"),
    [
        ("", "is empty"),
        ("SW1A", "4 letters and digits"),
        ("SW1A 1AAA", "8 letters and digits"),
        ("12345", "not a UK postcode: expected"),
        ("QW1 1AA", "not a UK postcode"),  # Q never starts a postcode
        ("SW1A 1CA", "not a UK postcode"),  # C never in the inward code
        ("SW1A-1AA", "not a UK postcode"),
        ("75008", "not a UK postcode"),  # a French code postal
    ],
)
def test_what_is_not_a_postcode_is_refused_with_the_reason(typed, reason):
    with pytest.raises(PostcodeProblem, match=reason):
        normalise_postcode(typed)


HEADER = "external_ref,first_name,email,postcode,age\n"


def _postcodes(db_session, campaign) -> dict[str, str | None]:
    return dict(
        db_session.execute(
            select(Participant.external_ref, Participant.postcode).where(
                Participant.campaign_id == campaign.id
            )
        ).all()
    )


def test_a_bad_postcode_names_its_row_and_nothing_is_written(council, make_campaign, db_session):
    campaign = make_campaign(council)
    rows = (
        "R1,Ann,ann@example.org,sw1a1aa,30\n"
        "R2,Bob,bob@example.org,SW1A 1CA,31\n"
        "R3,Cat,cat@example.org,,32\n"
        "R4,Dan,dan@example.org,not known,33\n"
    )
    with pytest.raises(ImportRejected) as caught:
        import_csv(campaign, HEADER + rows)
    problems = [(p.row, p.column) for p in caught.value.problems]
    assert problems == [(3, "postcode"), (5, "postcode")]
    assert "row 3, postcode: is not a UK postcode" in str(caught.value)
    db_session.rollback()
    count = select(func.count(Participant.id)).where(Participant.campaign_id == campaign.id)
    assert db_session.scalar(count) == 0


def test_postcodes_import_export_and_import_again(council, make_campaign, signed_in, db_session):
    first = make_campaign(council)
    rows = (
        "R1,Ann,ann@example.org,sw1a1aa,30\n"
        "R2,Bob,bob@example.org, m1  1ae ,31\n"
        "R3,Cat,cat@example.org,,32\n"
    )
    assert import_csv(first, HEADER + rows, actor="test").imported == 3
    db_session.commit()
    assert _postcodes(db_session, first) == {"R1": "SW1A 1AA", "R2": "M1 1AE", "R3": None}

    client, _, _ = signed_in(council, "designer")
    export, table = export_participants(client, first)
    assert [r["postcode"] for r in table] == ["SW1A 1AA", "M1 1AE", ""]

    second = make_campaign(council)
    assert import_csv(second, export, actor="test").imported == 3
    db_session.commit()
    assert _postcodes(db_session, second) == _postcodes(db_session, first)


def test_the_console_refuses_a_bad_postcode_with_a_4xx(council, make_campaign, signed_in):
    campaign = make_campaign(council)
    client, _, token = signed_in(council, "designer")

    bad = upload_participants(
        client, campaign, token, HEADER + "R1,Ann,ann@example.org,SW1A 1CA,30\n"
    )
    assert bad.status_code == 422
    page = bad.get_data(as_text=True)
    assert "postcode" in page and "is not a UK postcode" in page
    good = upload_participants(
        client, campaign, token, HEADER + "R1,Ann,ann@example.org,sw1a 1aa,30\n"
    )
    assert good.status_code == 302


def test_the_template_offers_a_postcode_and_erasure_blanks_it(council, make_campaign, db_session):
    from nudge_app.services import enrolment

    header, example = template_csv().splitlines()
    assert "postcode" in header.split(",")
    campaign = make_campaign(council)
    assert import_csv(campaign, template_csv()).imported == 1  # the example row imports
    db_session.commit()
    person = db_session.scalars(
        select(Participant).where(Participant.campaign_id == campaign.id)
    ).one()
    assert person.postcode == "SW1A 1AA"
    enrolment.erase(person)
    db_session.commit()
    db_session.expire_all()
    assert db_session.get(Participant, person.id).postcode is None
