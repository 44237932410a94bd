"""Eligibility screening in the journey: a resident the rules screen out gets no arm, no
message and no place in any stratum counter, and sees the kind page in every language;
the same answers imported by CSV screen identically."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from experiments.design import Eligibility
from experiments.languages import LANGUAGES
from nudge_app.models import Assignment, Event, OutboundMessage, Participant, StratumCounter
from nudge_app.services import screening
from nudge_app.services.participants_import import ImportRejected, import_csv

RULES = ["individual_coproduction >= 1", "collective_coproduction = 0"]
KIND_TITLE = "Thank you for your answers"

# (individual co-production as the form posts it, collective co-production) -> first rule failed
PROFILES = [
    (["recycle"], "0", None),
    (["recycle", "secure_home", "save_energy"], "0", None),
    ([], "0", "individual_coproduction >= 1"),
    ([], "2", "individual_coproduction >= 1"),
    (["recycle"], "1", "collective_coproduction = 0"),
    (["health_checks"], "3", "collective_coproduction = 0"),
]


def _csv_choices(chosen: list[str]) -> str:
    return ";".join(chosen) if chosen else "none"


@pytest.fixture
def targeted(council, make_campaign):
    """The self-efficacy clean-up (survey-first), for individual co-producers in no group."""
    return make_campaign(council, status="running", eligibility=Eligibility(list(RULES)))


def _counters(db_session, campaign) -> int:
    return db_session.scalar(
        select(func.coalesce(func.sum(StratumCounter.next_slot), 0)).where(
            StratumCounter.campaign_id == campaign.id
        )
    )


def _answer(journey, token, individual, collective):
    data = {"collective_coproduction": collective}
    if individual:
        data["individual_coproduction"] = individual
    return journey.baseline(token, **data)


def test_screened_out_resident_gets_no_arm_no_message_no_stratum_slot(
    targeted, make_person, journey, client, db_session
):
    outcomes = {}
    for individual, collective, failed in PROFILES:
        person, token = make_person(targeted)
        journey.consent(token)
        response = _answer(journey, token, individual, collective)
        assert response.status_code == 303
        page = client.get(f"/p/{token}").get_data(as_text=True)
        db_session.expire_all()
        person = db_session.get(Participant, person.id)
        outcomes[person.id] = failed
        assert person.screened_at is not None
        assert person.screened_out_rule == failed
        if failed is None:
            assert person.assignment is not None
            assert KIND_TITLE not in page and "join" in page
        else:
            assert person.assignment is None
            assert KIND_TITLE in page
            assert "I will take part" not in page and "efficacy" not in page.lower()
            # A second visit, a join attempt and a follow-up link change nothing.
            assert KIND_TITLE in client.get(f"/p/{token}").get_data(as_text=True)
            client.post(f"/p/{token}/join", data={"contact": "none"})
    eligible = [pid for pid, failed in outcomes.items() if failed is None]
    out = [pid for pid, failed in outcomes.items() if failed is not None]
    assigned = db_session.scalars(
        select(Assignment.participant_id).where(Assignment.campaign_id == targeted.id)
    ).all()
    assert sorted(assigned) == sorted(eligible)
    # Only the eligible took block slots; the screened out have no message and no join.
    assert _counters(db_session, targeted) == len(eligible)
    assert not db_session.scalars(
        select(OutboundMessage.id).where(OutboundMessage.participant_id.in_(out))
    ).all()
    assert not db_session.scalars(
        select(Event.id).where(Event.participant_id.in_(out), Event.kind.in_(("join", "exposure")))
    ).all()
    counts = screening.counts(targeted)
    assert counts.to_dict() == {
        "assessed": 6,
        "eligible": 2,
        "screened_out": 4,
        "by_rule": {"individual_coproduction >= 1": 2, "collective_coproduction = 0": 2},
    }


def test_an_answer_the_rules_need_is_required_on_the_baseline_page(
    targeted, make_person, journey, db_session
):
    person, token = make_person(targeted)
    journey.consent(token)
    response = journey.baseline(token, individual_coproduction=["recycle"])
    assert response.status_code == 422
    page = response.get_data(as_text=True)
    assert "collective_coproduction-field" in page
    assert "so we can tell whether it is for you" in page
    db_session.expire_all()
    assert db_session.get(Participant, person.id).screened_at is None


def test_without_rules_the_same_answers_are_all_randomized(
    running, make_person, journey, db_session
):
    for individual, collective, _ in PROFILES:
        person, token = make_person(running)
        journey.consent(token)
        _answer(journey, token, individual, collective)
        db_session.expire_all()
        person = db_session.get(Participant, person.id)
        assert person.assignment is not None and person.screened_out_rule is None
    assert screening.counts(running).to_dict()["screened_out"] == 0


@pytest.mark.parametrize("lang", LANGUAGES)
def test_the_kind_page_is_in_every_language(lang, targeted, make_person, journey, client):
    from babel.support import Translations

    from nudge_app.participant import __file__ as participant_init

    person, token = make_person(targeted)
    journey.consent(token)
    _answer(journey, token, [], "0")
    response = client.get(f"/p/{token}?lang={lang}")
    page = response.get_data(as_text=True)
    assert response.status_code == 200
    assert f'<html lang="{lang}"' in page
    folder = __import__("pathlib").Path(participant_init).parents[1] / "translations"
    title = Translations.load(str(folder), [lang]).gettext(KIND_TITLE)
    if lang != "en":
        assert title != KIND_TITLE
    assert title in page
    assert targeted.council.name in page


def _import_rows(profiles, start=0) -> str:
    header = (
        "external_ref,first_name,email,age,gender,se_safety,se_environment,se_health,"
        "individual_coproduction,collective_coproduction\n"
    )
    rows = "".join(
        f"R{start + i},Ann,ann{start + i}@example.org,40,woman,2,3,4,"
        f"{_csv_choices(individual)},{collective}\n"
        for i, (individual, collective, _) in enumerate(profiles)
    )
    return header + rows


def test_the_same_answers_imported_to_a_list_campaign_screen_identically(
    council, make_campaign, db_session
):
    campaign = make_campaign(
        council, "council-consultation", status="running", eligibility=Eligibility(list(RULES))
    )
    result = import_csv(campaign, _import_rows(PROFILES * 3), actor="test")
    db_session.commit()
    expected = [failed for _, _, failed in PROFILES * 3]
    people = db_session.scalars(
        select(Participant).where(Participant.campaign_id == campaign.id).order_by(Participant.id)
    ).all()
    assert [p.screened_out_rule for p in people] == expected
    assert all(p.screened_at is not None for p in people)
    n_out = sum(1 for f in expected if f is not None)
    assert result.screened_out == n_out and result.randomized == len(expected) - n_out
    assert {p.id for p in people if p.assignment is not None} == {
        p.id for p, f in zip(people, expected, strict=True) if f is None
    }
    out_ids = [p.id for p, f in zip(people, expected, strict=True) if f is not None]
    assert not db_session.scalars(
        select(OutboundMessage.id).where(OutboundMessage.participant_id.in_(out_ids))
    ).all()
    assert screening.counts(campaign).to_dict()["by_rule"] == {
        "individual_coproduction >= 1": 6,
        "collective_coproduction = 0": 6,
    }


def test_a_list_import_lacking_an_answer_the_rules_need_imports_nothing(
    council, make_campaign, db_session
):
    campaign = make_campaign(
        council, "council-consultation", status="running", eligibility=Eligibility(list(RULES))
    )
    header_only = "external_ref,first_name,email,age\nR1,Ann,a@example.org,40\n"
    with pytest.raises(ImportRejected) as info:
        import_csv(campaign, header_only)
    found = {(p.row, p.column) for p in info.value.problems}
    assert found == {(1, "individual_coproduction"), (1, "collective_coproduction")}
    assert "the eligibility rule" in str(info.value)
    db_session.rollback()
    rows = _import_rows(PROFILES[:2]).replace(",recycle,0\n", ",recycle,\n")
    with pytest.raises(ImportRejected) as info:
        import_csv(campaign, rows)
    (problem,) = info.value.problems
    assert (problem.row, problem.column) == (2, "collective_coproduction")
    assert 'the eligibility rule "collective_coproduction = 0" needs it' in problem.message
    db_session.rollback()
    assert not db_session.scalars(
        select(Participant.id).where(Participant.campaign_id == campaign.id)
    ).all()


def test_imported_answers_to_a_survey_first_campaign_screen_out_before_the_invitation(
    targeted, db_session, client, app
):
    from nudge_app.services.enrolment import token_of

    result = import_csv(targeted, _import_rows(PROFILES), actor="test")
    db_session.commit()
    assert result.screened_out == 4
    people = db_session.scalars(
        select(Participant).where(Participant.campaign_id == targeted.id).order_by(Participant.id)
    ).all()
    invited = set(
        db_session.scalars(
            select(OutboundMessage.participant_id).where(OutboundMessage.kind == "invitation")
        )
    )
    for person, (_, _, failed) in zip(people, PROFILES, strict=True):
        assert person.screened_out_rule == failed
        # Those who meet the rules are screened for good once they confirm on the page.
        assert (person.screened_at is None) is (failed is None)
        assert (person.id in invited) is (failed is None)
        if failed is not None:
            page = client.get(f"/p/{token_of(person)}").get_data(as_text=True)
            assert KIND_TITLE in page


def test_the_design_round_trips_through_the_database(targeted):
    from nudge_app.services.campaigns import design_of

    design = design_of(targeted)
    assert design.eligibility.require == RULES
    assert targeted.eligibility == RULES


def test_a_draft_survey_first_import_is_screened_out_at_launch(council, make_campaign, db_session):
    from nudge_app.services.campaigns import launch_campaign

    draft = make_campaign(council, eligibility=Eligibility(list(RULES)))
    import_csv(draft, _import_rows(PROFILES), actor="test")
    db_session.commit()
    assert screening.counts(draft).assessed == 0  # rules may change until launch
    launch_campaign(draft, actor="test")
    db_session.commit()
    people = db_session.scalars(
        select(Participant).where(Participant.campaign_id == draft.id).order_by(Participant.id)
    ).all()
    assert [p.screened_out_rule for p in people] == [f for _, _, f in PROFILES]
    invited = set(
        db_session.scalars(
            select(OutboundMessage.participant_id).where(OutboundMessage.kind == "invitation")
        )
    )
    assert invited == {p.id for p, (_, _, f) in zip(people, PROFILES, strict=True) if f is None}
