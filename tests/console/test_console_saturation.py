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
        ({"cluster": ""}, "set randomization.cluster"),
    ):
        refused = client.post(f"/campaigns/{campaign.slug}/edit", data=_settings(token, **changes))
        assert refused.status_code == 422, changes
        beside = console.errors(refused.get_data(as_text=True), "saturations")
        assert any(expected in e for e in beside), (changes, beside)
    text = client.get(f"/campaigns/{campaign.slug}/design.toml").get_data(as_text=True)
    assert "saturations" not in text  # nothing was saved
