"""The console end to end with the test client: sign in, create, edit, preview, import, launch."""

from __future__ import annotations

import io

from editor_forms import settings_form
from sqlalchemy import func, select

from nudge_app.models import Arm, AuditEntry, Campaign, Participant
from nudge_app.security import participant_token

CSV = "external_ref,first_name,email,age,gender,se_safety,se_environment,se_health\n" + "".join(
    f"R{i},Ann{i},ann{i}@example.org,{20 + i},woman,3,3,3\n" for i in range(12)
)


def test_sign_in_wrong_password_then_right(csrf_app, council, make_user, console):
    user = make_user(council, "designer")
    client = csrf_app.test_client()
    assert client.get("/").status_code == 302
    bad = console.sign_in(client, user.email, "wrong password!")
    assert bad.status_code == 401 and "not right" in bad.get_data(as_text=True)
    good = console.sign_in(client, user.email, console.password)
    assert good.status_code == 302
    page = client.get("/")
    assert page.status_code == 200 and user.email in page.get_data(as_text=True)
    token = console.csrf(client, "/")
    assert client.post("/logout", data={"csrf_token": token}).status_code == 302
    assert client.get("/").status_code == 302


def test_create_edit_preview_import_launch(signed_in, council, db_session, console):
    client, user, token = signed_in(council, "designer")
    created = client.post(
        "/campaigns/new",
        data={
            "csrf_token": token,
            "source": "form",
            "name": "Litter pick trial",
            "policy_domain": "environment",
            "enrolment_mode": "list",
            "activity_name": "Saturday litter pick",
            "activity_where": "the park gates",
            "activity_when": "Saturdays at 10:00",
        },
    )
    assert created.status_code == 302, created.get_data(as_text=True)
    slug = created.headers["Location"].rsplit("/", 1)[1]
    assert slug == "litter-pick-trial"
    page = client.get(f"/campaigns/{slug}").get_data(as_text=True)
    assert "Saturday litter pick" in page and "Power estimate" in page

    # Edit an arm: an unknown placeholder is refused with its field path, nothing saved.
    form = {
        "csrf_token": token,
        "key": "message",
        "arm_name": "Neighbours join",
        "weight": "1",
        "framing": "Your neighbours are joining.",
        "page": "Dear {first_name}, join us {shoe_size}",
        "email_subject": "Join us",
        "email_body": "Hello {first_name}: {link} Stop: {opt_out_link}",
        "sms": "Join: {link} Stop: {opt_out_link}",
    }
    refused = client.post(f"/campaigns/{slug}/arms/message", data=form)
    assert refused.status_code == 422
    (beside,) = console.errors(refused.get_data(as_text=True), "page")
    assert beside.startswith("unknown placeholder {shoe_size}")
    assert 'value="Neighbours join"' in refused.get_data(as_text=True)  # kept as typed
    form["page"] = "Dear {first_name}, <b>your street</b> in {neighbourhood} joins the {activity}."
    saved = client.post(f"/campaigns/{slug}/arms/message", data=form)
    assert saved.status_code == 302
    db_session.expire_all()
    arm = db_session.scalar(select(Arm).where(Arm.key == "message"))
    assert arm.name == "Neighbours join"

    preview = client.get(f"/campaigns/{slug}/preview").get_data(as_text=True)
    assert (
        "Dear Alex, &lt;b&gt;your street&lt;/b&gt; in Riverside joins the Saturday litter pick"
        in (preview)
    )
    assert "<b>your street</b>" not in preview
    assert "fragment" in preview and "as Notify counts this message" in preview

    imported = client.post(
        f"/campaigns/{slug}/participants",
        data={"csrf_token": token, "file": (io.BytesIO(CSV.encode()), "people.csv")},
        content_type="multipart/form-data",
    )
    assert imported.status_code == 302, imported.get_data(as_text=True)
    campaign = db_session.scalar(select(Campaign).where(Campaign.slug == slug))
    assert (
        db_session.scalar(
            select(func.count(Participant.id)).where(Participant.campaign_id == campaign.id)
        )
        == 12
    )
    as_r3 = client.get(f"/campaigns/{slug}/preview?participant=R3").get_data(as_text=True)
    assert "Dear Ann3" in as_r3
    r3 = db_session.scalar(select(Participant).where(Participant.external_ref == "R3"))
    real_token = participant_token(client.application.config["SECRET_KEY"], r3.access_nonce)
    assert real_token not in as_r3  # previews show example links, never a working one

    checklist = client.get(f"/campaigns/{slug}/launch")
    assert checklist.status_code == 200 and "Launch checklist" in checklist.get_data(as_text=True)
    unconfirmed = client.post(f"/campaigns/{slug}/launch", data={"csrf_token": token})
    assert unconfirmed.status_code == 422
    assert console.errors(unconfirmed.get_data(as_text=True), "confirm")
    db_session.expire_all()
    assert db_session.scalar(select(Campaign.status).where(Campaign.slug == slug)) == "draft"
    launched = client.post(f"/campaigns/{slug}/launch", data={"csrf_token": token, "confirm": "y"})
    assert launched.status_code == 303
    db_session.expire_all()
    campaign = db_session.scalar(select(Campaign).where(Campaign.slug == slug))
    assert campaign.status == "running" and campaign.design_hash
    # Later edits are refused with a clear message, and nothing changes.
    form["arm_name"] = "Changed after launch"
    after = client.post(f"/campaigns/{slug}/arms/message", data=form, follow_redirects=True)
    assert "frozen" in after.get_data(as_text=True)
    db_session.expire_all()
    assert db_session.scalar(select(Arm.name).where(Arm.key == "message")) == "Neighbours join"
    monitor = client.get(f"/campaigns/{slug}/monitor")
    assert monitor.status_code == 200
    assert f"/reports/{slug}" in monitor.get_data(as_text=True)
    # Running and short of its planned sample: the page says which intervals are safe.
    assert "Interim:" in monitor.get_data(as_text=True)
    assert "always-valid intervals" in monitor.get_data(as_text=True)
    actions = set(db_session.scalars(select(AuditEntry.action)))
    assert {"campaign.create", "campaign.edit", "participants.import", "campaign.launch"} <= actions


def test_bad_import_shows_rows_and_downloadable_report(signed_in, council, make_campaign):
    campaign = make_campaign(council)
    client, _, token = signed_in(council, "designer")
    bad = CSV + "R99,Bob,bob@example,200,man,3,3,3\n"
    response = client.post(
        f"/campaigns/{campaign.slug}/participants",
        data={"csrf_token": token, "file": (io.BytesIO(bad.encode()), "people.csv")},
        content_type="multipart/form-data",
    )
    page = response.get_data(as_text=True)
    assert response.status_code == 422 and "Nothing was imported" in page
    assert '<td class="num">14</td><td>email</td>' in page
    link = page.split("import-errors/")[1].split('"')[0]
    report = client.get(f"/campaigns/{campaign.slug}/participants/import-errors/{link}")
    assert report.status_code == 200
    assert "14,email,R99" in report.get_data(as_text=True)
    assert "14,age,R99" in report.get_data(as_text=True)


def test_design_download_and_upload_round_trip(signed_in, council, make_campaign, catalog_path):
    campaign = make_campaign(council)
    client, _, token = signed_in(council, "designer")
    text = client.get(f"/campaigns/{campaign.slug}/design.toml").get_data(as_text=True)
    assert "[[arms]]" in text
    changed = text.replace('name = "Your action counts"', 'name = "Your action still counts"')
    response = client.post(
        f"/campaigns/{campaign.slug}/design",
        data={"csrf_token": token, "design_file": (io.BytesIO(changed.encode()), "d.toml")},
        content_type="multipart/form-data",
    )
    assert response.status_code == 302
    again = client.get(f"/campaigns/{campaign.slug}/design.toml").get_data(as_text=True)
    assert "Your action still counts" in again
    broken = changed.replace("weight = 1\n", "weight = -1\n", 1)
    rejected = client.post(
        f"/campaigns/{campaign.slug}/design",
        data={"csrf_token": token, "design_file": (io.BytesIO(broken.encode()), "d.toml")},
        content_type="multipart/form-data",
    )
    assert rejected.status_code == 422
    # The problem is named in the officer's words first, the file's path beside it.
    assert "Arm 1: weight (<code>arms[0].weight</code>)" in rejected.get_data(as_text=True)


def test_settings_edit_goes_through_design_rules(signed_in, council, make_campaign, console):
    campaign = make_campaign(council)
    client, _, token = signed_in(council, "designer")
    page = client.get(f"/campaigns/{campaign.slug}/edit")
    assert page.status_code == 200
    data = settings_form(
        token,
        name="Renamed",
        stratum_0_labels="young, middle, older",
        moderators=["age", "joined"],
    )
    refused = client.post(f"/campaigns/{campaign.slug}/edit", data=data)
    assert refused.status_code == 422
    (beside,) = console.errors(refused.get_data(as_text=True), "moderators")
    assert "'joined'" in beside
    data["moderators"] = ["age"]
    saved = client.post(f"/campaigns/{campaign.slug}/edit", data=data)
    assert saved.status_code == 302
    shown = client.get(f"/campaigns/{campaign.slug}").get_data(as_text=True)
    assert "Renamed" in shown and "young / middle / older" in shown


def test_settings_name_secondary_outcomes_and_refuse_an_unknown_one_beside_the_field(
    signed_in, council, make_campaign, console, db_session
):
    """The analysis plan's secondary outcomes: ticked in the editor, kept in the design in
    the order offered, shown on the campaign page; a name the report does not know (a
    hand-made request) is refused beside the field and nothing is saved."""
    campaign = make_campaign(council)
    client, _, token = signed_in(council, "designer")
    data = settings_form(
        token,
        name="Clean-up",
        planned_sample_size=None,
        secondary_outcomes=["attended", "turned_up"],
    )
    before = campaign.design_hash, dict(campaign.analysis_plan)
    refused = client.post(f"/campaigns/{campaign.slug}/edit", data=data)
    assert refused.status_code == 422
    (beside,) = console.errors(refused.get_data(as_text=True), "secondary_outcomes")
    assert "unknown secondary outcome 'turned_up'" in beside
    db_session.expire_all()
    assert (campaign.design_hash, campaign.analysis_plan) == before
    data["secondary_outcomes"] = ["collective_coproduction", "attended"]
    assert client.post(f"/campaigns/{campaign.slug}/edit", data=data).status_code == 302
    db_session.expire_all()
    assert campaign.analysis_plan["secondary_outcomes"] == ["collective_coproduction", "attended"]
    shown = _settings_page_values(
        client.get(f"/campaigns/{campaign.slug}/edit").get_data(as_text=True)
    )
    assert shown["secondary_outcomes"] == ["attended", "collective_coproduction"]
    page = client.get(f"/campaigns/{campaign.slug}").get_data(as_text=True)
    assert "collective_coproduction, attended" in page
    # None ticked: back to every outcome the data hold.
    del data["secondary_outcomes"]
    assert client.post(f"/campaigns/{campaign.slug}/edit", data=data).status_code == 302
    db_session.expire_all()
    assert campaign.analysis_plan.get("secondary_outcomes") is None


def test_follow_up_editor_and_preview_of_every_follow_up(
    signed_in, council, make_campaign, console
):
    campaign = make_campaign(council)
    client, _, token = signed_in(council, "designer")
    slug = campaign.slug
    form = {
        "csrf_token": token,
        "key": "sms-nudge",
        "kind": "reminder",
        "offset_hours": "24",
        "expires_after_hours": "48",
        "channel": "sms",
        "condition": "not-joined",
        "sms": "",
    }
    refused = client.post(f"/campaigns/{slug}/follow-ups/new", data=form)
    assert refused.status_code == 422
    assert console.errors(refused.get_data(as_text=True), "sms") == [
        "an SMS step needs its sms text"
    ]
    form["sms"] = "{council}: {framing} {link} Stop: {opt_out_link}"
    assert client.post(f"/campaigns/{slug}/follow-ups/new", data=form).status_code == 302
    preview = client.get(f"/campaigns/{slug}/preview").get_data(as_text=True)
    assert 'id="step-reminder"' in preview and 'id="step-follow-up-survey"' in preview
    assert 'id="step-sms-nudge"' in preview
    # The reminder keeps each arm's framing: the efficacy arm's sentence appears.
    assert "Last year twelve neighbours cleared 300 bags of litter" in preview
    assert "Subject: A reminder: Monthly street clean-up" in preview


def test_downloadable_template_imports_cleanly(signed_in, council, make_campaign, db_session):
    campaign = make_campaign(council)
    client, _, token = signed_in(council, "designer")
    template = client.get(f"/campaigns/{campaign.slug}/participants/template.csv")
    assert template.status_code == 200
    response = client.post(
        f"/campaigns/{campaign.slug}/participants",
        data={"csrf_token": token, "file": (io.BytesIO(template.data), "template.csv")},
        content_type="multipart/form-data",
        follow_redirects=True,
    )
    assert "Imported 1 participant(s)" in response.get_data(as_text=True)
    p = db_session.scalar(select(Participant).where(Participant.campaign_id == campaign.id))
    assert (p.external_ref, p.gender, p.phone, p.self_efficacy) == (
        "R0001",
        "woman",
        "+447700900123",
        3.0,
    )


def test_removing_an_arm_or_a_step_goes_through_the_design_rules(
    signed_in, council, make_campaign, db_session
):
    from nudge_app.models import FollowUpStep

    campaign = make_campaign(council)
    client, _, token = signed_in(council, "designer")
    slug = campaign.slug
    refused = client.post(
        f"/campaigns/{slug}/arms/control/delete", data={"csrf_token": token}, follow_redirects=True
    )
    assert refused.status_code == 200
    assert "The arm was not removed" in refused.get_data(as_text=True)
    assert "at least two arms" in refused.get_data(as_text=True)
    db_session.expire_all()
    keys = set(db_session.scalars(select(Arm.key).where(Arm.campaign_id == campaign.id)))
    assert keys == {"control", "efficacy"}

    removed = client.post(
        f"/campaigns/{slug}/follow-ups/reminder/delete",
        data={"csrf_token": token},
        follow_redirects=True,
    )
    assert "Follow-up &#39;reminder&#39; removed." in removed.get_data(as_text=True)
    steps = set(
        db_session.scalars(select(FollowUpStep.key).where(FollowUpStep.campaign_id == campaign.id))
    )
    assert steps == {"follow-up-survey"}
    missing = client.post(f"/campaigns/{slug}/follow-ups/nope/delete", data={"csrf_token": token})
    assert missing.status_code == 404


def test_mechanism_tag_and_activity_kind_are_edited_and_kept(
    signed_in, council, make_campaign, db_session
):
    campaign = make_campaign(council)
    client, _, token = signed_in(council, "designer")
    page = client.get(f"/campaigns/{campaign.slug}/arms/efficacy").get_data(as_text=True)
    assert _settings_page_values(page)["mechanism_tag"] == "self-efficacy"  # the catalog's
    form = {
        "csrf_token": token,
        "key": "efficacy",
        "arm_name": "Your action counts",
        "weight": "1",
        "mechanism_tag": "control",
        "page": "Dear {first_name}, join the {activity}.",
    }
    refused = client.post(f"/campaigns/{campaign.slug}/arms/efficacy", data=form)
    assert refused.status_code == 422
    assert "only the control arm is tagged" in refused.get_data(as_text=True)
    form["mechanism_tag"] = "peer"
    assert client.post(f"/campaigns/{campaign.slug}/arms/efficacy", data=form).status_code == 302
    db_session.expire_all()
    assert db_session.scalar(select(Arm.mechanism_tag).where(Arm.key == "efficacy")) == "peer"
    edit = client.get(f"/campaigns/{campaign.slug}/edit").get_data(as_text=True)
    assert _settings_page_values(edit)["activity_kind"] == "clean-up"
    text = client.get(f"/campaigns/{campaign.slug}/design.toml").get_data(as_text=True)
    assert 'kind = "clean-up"' in text and 'mechanism_tag = "peer"' in text


def _settings_page_values(page: str) -> dict:
    """What the settings page shows in its inputs, selects and ticked boxes."""
    import html
    import re

    values = {
        m.group(1): html.unescape(m.group(2))
        for m in re.finditer(r'<input\b[^>]*?\sid="([^"]+)"[^>]*? value="([^"]*)"', page)
    }
    for name, body in re.findall(r'<select\b[^>]*?\sid="([^"]+)"[^>]*>(.*?)</select>', page, re.S):
        chosen = re.search(
            r'<option\b[^>]*? selected[^>]*? value="([^"]*)"|<option\b[^>]*? value="([^"]*)"[^>]*? selected',
            body,
        )
        values[name] = (
            html.unescape(next(g for g in chosen.groups() if g is not None)) if chosen else None
        )
    for name in ("moderators", "covariates", "secondary_outcomes"):
        values[name] = re.findall(rf'name="{name}" value="([^"]+)" checked', page)
    return values


def test_settings_with_three_wrong_fields_shows_three_messages_and_keeps_every_value(
    signed_in, council, make_campaign, console, db_session
):
    """Issue 19, finding 1: every problem in one round, each beside its field, and every
    typed value (randomization, analysis plan, moderators, covariates) kept."""
    campaign = make_campaign(council)
    client, _, token = signed_in(council, "designer")
    data = {
        "csrf_token": token,
        "name": "Street clean-up, autumn",
        "description": "Typed, not saved",
        "policy_domain": "environment",
        "enrolment_mode": "survey-first",
        "language": "en",
        "planned_sample_size": "lots",  # wrong 1
        "end_date": "2027-03-01",
        "activity_name": "Autumn clean-up",
        "activity_where": "the library",
        "activity_when": "Sundays",
        "method": "simple",
        "seed": "4242",
        "block_multiples": "2, 3",
        "stratum_0_moderator": "age",
        "stratum_0_cuts": "30, 60",
        "stratum_0_labels": "young, middle, older",
        "stratum_2_moderator": "self_efficacy",
        "stratum_2_cuts": "2.5, nine",  # wrong 2 (typed in the third row)
        "primary_outcome": "participated",
        "correction": "bh",
        "alpha": "1.5",  # wrong 3
        "power": "0.9",
        "baseline_rate": "0.12",
        "minimum_effect": "0.04",
        "moderators": ["self_efficacy"],
        "covariates": ["age", "self_efficacy"],
    }
    refused = client.post(f"/campaigns/{campaign.slug}/edit", data=data)
    assert refused.status_code == 422
    page = refused.get_data(as_text=True)
    assert len(console.errors(page, "planned_sample_size")) == 1
    assert len(console.errors(page, "stratum_2_cuts")) == 1
    assert "'nine'" in console.errors(page, "stratum_2_cuts")[0]
    assert len(console.errors(page, "alpha")) == 1
    assert page.count('class="error-message"') == 3
    assert page.count("<li><a href=") == 3  # the summary links each one
    shown = _settings_page_values(page)
    for name, typed in data.items():
        if name in ("csrf_token", "description"):
            continue
        want = typed if isinstance(typed, list) else str(typed)
        assert shown[name] == want, (name, shown[name], want)
    assert "Typed, not saved" in page
    db_session.expire_all()
    assert campaign.name != "Street clean-up, autumn"  # nothing saved

    # Fixing the three and saving keeps what was typed before, moderators included.
    data.update(planned_sample_size="1200", stratum_2_cuts="2.5, 3.5", alpha="0.05")
    data["stratum_2_labels"] = "low, middle, high"
    saved = client.post(f"/campaigns/{campaign.slug}/edit", data=data)
    assert saved.status_code == 302, console.errors(saved.get_data(as_text=True), "alpha")
    shown = _settings_page_values(
        client.get(f"/campaigns/{campaign.slug}/edit").get_data(as_text=True)
    )
    assert shown["moderators"] == ["self_efficacy"]
    assert shown["covariates"] == ["age", "self_efficacy"]
    assert shown["method"] == "simple" and shown["seed"] == "4242"
    assert shown["stratum_1_moderator"] == "self_efficacy"  # rows close up once saved
    assert shown["correction"] == "bh" and shown["power"] == "0.9"


def test_survey_step_without_its_link_is_refused_beside_the_field_naming_the_step(
    signed_in, council, make_campaign, console, db_session
):
    from nudge_app.models import FollowUpStep

    campaign = make_campaign(council)
    client, _, token = signed_in(council, "designer")
    page = client.get(f"/campaigns/{campaign.slug}/follow-ups/follow-up-survey")
    form = _settings_page_values(page.get_data(as_text=True))
    body = db_session.scalar(
        select(FollowUpStep.email_body_template).where(FollowUpStep.key == "follow-up-survey")
    )
    data = {
        "csrf_token": token,
        **{k: v for k, v in form.items() if isinstance(v, str)},
        "email_body": body.replace("{survey_link}", "{link}"),
    }
    refused = client.post(f"/campaigns/{campaign.slug}/follow-ups/follow-up-survey", data=data)
    assert refused.status_code == 422
    (beside,) = console.errors(refused.get_data(as_text=True), "email_body")
    assert beside.startswith("survey step 'follow-up-survey' must include {survey_link}")
    db_session.expire_all()
    assert "{survey_link}" in db_session.scalar(
        select(FollowUpStep.email_body_template).where(FollowUpStep.key == "follow-up-survey")
    )


def _arm_form(client, slug: str, key: str, token: str) -> dict:
    import html
    import re

    page = client.get(f"/campaigns/{slug}/arms/{key}").get_data(as_text=True)
    data = _settings_page_values(page)
    data = {k: v for k, v in data.items() if isinstance(v, str)}
    for name in ("mechanism", "page", "email_body", "sms"):
        found = re.search(rf'<textarea [^>]*name="{name}"[^>]*>\n?(.*?)</textarea>', page, re.S)
        data[name] = html.unescape(found.group(1))
    data["control"] = re.search(r'name="control" value="(\w+)" checked', page).group(1)
    data["csrf_token"] = token
    return data


def test_control_flag_moves_only_when_asked_in_words(
    signed_in, council, make_campaign, console, db_session
):
    """Issue 19, finding 6: choosing the control on another arm says what it does; the only
    control cannot simply be unticked."""
    campaign = make_campaign(council)
    client, _, token = signed_in(council, "designer")
    slug = campaign.slug
    page = client.get(f"/campaigns/{slug}/arms/efficacy").get_data(as_text=True)
    assert "make this arm the control instead of" in page and "which becomes a message arm" in page

    control = _arm_form(client, slug, "control", token)
    control["control"] = "no"
    refused = client.post(f"/campaigns/{slug}/arms/control", data=control)
    assert refused.status_code == 422
    (beside,) = console.errors(refused.get_data(as_text=True), "control")
    assert "only control arm" in beside

    efficacy = _arm_form(client, slug, "efficacy", token)
    assert efficacy["control"] == "no"
    efficacy["control"] = "yes"
    efficacy["mechanism_tag"] = ""
    moved = client.post(f"/campaigns/{slug}/arms/efficacy", data=efficacy, follow_redirects=True)
    assert moved.status_code == 200
    assert "&#39;efficacy&#39; is now the control arm" in moved.get_data(as_text=True)
    db_session.expire_all()
    flags = dict(db_session.execute(select(Arm.key, Arm.is_control)).all())
    assert flags == {"control": False, "efficacy": True}


def test_a_chosen_design_file_is_used_without_its_radio(
    signed_in, council, catalog_path, console, db_session
):
    """Issue 19, finding 6: the file was ignored unless its radio button was picked too."""
    client, _, token = signed_in(council, "designer")
    text = catalog_path("council-consultation").read_text()
    created = client.post(
        "/campaigns/new",
        data={
            "csrf_token": token,
            "source": "form",  # the default, left as it was
            "design_file": (io.BytesIO(text.encode()), "consultation.toml"),
        },
        content_type="multipart/form-data",
    )
    assert created.status_code == 302, created.get_data(as_text=True)
    slug = created.headers["Location"].rsplit("/", 1)[1]
    campaign = db_session.scalar(select(Campaign).where(Campaign.slug == slug))
    assert len(campaign.arms) >= 2 and campaign.follow_up_steps

    broken = text.replace("{survey_link}", "{link}")
    refused = client.post(
        "/campaigns/new",
        data={"csrf_token": token, "design_file": (io.BytesIO(broken.encode()), "c.toml")},
        content_type="multipart/form-data",
    )
    assert refused.status_code == 422
    (beside,) = console.errors(refused.get_data(as_text=True), "design_file")
    assert beside.startswith(
        "Follow-up step 'follow-up-survey': email body (follow_ups[1].messages.email_body)"
    )
    assert "survey step 'follow-up-survey' must include {survey_link}" in beside
    assert 'id="source-file-radio" name="source" value="file" checked' in refused.get_data(
        as_text=True
    )


def test_launched_campaign_settings_render_read_only(signed_in, council, make_campaign):
    campaign = make_campaign(council, status="running")
    client, _, token = signed_in(council, "designer")
    overview = client.get(f"/campaigns/{campaign.slug}").get_data(as_text=True)
    assert "(read-only)" in overview and ">View<" in overview
    for path in ("edit", "arms/efficacy", "follow-ups/reminder"):
        page = client.get(f"/campaigns/{campaign.slug}/{path}").get_data(as_text=True)
        assert '<fieldset class="plain" disabled>' in page, path
        assert 'id="read-only"' in page and "is frozen, so this page is read-only" in page
        assert 'type="submit">Save' not in page and "Remove this" not in page
    after = client.post(
        f"/campaigns/{campaign.slug}/edit", data={"csrf_token": token, "name": "Changed"}
    )
    assert after.status_code == 302
