"""Text longer than its column is refused by the service, naming the field, before anything
is written: SQLite ignores VARCHAR lengths and PostgreSQL refuses them, so without the
check a test passed on one and failed on the other (a suppression reason of 18 characters
in a column of 16, session 4). Run on SQLite and, with NUDGE_TEST_DATABASE_URL, on
PostgreSQL: both must give the same refusal and store the longest value that fits."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from nudge_app.extensions import db
from nudge_app.models import Council, Participant, Suppression
from nudge_app.services import suppression
from nudge_app.services.councils import CouncilError, create_council
from nudge_app.text_limits import TextTooLong, column_length


def _suppressed() -> int:
    return db.session.scalar(select(func.count(Suppression.id)))


def test_the_design_rules_keep_stratum_names_within_the_assignment_columns():
    # experiments/ cannot read the model, so the design reader states the limit: it must
    # be the columns' own (an assignment and the permuted-block counter keep the name).
    from experiments.design import MAX_STRATUM_LABEL
    from nudge_app.models import Assignment, StratumCounter

    assert column_length(Assignment.stratum) == MAX_STRATUM_LABEL
    assert column_length(StratumCounter.stratum) == MAX_STRATUM_LABEL


def test_every_suppression_reason_fits_its_column():
    assert column_length(Suppression.reason) == 16
    assert all(len(r) <= 16 for r in suppression.REASONS)


@pytest.mark.parametrize("reason", ["withdrew elsewhere", "Opt-out", "", "spam"])
def test_a_reason_outside_the_fixed_set_is_refused_and_nothing_is_written(council, reason):
    with pytest.raises(suppression.UnknownReason) as caught:
        suppression.suppress_many(council, [("ann@example.org", "07700 900123")], reason)
    assert caught.value.field == "reason"
    assert caught.value.http_status == 422
    assert "must be one of opt-out, withdrawal, retention" in str(caught.value)
    db.session.commit()
    assert _suppressed() == 0


def test_each_reason_of_the_set_is_stored(council):
    for i, reason in enumerate(suppression.REASONS):
        assert suppression.suppress_many(council, [(f"p{i}@example.org", None)], reason) == 1
    db.session.commit()
    stored = db.session.scalars(select(Suppression.reason).order_by(Suppression.id)).all()
    assert stored == list(suppression.REASONS)


def test_a_participant_is_suppressed_only_with_a_reason_of_the_set(
    council, make_campaign, db_session
):
    from nudge_app.services.participants_import import import_csv

    campaign = make_campaign(council)
    import_csv(campaign, "external_ref,first_name,email\nR1,Ann,ann@example.org\n")
    db_session.commit()
    person = db_session.scalar(select(Participant).where(Participant.campaign_id == campaign.id))
    with pytest.raises(suppression.UnknownReason):
        suppression.suppress(person, "withdrew elsewhere")
    db_session.commit()
    assert _suppressed() == 0
    suppression.suppress(person, "withdrawal")
    db_session.commit()
    assert suppression.is_suppressed(council, "ANN@example.org", None)


def test_a_council_name_longer_than_its_column_is_refused(app):
    limit = column_length(Council.name)
    with pytest.raises(TextTooLong) as caught:
        create_council("longshire", "L" * (limit + 1))
    assert caught.value.field == "name" and caught.value.http_status == 422
    assert f"name: at most {limit} characters (this one has {limit + 1})" in str(caught.value)
    db.session.rollback()
    assert db.session.scalar(select(func.count(Council.id))) == 0
    longest = create_council("longshire", "L" * limit)  # the longest that fits is stored
    db.session.commit()
    assert db.session.get(Council, longest.id).name == "L" * limit


@pytest.mark.parametrize("locale", ["english-united-kingdom", "EN", "e", ""])
def test_a_council_locale_that_is_not_a_language_code_is_refused(app, locale):
    with pytest.raises(CouncilError) as caught:
        create_council("localeshire", "Localeshire Council", locale=locale)
    assert caught.value.field == "locale"
    assert "must be a language code like en or en-GB" in str(caught.value)
    db.session.rollback()
    assert db.session.scalar(select(func.count(Council.id))) == 0


def test_the_cli_names_the_field_and_creates_nothing(runner, app):
    from nudge_app.cli import main

    result = runner.invoke(main, ["council", "create", "longshire", "--name", "N" * 201])
    assert result.exit_code == 1
    assert "name: at most 200 characters (this one has 201)" in result.output
    db.session.rollback()
    assert db.session.scalar(select(func.count(Council.id))) == 0


def test_an_eligibility_rule_fits_the_column_that_keeps_the_failed_one():
    """The design refuses a rule longer than MAX_RULE_LENGTH; a screened-out participant
    keeps the failed rule's text, so the column must hold that many characters."""
    from experiments import eligibility

    assert column_length(Participant.screened_out_rule) >= eligibility.MAX_RULE_LENGTH
    with pytest.raises(eligibility.RuleError, match="at most 200 characters"):
        eligibility.parse_rule("age >= " + "1" * 200)
