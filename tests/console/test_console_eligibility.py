"""The campaign editor's eligibility rules: one per line, checked by the design rules'
grammar (a bad rule is refused, quoted, and nothing is saved), shown back in the form."""

from __future__ import annotations

from editor_forms import settings_form as _settings

from experiments.design import parse_design


def test_editor_saves_and_shows_eligibility_rules(signed_in, council, make_campaign):
    campaign = make_campaign(council)
    client, _, token = signed_in(council, "designer")
    page = client.get(f"/campaigns/{campaign.slug}/edit").get_data(as_text=True)
    assert (
        'id="eligibility"' in page and "individual_coproduction (how many ticked, 0 to 6)" in page
    )
    rules = "individual_coproduction >= 1\r\n\r\n  collective_coproduction = never  \r\n"
    saved = client.post(
        f"/campaigns/{campaign.slug}/edit", data=_settings(token, eligibility=rules)
    )
    assert saved.status_code == 302, saved.get_data(as_text=True)
    design = parse_design(
        client.get(f"/campaigns/{campaign.slug}/design.toml").get_data(as_text=True)
    )
    assert design.eligibility.require == [
        "individual_coproduction >= 1",
        "collective_coproduction = never",
    ]
    page = client.get(f"/campaigns/{campaign.slug}/edit").get_data(as_text=True)
    assert "individual_coproduction &gt;= 1\ncollective_coproduction = never</textarea>" in page
    overview = client.get(f"/campaigns/{campaign.slug}").get_data(as_text=True)
    assert "<code>individual_coproduction &gt;= 1</code>" in overview
    assert "count eligible residents" in overview
    # Emptying the field: everyone who answers is eligible again.
    cleared = client.post(f"/campaigns/{campaign.slug}/edit", data=_settings(token, eligibility=""))
    assert cleared.status_code == 302
    text = client.get(f"/campaigns/{campaign.slug}/design.toml").get_data(as_text=True)
    assert "eligibility" not in text


def test_editor_refuses_a_bad_rule_quoting_it_and_saves_nothing(signed_in, council, make_campaign):
    campaign = make_campaign(council)
    client, _, token = signed_in(council, "designer")
    bad = "age >= 18\n__import__('os').system('id')"
    refused = client.post(
        f"/campaigns/{campaign.slug}/edit", data=_settings(token, eligibility=bad)
    )
    assert refused.status_code == 422
    page = refused.get_data(as_text=True)
    assert 'id="eligibility-error"' in page  # beside the field, in the error summary too
    assert (
        "rule &#34;__import__(&#39;os&#39;).system(&#39;id&#39;)&#34;: unexpected character" in page
    )
    # What was typed stays in the form.
    assert "age &gt;= 18\n__import__(&#39;os&#39;).system(&#39;id&#39;)</textarea>" in page
    text = client.get(f"/campaigns/{campaign.slug}/design.toml").get_data(as_text=True)
    assert "eligibility" not in text


LIST_CSV = (
    "external_ref,first_name,email,age,gender,se_safety,se_environment,se_health\n"
    + "".join(f"R{i:02d},Ann{i},ann{i}@example.org,{20 + i},woman,3,3,3\n" for i in range(12))
)


def test_launch_checklist_screens_the_imported_list_and_power_counts_the_eligible(
    signed_in, council, make_campaign, db_session
):
    import html
    import re

    import pytest

    from experiments.design import Eligibility
    from nudge_app.services import campaigns
    from nudge_app.services.participants_import import import_csv

    campaign = make_campaign(
        council, "council-consultation", eligibility=Eligibility(["age >= 30"])
    )
    import_csv(campaign, LIST_CSV)
    db_session.commit()
    client, _, _ = signed_in(council, "designer")
    page = client.get(f"/campaigns/{campaign.slug}/launch").get_data(as_text=True)
    row = re.search(r'<tr id="check-eligibility" class="(\w+)">(.*?)</tr>', page, re.S)
    assert row and row.group(1) == "ok"
    text = html.unescape(re.sub(r"<[^>]+>", " ", row.group(2)))
    assert "2 imported participant(s) meet the rules (age >= 30)" in text
    assert "10 will be screened out" in text

    # Rules added after the import read an answer the list does not carry: launch stops.
    later = make_campaign(council, "council-consultation")
    import_csv(later, LIST_CSV)
    later.eligibility = ["collective_coproduction = 0"]
    db_session.commit()
    page = client.get(f"/campaigns/{later.slug}/launch").get_data(as_text=True)
    row = re.search(r'<tr id="check-eligibility" class="(\w+)">', page)
    assert row and row.group(1) == "stop"
    with pytest.raises(campaigns.CampaignStateError, match="lack an answer the eligibility rules"):
        campaigns.launch_campaign(later, actor="test")
    db_session.rollback()
