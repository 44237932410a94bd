"""The campaign editor builds a randomized saturation design: the saturations and the
smallest spillover go through the design rules and come back in the design file."""

from __future__ import annotations

from editor_forms import settings_form

from experiments.design import load_design, parse_design

# A randomized saturation design: clusters, no strata.
SATURATION = {
    "name": "Peer mentoring",
    "stratum_0_moderator": None,
    "stratum_0_cuts": None,
    "cluster": "neighbourhood",
    "saturations": "0, 0.4, 0.8",
    "minimum_spillover": "0.02",
}


def _settings(token: str, **changes) -> dict:
    return settings_form(token, **{**SATURATION, **changes})


def _two_arm_campaign(make_campaign, council, catalog_path):
    design = load_design(str(catalog_path("self-efficacy-cleanup")))
    control = next(a for a in design.arms if a.control)
    other = next(a for a in design.arms if not a.control)
    return make_campaign(council, design, arms=[control, other])


def test_editor_builds_a_saturation_design(signed_in, council, make_campaign, catalog_path):
    campaign = _two_arm_campaign(make_campaign, council, catalog_path)
    client, _, token = signed_in(council, "designer")
    page = client.get(f"/campaigns/{campaign.slug}/edit").get_data(as_text=True)
    assert 'id="saturations"' in page and 'id="minimum_spillover"' in page
    saved = client.post(f"/campaigns/{campaign.slug}/edit", data=_settings(token))
    assert saved.status_code == 302, saved.get_data(as_text=True)
    text = client.get(f"/campaigns/{campaign.slug}/design.toml").get_data(as_text=True)
    design = parse_design(text)
    assert design.randomization.saturations == [0.0, 0.4, 0.8]
    assert design.randomization.cluster == "neighbourhood"
    assert design.analysis.minimum_spillover == 0.02
    page = client.get(f"/campaigns/{campaign.slug}/edit").get_data(as_text=True)
    assert 'value="0.0, 0.4, 0.8"' in page or 'value="0, 0.4, 0.8"' in page
    # Emptying the field makes it an ordinary cluster design again.
    cleared = client.post(
        f"/campaigns/{campaign.slug}/edit",
        data=_settings(token, saturations="", minimum_spillover=""),
    )
    assert cleared.status_code == 302
    text = client.get(f"/campaigns/{campaign.slug}/design.toml").get_data(as_text=True)
    assert "saturations" not in text and "minimum_spillover" not in text


def test_editor_refuses_bad_saturations_by_field(
    signed_in, council, make_campaign, catalog_path, console
):
    campaign = _two_arm_campaign(make_campaign, council, catalog_path)
    client, _, token = signed_in(council, "designer")
    for changes, expected in (
        ({"saturations": "0, 1.5"}, "1.5 is outside [0, 1]"),
        ({"saturations": "0, lots"}, "'lots'"),
        ({"saturations": "0.4, 0.8"}, "must include 0"),
        ({"saturations": "0, 0.4, 0.4"}, "0.4 is listed twice"),
        ({"cluster": ""}, 'set "Randomize clusters"'),
    ):
        refused = client.post(f"/campaigns/{campaign.slug}/edit", data=_settings(token, **changes))
        assert refused.status_code == 422, changes
        beside = console.errors(refused.get_data(as_text=True), "saturations")
        assert any(expected in e for e in beside), (changes, beside)
    text = client.get(f"/campaigns/{campaign.slug}/design.toml").get_data(as_text=True)
    assert "saturations" not in text  # nothing was saved


def test_editor_keeps_the_peer_mentoring_design_and_its_file_round_trips(
    signed_in, council, make_campaign, catalog_path
):
    """The peer-mentoring catalog design (a saturation design with a mentor role and
    introductions) saved through the editor with its mentoring fields: its design file
    parses back to the same design, mentoring included."""
    from experiments.design import design_to_toml

    design = load_design(str(catalog_path("peer-mentoring")))
    design.mentoring.introductions = 3
    assert parse_design(design_to_toml(design)).to_dict() == design.to_dict()
    campaign = make_campaign(council, design)
    client, _, token = signed_in(council, "designer")
    saved = client.post(
        f"/campaigns/{campaign.slug}/edit",
        data=_settings(
            token, name=design.name, enrolment_mode="list", method="complete", strata=[],
            activity_name=design.activity.name, moderators=["self_efficacy"],
            minimum_effect="0.05", minimum_spillover="0.03", seed=str(design.randomization.seed),
            mentoring="yes", mentor_offer_to="self_efficacy >= 4", mentor_invite_limit="10",
            mentor_link_days="60", mentor_introductions="3",
        ),
    )  # fmt: skip
    assert saved.status_code == 302, saved.get_data(as_text=True)
    text = client.get(f"/campaigns/{campaign.slug}/design.toml").get_data(as_text=True)
    back = parse_design(text)
    assert back.randomization.saturations == [0.0, 0.4, 0.8]
    assert back.mentoring == design.mentoring and back.mentoring.introductions == 3
    assert parse_design(design_to_toml(back)).to_dict() == back.to_dict()
