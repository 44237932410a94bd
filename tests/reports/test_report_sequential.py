"""The campaign's live report: one look per day of enrolment with always-valid intervals,
and the fixed-horizon result called final only at the planned sample or when closed."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from nudge_app.extensions import db
from nudge_app.models import Assignment
from nudge_app.services.reporting import campaign_report


@pytest.fixture
def running(council, make_campaign):
    return make_campaign(council, status="running")


def spread_over_days(campaign, days: int = 4) -> None:
    start = datetime(2026, 11, 2, 10, 0, tzinfo=UTC)
    for a in db.session.scalars(select(Assignment).where(Assignment.campaign_id == campaign.id)):
        # days at random: permuted blocks would tie a day given by id % days to an arm
        a.assigned_at = start + timedelta(days=random.Random(a.participant_id).randrange(days))
    db.session.commit()


def test_live_report_has_one_look_per_day_and_says_the_result_is_interim(running, populate):
    populate(running, n=600, seed=5)
    spread_over_days(running)
    report = campaign_report(running)
    (seq,) = report.analysis.sequential
    assert [x.through for x in seq.looks] == [
        "2026-11-02",
        "2026-11-03",
        "2026-11-04",
        "2026-11-05",
    ]
    assert seq.looks[-1].n == 600 and seq.estimator == "blocked"
    assert seq.looks[-1].estimate == pytest.approx(report.analysis.effects[0].estimate)
    # tuned for the planned sample, fixed whatever the day
    assert report.analysis.design.sequential["tuned_for"] == 4000
    data = report.to_dict()
    assert data["campaign"]["final_analysis"] is False
    assert data["campaign"]["planned_sample_size"] == 4000
    assert set(data["sequential"][0]) == {"arm", "method", "looks"}
    assert set(data["sequential"][0]["looks"][0]) == {
        "through",
        "n",
        "estimate",
        "ci_low",
        "ci_high",
        "p_value",
    }
    html = report.to_html()
    assert "Interim look" in html and "Safe to look at repeatedly" in html
    assert "Final analysis" not in html
    assert '<svg class="cs"' in html and "<script" not in html


def test_the_fixed_horizon_result_is_final_once_the_campaign_is_closed(running, populate):
    from nudge_app.services.campaigns import close_campaign

    populate(running, n=300, seed=6)
    close_campaign(running, actor="test")
    db.session.commit()
    report = campaign_report(running)
    assert report.to_dict()["campaign"]["final_analysis"] is True
    html = report.to_html()
    assert "Final analysis" in html and "the campaign is closed" in html
    assert "Interim look" not in html
