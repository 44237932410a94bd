"""Participant CSV import: all rows checked first; one bad row imports nothing and is named."""

from __future__ import annotations

import csv
import io

import pytest
from sqlalchemy import func, select

from nudge_app.cli import main
from nudge_app.models import AuditEntry, Participant
from nudge_app.security import participant_token, sha256_hex
from nudge_app.services.participants_import import (
    ImportNotAllowed,
    ImportRejected,
    import_csv,
)

HEADER = "external_ref,first_name,email,phone,age,gender,se_safety,se_environment,se_health\n"


def good_rows(n: int, start: int = 0) -> str:
    return "".join(
        f"R{i},Ann{i},ann{i}@example.org,+4477009{i:05d},{20 + i % 60},woman,2,3,4\n"
        for i in range(start, start + n)
    )


def count(db_session, campaign) -> int:
    return db_session.scalar(
        select(func.count(Participant.id)).where(Participant.campaign_id == campaign.id)
    )


def test_good_file_imports_every_row_with_hashed_link_and_mean_self_efficacy(
    app, council, make_campaign, db_session
):
    campaign = make_campaign(council)
    result = import_csv(campaign, (HEADER + good_rows(50)).encode(), actor="test")
    db_session.commit()
    assert result.imported == 50 == count(db_session, campaign)
    p = db_session.scalar(select(Participant).where(Participant.external_ref == "R7"))
    assert p.first_name == "Ann7" and p.email == "ann7@example.org" and p.age == 27
    assert p.phone == "+447700900007"
    assert p.self_efficacy == pytest.approx(3.0) and (p.se_safety, p.se_health) == (2, 4)
    token = participant_token(app.config["SECRET_KEY"], p.access_nonce)
    assert p.access_token_hash == sha256_hex(token)
    assert p.consent_status == "pending" and p.assignment is None
    entry = db_session.scalar(select(AuditEntry).where(AuditEntry.action == "participants.import"))
    assert entry.after["imported"] == 50


def test_one_bad_row_imports_nothing_and_names_row_and_column(council, make_campaign, db_session):
    campaign = make_campaign(council)
    rows = good_rows(30).splitlines(keepends=True)
    rows[11] = "R11,Bob,not-an-email,,40,man,1,1,1\n"  # spreadsheet row 13
    with pytest.raises(ImportRejected) as info:
        import_csv(campaign, HEADER + "".join(rows))
    db_session.rollback()
    assert count(db_session, campaign) == 0
    problems = info.value.problems
    assert [(p.row, p.column) for p in problems] == [(13, "email")]
    report = list(csv.reader(io.StringIO(info.value.report_csv())))
    assert report[0] == ["row", "column", "external_ref", "problem"]
    assert report[1][:3] == ["13", "email", "R11"]
    assert "row 13, email" in str(info.value)


@pytest.mark.parametrize(
    ("row", "column", "fragment"),
    [
        ("R1,Ann,a@example.org,020 7946 0000,30,,,,", "phone", "landline"),
        ("R1,Ann,a@example.org,12345,30,,,,", "phone", "not a UK mobile"),
        ("R1,Ann,a@example.org,+33 1 23 45 67 89,30,,,,", "phone", "landline"),
        ("R1,Ann,a@example.org,+999 1234,30,,,,", "phone", "not a phone number"),
        ("R1,Ann,a@example.org,=07700900123,30,,,,", "phone", "formula"),
        ("R1,Ann,a@example.org,-7700900123,30,,,,", "phone", "formula"),
        ("R1,Ann,a@@example,+447700900123,30,,,,", "email", "valid email"),
        ("R1,Ann,a@example.org,,7,,,,", "age", "impossible"),
        ("R1,Ann,a@example.org,,130,,,,", "age", "impossible"),
        ("R1,Ann,a@example.org,,thirty,,,,", "age", "whole number"),
        ('R1,=HYPERLINK("x"),a@example.org,,30,,,,', "first_name", "formula"),
        ("R1,Ann,a@example.org,,30,@SUM(A1),,,", "gender", "formula"),
        ("R1,+Ann,a@example.org,,30,,,,", "first_name", "formula"),
        ("R1,-Ann,a@example.org,,30,,,,", "first_name", "formula"),
        ("R1,Ann,a@example.org,,30,,6,3,3", "se_safety", "from 1 to 5"),
        (",Ann,a@example.org,,30,,,,", "external_ref", "required"),
        ("R1,Ann,,,30,,,,", "email", "email address"),
    ],
)
def test_each_kind_of_bad_cell_is_named(council, make_campaign, db_session, row, column, fragment):
    campaign = make_campaign(council)
    with pytest.raises(ImportRejected) as info:
        import_csv(campaign, HEADER + good_rows(3, start=10) + row + "\n")
    db_session.rollback()
    assert count(db_session, campaign) == 0
    hits = [p for p in info.value.problems if p.row == 5 and p.column == column]
    assert hits, info.value.problems
    assert fragment in hits[0].message


def test_duplicates_in_file_and_in_campaign(council, make_campaign, db_session):
    campaign = make_campaign(council)
    import_csv(campaign, HEADER + good_rows(3))
    db_session.commit()
    with pytest.raises(ImportRejected) as info:
        import_csv(campaign, HEADER + good_rows(2, start=5) + good_rows(1, start=5) + good_rows(1))
    db_session.rollback()
    messages = {(p.row, p.column): p.message for p in info.value.problems}
    assert "also on row 2" in messages[(4, "external_ref")]
    assert "already imported" in messages[(5, "external_ref")]
    assert count(db_session, campaign) == 3


def test_header_problems_and_limits(app, council, make_campaign, db_session):
    campaign = make_campaign(council)
    with pytest.raises(ImportRejected) as info:
        import_csv(campaign, "external_ref,email,shoe_size\nR1,a@example.org,9\n")
    columns = {p.column for p in info.value.problems}
    assert {"first_name", "shoe_size"} <= columns
    with pytest.raises(ImportRejected, match="empty"):
        import_csv(campaign, b"")
    with pytest.raises(ImportRejected, match="UTF-8"):
        import_csv(
            campaign, HEADER.encode() + "R1,Zo\u00eb,z@example.org,,,,,,\n".encode("latin-1")
        )
    app.config["IMPORT_MAX_ROWS"] = 5
    with pytest.raises(ImportRejected, match="more than 5 rows"):
        import_csv(campaign, HEADER + good_rows(6))
    app.config["IMPORT_MAX_BYTES"] = 100
    with pytest.raises(ImportRejected, match="limit is"):
        import_csv(campaign, HEADER + good_rows(6))
    db_session.rollback()
    assert count(db_session, campaign) == 0


def test_excel_bom_and_birth_year(council, make_campaign, db_session):
    campaign = make_campaign(council)
    data = "\ufeffexternal_ref,first_name,email,birth_year\nR1,Ann,a@Example.ORG,1980\n"
    import_csv(campaign, data.encode("utf-8"))
    db_session.commit()
    p = db_session.scalar(select(Participant).where(Participant.campaign_id == campaign.id))
    assert p.email == "a@example.org" and p.birth_year == 1980 and p.age is not None


def test_closed_campaign_refuses_import(council, make_campaign, db_session):
    campaign = make_campaign(council, status="closed")
    with pytest.raises(ImportNotAllowed):
        import_csv(campaign, HEADER + good_rows(1))


def test_cli_import_and_links(runner, council, make_campaign, db_session, tmp_path, monkeypatch):
    monkeypatch.setenv("NUDGE_BASE_URL", "https://nudge.example.gov")
    campaign = make_campaign(council)
    slug = campaign.slug
    good = tmp_path / "good.csv"
    good.write_text(HEADER + good_rows(5))
    bad = tmp_path / "bad.csv"
    bad.write_text(HEADER + good_rows(2) + "R9,Ann,a@example.org,,200,,,,\n")
    report = tmp_path / "errors.csv"
    db_session.commit()
    rejected = runner.invoke(
        main, ["participants", "import", slug, str(bad), "--errors", str(report)]
    )
    assert rejected.exit_code != 0
    assert "row 4, age" in rejected.output and "Traceback" not in rejected.output
    assert "4,age,R9" in report.read_text()
    ok = runner.invoke(main, ["participants", "import", slug, str(good)])
    assert ok.exit_code == 0, ok.output
    assert "imported 5" in ok.output
    out = tmp_path / "links.csv"
    links = runner.invoke(main, ["participants", "links", slug, "--out", str(out)])
    assert links.exit_code == 0, links.output
    rows = list(csv.DictReader(io.StringIO(out.read_text())))
    assert [r["external_ref"] for r in rows] == [f"R{i}" for i in range(5)]
    db_session.expire_all()
    p = db_session.scalar(select(Participant).where(Participant.external_ref == "R0"))
    token = rows[0]["url"].rsplit("/p/", 1)[1]
    assert rows[0]["url"].startswith("https://nudge.example.gov/p/")
    assert sha256_hex(token) == p.access_token_hash
    db_session.commit()


def test_fast_token_hash_equals_the_security_module(app):
    from nudge_app.security import new_nonce
    from nudge_app.services.participants_import import _token_hasher

    token_hash = _token_hasher("some-secret-key")
    for _ in range(20):
        nonce = new_nonce()
        assert token_hash(nonce) == sha256_hex(participant_token("some-secret-key", nonce))
