"""The campaign editor offers as strata and moderators only the baseline variables the
campaign can have data for (issue 19, item 7), and follows the registry."""

from __future__ import annotations

import re

import pytest
from sqlalchemy import select

from experiments import baseline
from experiments.baseline import BaselineVariable
from nudge_app.models import Participant
from nudge_app.services.participants_import import import_csv

SURVEY_VARIABLES = {"age", "gender", "self_efficacy", "individual_coproduction"}


def offered(client, slug: str) -> tuple[set[str], set[str]]:
    """(strata offered, moderators offered) on the campaign's settings page."""
    html = client.get(f"/campaigns/{slug}/edit").get_data(as_text=True)
    select_html = re.search(r'<select id="stratum_0_moderator".*?</select>', html, re.S).group(0)
    strata = set(re.findall(r"<option[^>]*>([a-z_]+)</option>", select_html))
    moderators = set(re.findall(r'name="moderators" value="([a-z_]+)"', html))
    return strata, moderators


def test_survey_first_campaign_is_offered_what_its_baseline_page_asks(
    signed_in, council, make_campaign
):
    campaign = make_campaign(council)  # survey-first, nobody imported
    client, _, _ = signed_in(council, "designer")
    strata, moderators = offered(client, campaign.slug)
    assert SURVEY_VARIABLES | {"collective_coproduction"} <= moderators
    assert "country" not in moderators and "country" not in strata  # never asked
    assert strata == moderators


def test_list_campaign_is_offered_what_its_list_carries(
    signed_in, council, make_campaign, db_session
):
    campaign = make_campaign(council, "council-consultation")
    client, _, _ = signed_in(council, "designer")
    assert "country" in offered(client, campaign.slug)[1]  # a list may still bring it
    import_csv(campaign, b"external_ref,first_name,email,age\nR1,Ann,a@example.org,40\n")
    db_session.commit()
    assert "country" not in offered(client, campaign.slug)[1]  # this list did not
    import_csv(campaign, b"external_ref,first_name,email,country\nR2,Bo,b@example.org,DK\n")
    db_session.commit()
    assert "country" in offered(client, campaign.slug)[1]


def test_a_moderator_the_design_names_stays_offered(
    signed_in, council, make_campaign, catalog_path
):
    from experiments.design import load_design

    design = load_design(str(catalog_path("self-efficacy-cleanup")))
    design.analysis.moderators = ["age", "country"]
    campaign = make_campaign(council, design)
    client, _, _ = signed_in(council, "designer")
    assert "country" in offered(client, campaign.slug)[1]  # saving must not drop it


@pytest.fixture
def years_in_area():
    variable = baseline.register(
        BaselineVariable(
            name="years_in_area",
            kind="integer",
            label="Years in the area",
            question="How many years have you lived in this area?",
            minimum=0,
            maximum=100,
            stratify=False,
        )
    )
    yield variable
    baseline.unregister(variable.name)


def test_a_registered_variable_is_offered_and_in_the_import_template(
    years_in_area, signed_in, council, make_campaign, db_session
):
    campaign = make_campaign(council)
    client, _, _ = signed_in(council, "designer")
    strata, moderators = offered(client, campaign.slug)
    assert "years_in_area" in moderators and "years_in_area" not in strata  # stratify=False
    page = client.get(f"/campaigns/{campaign.slug}/participants").get_data(as_text=True)
    assert "years_in_area: a whole number from 0 to 100" in page
    template = client.get(f"/campaigns/{campaign.slug}/participants/template.csv")
    header, example = template.get_data(as_text=True).splitlines()
    cells = dict(zip(header.split(","), example.split(","), strict=True))
    assert cells["years_in_area"] == "50"
    assert import_csv(campaign, template.data).imported == 1
    db_session.commit()
    kept = db_session.scalar(
        select(Participant.baseline).where(Participant.campaign_id == campaign.id)
    )
    assert kept["years_in_area"] == 50
