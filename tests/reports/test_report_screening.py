"""Reports of a campaign with eligibility rules: the top-level `screening` object, the
CONSORT steps before allocation, the population the estimates are about beside the
assessed, the live screening rate on the monitoring page and the API."""

from __future__ import annotations

import jsonschema
import numpy as np
import pandas as pd
import pytest

from experiments.design import Eligibility
from experiments.report import schema

RULES = ["individual_coproduction >= 1", "collective_coproduction = 0"]
SCREENED_OUT = {RULES[0]: 50, RULES[1]: 30}


@pytest.fixture
def targeted(council, make_campaign):
    return make_campaign(council, status="running", eligibility=Eligibility(list(RULES)))


@pytest.fixture
def screened(targeted, populate, app):
    """300 randomized (eligible) residents and 80 screened out, with their baseline."""
    from flask import current_app

    from nudge_app.db import utcnow
    from nudge_app.extensions import db
    from nudge_app.models import Participant
    from nudge_app.security import new_nonce, participant_token, sha256_hex

    written = populate(targeted, n=300, seed=5)
    rng = np.random.default_rng(9)
    rows = []
    eligible = db.session.query(Participant).filter_by(campaign_id=targeted.id).all()
    for p in eligible:
        p.screened_at = utcnow()
        p.individual_coproduction = ["recycle"] * int(rng.integers(1, 3))
        p.baseline = {"collective_coproduction": 0}
        rows.append(
            dict(
                age=p.age,
                self_efficacy=p.self_efficacy,
                individual=len(p.individual_coproduction),
                collective=0,
                eligible=True,
            )
        )
    secret = current_app.config["SECRET_KEY"]
    for rule, n in SCREENED_OUT.items():
        for _ in range(n):
            nonce = new_nonce()
            individual = [] if rule == RULES[0] else ["recycle", "save_energy"]
            collective = int(rng.integers(0, 4)) if rule == RULES[0] else int(rng.integers(1, 4))
            age = int(rng.integers(18, 85))
            se = float(np.round(rng.uniform(1, 5), 2))
            db.session.add(
                Participant(
                    campaign_id=targeted.id,
                    access_nonce=nonce,
                    access_token_hash=sha256_hex(participant_token(secret, nonce)),
                    age=age,
                    self_efficacy=se,
                    individual_coproduction=individual,
                    baseline={"collective_coproduction": collective},
                    consent_status="given",
                    screened_at=utcnow(),
                    screened_out_rule=rule,
                )
            )
            rows.append(
                dict(
                    age=age,
                    self_efficacy=se,
                    individual=len(individual),
                    collective=collective,
                    eligible=False,
                )
            )
    db.session.commit()
    return written, pd.DataFrame(rows)


def test_report_json_has_screening_exactly_and_flow_keeps_its_keys(targeted, screened):
    from nudge_app.services.reporting import campaign_report

    data = campaign_report(targeted).to_dict()
    jsonschema.validate(data, schema())
    assert data["screening"] == {
        "assessed": 380,
        "eligible": 300,
        "screened_out": 80,
        "by_rule": SCREENED_OUT,
    }
    assert list(data["screening"]) == ["assessed", "eligible", "screened_out", "by_rule"]
    for row in data["flow"]:
        assert set(row) == {
            "arm",
            "allocated",
            "delivered",
            "exposed",
            "analysed",
            "opted_out",
            "lost",
        }
    assert sum(row["allocated"] for row in data["flow"]) == data["screening"]["eligible"]


def test_population_table_matches_an_independent_count(targeted, screened):
    from nudge_app.services.reporting import campaign_report

    _, truth = screened
    population = campaign_report(targeted).to_dict()["population"]
    assert (population["assessed"], population["eligible"]) == (380, 300)
    assert "met every eligibility rule" in population["sentence"]
    assert "300 of the 380 assessed (79%)" in population["sentence"]
    rows = pd.DataFrame(population["rows"])
    # Ages cut as the design's strata: 18-34, 35-54, 55+.
    age_band = pd.cut(
        truth["age"], [-np.inf, 35, 55, np.inf], right=False, labels=["18-34", "35-54", "55+"]
    )
    expected = pd.crosstab(age_band, truth["eligible"])
    got = rows[rows.variable == "age"].set_index("level")
    for level in ["18-34", "35-54", "55+"]:
        assert got.loc[level, "assessed"] == expected.loc[level].sum()
        assert got.loc[level, "eligible"] == expected.loc[level].get(True, 0)
        assert got.loc[level, "eligible_share"] == pytest.approx(
            expected.loc[level].get(True, 0) / 300
        )
    collective = rows[rows.variable == "collective_coproduction"].set_index("level")
    assert collective.loc["Never", "eligible"] == 300
    assert collective["assessed"].sum() == 380
    assert collective.loc["Never", "assessed"] == 300 + int(
        ((truth.collective == 0) & ~truth.eligible).sum()
    )
    individual = rows[rows.variable == "individual_coproduction"].set_index("level")
    assert individual.loc["none", "assessed"] == SCREENED_OUT[RULES[0]]
    assert individual.loc["none", "eligible"] == 0
    se = rows[rows.variable == "self_efficacy"]
    assert se["assessed"].sum() == 380 and se["eligible"].sum() == 300


def test_html_report_says_whom_it_is_about_and_the_steps_before_allocation(
    targeted, screened, staff_client
):
    body = staff_client(targeted.council).get(f"/reports/{targeted.slug}").get_data(as_text=True)
    assert "<h2>Whom this report is about</h2>" in body
    assert "Assessed for eligibility: <strong>380</strong>" in body
    assert "Screened out: <strong>80</strong>" in body
    assert "individual_coproduction &gt;= 1: 50" in body
    assert body.index("Assessed for eligibility") < body.index('<th scope="col">Allocated</th>')


def test_monitoring_shows_the_screening_rate_live(targeted, screened, staff_client):
    staff = staff_client(targeted.council)
    page = staff.get(f"/campaigns/{targeted.slug}/monitor")
    body = page.get_data(as_text=True)
    assert "Eligibility screening" in body
    assert "380 assessed · 80 screened out (21%) · 300 eligible" in body
    overview = staff.get(f"/campaigns/{targeted.slug}")
    text = overview.get_data(as_text=True)
    assert "count eligible residents" in text
    assert "So far 79% of the 380 assessed were eligible" in text


def test_api_monitoring_carries_the_screening(client, targeted, screened, db_session):
    from nudge_app.services.staff import create_token

    headers = {"Authorization": f"Bearer {create_token(targeted.council, 'tests').secret}"}
    db_session.commit()
    m = client.get(f"/api/v1/campaigns/{targeted.slug}/monitoring", headers=headers).get_json()
    assert m["screening"]["screened_out"] == 80
    assert m["screening"]["rate"] == pytest.approx(80 / 380)
    assert m["screening"]["by_rule"] == SCREENED_OUT


def test_a_campaign_without_rules_reports_everyone_randomized_as_assessed(
    council, make_campaign, populate
):
    from nudge_app.services.reporting import campaign_report

    campaign = make_campaign(council, status="running")
    populate(campaign, n=200, seed=2)
    data = campaign_report(campaign).to_dict()
    assert data["screening"] == {"assessed": 200, "eligible": 200, "screened_out": 0, "by_rule": {}}
    assert "no eligibility rules" in data["population"]["sentence"]
