"""A baseline variable added by one registration, with no other edit, flows through the
design-file checks, the survey form (rendered and posted), the follow-up survey, the
participant CSV import, the API's enrolment, the strata and the report's moderators."""

from __future__ import annotations

import tomllib

import numpy as np
import pytest
from sqlalchemy import select

from experiments import baseline
from experiments.bands import BandSpec
from experiments.baseline import BaselineVariable, Option
from experiments.design import DesignError, design_to_toml, load_design, parse_design
from nudge_app.extensions import db
from nudge_app.models import Assignment, Event, Participant, SurveyResponse
from nudge_app.services import enrolment
from nudge_app.services.participants_import import ImportRejected, import_csv
from nudge_app.services.reporting import analysis_frame, campaign_report

CUTS = (5.0, 20.0)
LABELS = ("newcomer", "settled", "long-standing")

YEARS_IN_AREA = BaselineVariable(
    name="years_in_area",
    kind="integer",
    label="Years in the area",
    question="How many years have you lived in this area?",
    error="Enter a number of years from 0 to 100.",
    minimum=0,
    maximum=100,
    bands=BandSpec("years_in_area", CUTS, LABELS),
)
# A second one, asked again at follow-up: an ordered choice, then also an outcome.
TRUST = BaselineVariable(
    name="trust_council",
    kind="choice",
    label="Trust in the council",
    question="How much do you trust the council to act on residents' views?",
    error="Choose one of the answers.",
    options=(Option(1, "Not at all"), Option(2, "A little"), Option(3, "A lot")),
    required=False,
    follow_up=True,
)


@pytest.fixture
def registered():
    """The two test-only variables, registered for one test (the only 'edit')."""
    for variable in (YEARS_IN_AREA, TRUST):
        baseline.register(variable)
    yield
    for variable in (YEARS_IN_AREA, TRUST):
        baseline.unregister(variable.name)


def band(years: int) -> str:
    return LABELS[int(np.searchsorted(CUTS, years, side="right"))]


def design_with_years(catalog_path, name: str):
    """A catalog design stratified on years_in_area, with it as a pre-registered moderator,
    written as a design file is (TOML) and checked as one."""
    tables = tomllib.loads(design_to_toml(load_design(str(catalog_path(name)))))
    tables["randomization"]["strata"] = [
        {"moderator": "years_in_area", "cuts": list(CUTS), "labels": list(LABELS)}
    ]
    tables["analysis"]["moderators"] = ["years_in_area"]
    tables["analysis"]["covariates"] = []
    tables["analysis"]["primary_outcome"] = "joined"
    tables.pop("eligibility", None)  # everyone who answers is randomized here
    return tables


def test_unregistered_it_is_refused_by_the_design_file(catalog_path):
    tables = design_with_years(catalog_path, "self-efficacy-cleanup")
    with pytest.raises(DesignError) as info:
        parse_design(tables)
    paths = {p.path for p in info.value.problems}
    assert paths == {"randomization.strata[0].moderator", "analysis.moderators[0]"}


def test_the_design_file_accepts_it_and_asks_for_its_cuts(registered, catalog_path):
    design = parse_design(design_with_years(catalog_path, "self-efficacy-cleanup"))
    assert design.randomization.strata[0].moderator == "years_in_area"
    tables = design_with_years(catalog_path, "self-efficacy-cleanup")
    del tables["randomization"]["strata"][0]["cuts"]
    del tables["randomization"]["strata"][0]["labels"]
    with pytest.raises(DesignError, match=r"strata\[0\]\.cuts: years_in_area is numeric"):
        parse_design(tables)
    tables["analysis"]["moderators"] = ["trust_council_followup"]
    with pytest.raises(DesignError, match="measured after the message"):
        parse_design(tables)


def test_survey_form_strata_and_follow_up(registered, council, make_campaign, catalog_path, client):
    campaign = make_campaign(
        council, parse_design(design_with_years(catalog_path, "self-efficacy-cleanup"))
    )
    from nudge_app.services.campaigns import launch_campaign

    launch_campaign(campaign, actor="test")
    person = enrolment.new_participant(campaign, first_name="Ann", email="ann@example.org")
    db.session.commit()
    token = enrolment.token_of(person)
    client.post(f"/p/{token}/consent", data={"decision": "agree"})

    page = client.get(f"/p/{token}").get_data(as_text=True)
    assert "How many years have you lived in this area?" in page
    assert 'name="years_in_area"' in page and 'name="trust_council"' in page

    answers = {
        "age": "40",
        "gender": "woman",
        "se_safety": "3",
        "se_environment": "3",
        "se_health": "3",
        "trust_council": "2",
    }
    refused = client.post(f"/p/{token}/baseline", data={**answers, "years_in_area": "200"})
    assert refused.status_code == 422
    html = refused.get_data(as_text=True)
    assert 'href="#years_in_area-field"' in html
    assert "Enter a number of years from 0 to 100." in html
    assert 'value="200"' in html  # what was typed is kept
    missing = client.post(f"/p/{token}/baseline", data=answers)
    assert missing.status_code == 422, "a required registered question is required"

    ok = client.post(f"/p/{token}/baseline", data={**answers, "years_in_area": "12"})
    assert ok.status_code == 303
    db.session.expire_all()
    person = db.session.get(Participant, person.id)
    assert person.baseline == {"years_in_area": 12, "trust_council": 2}
    assignment = db.session.scalar(select(Assignment).where(Assignment.participant_id == person.id))
    assert assignment.stratum == "years_in_area=settled"

    # Asked again at follow-up, and an outcome there.
    survey = client.get(f"/p/{token}/follow-up").get_data(as_text=True)
    assert 'name="trust_council"' in survey and 'name="years_in_area"' not in survey
    done = client.post(
        f"/p/{token}/follow-up",
        data={
            "participated": "no",
            "se_safety": "4",
            "se_environment": "4",
            "se_health": "4",
            "trust_council": "3",
        },
    )
    assert done.status_code == 303
    response = db.session.scalar(select(SurveyResponse).where(SurveyResponse.kind == "follow_up"))
    assert response.answers["trust_council"] == 3
    frame = analysis_frame(campaign)
    assert frame.loc[0, "years_in_area"] == 12 and frame.loc[0, "trust_council"] == 2
    assert frame.loc[0, "trust_council_followup"] == 3


def test_csv_import_api_strata_and_report(registered, council, make_campaign, catalog_path, client):
    campaign = make_campaign(
        council, parse_design(design_with_years(catalog_path, "council-consultation"))
    )
    header = (
        "external_ref,first_name,email,age,se_safety,se_environment,se_health,"
        "years_in_area,trust_council\n"
    )
    bad = header + "R1,Ann,a@example.org,40,2,3,4,101,1\nR2,Bob,b@example.org,41,2,3,4,3,4\n"
    with pytest.raises(ImportRejected) as info:
        import_csv(campaign, bad.encode())
    db.session.rollback()
    problems = {(p.row, p.column) for p in info.value.problems}
    assert problems == {(2, "years_in_area"), (3, "trust_council")}

    rng = np.random.default_rng(7)
    years = rng.integers(0, 60, 240)
    rows = "".join(
        f"R{i},P{i},p{i}@example.org,{30 + i % 40},{1 + i % 5},3,{1 + i % 4},{y},{1 + i % 3}\n"
        for i, y in enumerate(years)
    )
    assert import_csv(campaign, (header + rows).encode()).imported == 240
    from nudge_app.services.campaigns import launch_campaign

    launch_campaign(campaign, actor="test")  # a list campaign: randomized in batch
    db.session.commit()

    people = db.session.execute(
        select(
            Participant.external_ref, Participant.baseline, Assignment.stratum, Assignment.arm_id
        )
        .join(Assignment, Assignment.participant_id == Participant.id)
        .where(Participant.campaign_id == campaign.id)
    ).all()
    assert len(people) == 240
    by_stratum: dict[str, list[int]] = {}
    for ref, kept, stratum, arm_id in people:
        i = int(ref[1:])
        assert kept == {"years_in_area": int(years[i]), "trust_council": 1 + i % 3}
        assert stratum == f"years_in_area={band(int(years[i]))}"
        by_stratum.setdefault(stratum, []).append(arm_id)
    for arms in by_stratum.values():  # exact counts within one per arm in every stratum
        counts = [arms.count(a.id) for a in campaign.arms]
        assert max(counts) - min(counts) <= 1

    # Outcomes, then the report: years_in_area is a pre-registered moderator.
    control = next(a.id for a in campaign.arms if a.is_control)
    joined = {}
    for ref, _, _, arm_id in people:
        p = db.session.scalar(select(Participant).where(Participant.external_ref == ref))
        joined[ref] = bool(rng.random() < (0.15 if arm_id == control else 0.35))
        if joined[ref]:
            db.session.add(
                Event(
                    campaign_id=campaign.id,
                    participant_id=p.id,
                    kind="join",
                    idempotency_key=f"join:{p.id}",
                )
            )
    db.session.commit()
    analysis = campaign_report(campaign).analysis
    moderators = {m["moderator"]: m for m in analysis.moderators}
    assert moderators["years_in_area"]["levels"] == list(LABELS)
    assert moderators["years_in_area"]["family"] == "confirmatory"
    arm_key = {a.id: a.key for a in campaign.arms}
    treated = next(a.key for a in campaign.arms if not a.is_control)
    for level in LABELS:
        mine = [(arm_key[a], joined[r]) for r, _, s, a in people if s.endswith("=" + level)]
        t = [y for k, y in mine if k == treated]
        c = [y for k, y in mine if k == arm_key[control]]
        (found,) = [
            s
            for s in analysis.subgroups
            if s.moderator == "years_in_area" and s.level == level and s.arm == treated
        ]
        assert found.estimate == pytest.approx(np.mean(t) - np.mean(c), abs=1e-12)

    # The API's enrolment takes the same fields (and documents them).
    from nudge_app.services.staff import create_token

    secret = create_token(council, "tests").secret
    db.session.commit()
    headers = {"Authorization": f"Bearer {secret}"}
    spec = client.get("/api/v1/openapi.json").get_json()
    assert "years_in_area" in spec["components"]["schemas"]["Enrolment"]["properties"]
    url = f"/api/v1/campaigns/{campaign.slug}/enrolments"
    body = {"external_ref": "API1", "first_name": "Cy", "email": "cy@example.org", "consent": True}
    refused = client.post(url, json={**body, "years_in_area": "-1"}, headers=headers)
    assert refused.status_code == 422
    assert "years_in_area" in refused.get_json()["details"]["fields"]
    created = client.post(url, json={**body, "years_in_area": 4}, headers=headers)
    assert created.status_code == 201, created.get_json()
    assert created.get_json()["stratum"] == "years_in_area=newcomer"
