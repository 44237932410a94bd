"""Reports and console pages as officers meet them (issue 19, finding 10): the report in
the console's frame, a styled "not ready", no report link on drafts, "delivered" counted
once for monitoring and the report, strata in band order, numbers as people write them,
no end date in the past, staff wording on console errors, a favicon."""

from __future__ import annotations

import re
from datetime import date, timedelta

import pytest
from sqlalchemy import select

from experiments.bands import DEFAULT_AGE_BANDS, DEFAULT_SELF_EFFICACY_BANDS, stratum_order
from experiments.design import DesignError
from nudge_app.formats import number


@pytest.fixture
def running(council, make_campaign):
    return make_campaign(council, status="running")


@pytest.fixture
def signed_in(app):
    """signed_in(council, role) -> (a fresh client signed in with that role, user, None)."""
    from nudge_app.auth import SESSION_ID
    from nudge_app.extensions import db
    from nudge_app.services import staff_sessions
    from nudge_app.services.staff import create_user

    def make(council, role: str = "designer"):
        user = create_user(council, f"{role}@{council.slug}.gov.uk", role, "a long password 123")
        token = staff_sessions.start(user)
        db.session.commit()
        client = app.test_client()
        with client.session_transaction() as session:
            session[SESSION_ID] = token
        return client, user, None

    return make


def test_report_sits_in_the_console_frame(running, populate, staff_client):
    populate(running, n=300, seed=3)
    page = staff_client(running.council).get(f"/reports/{running.slug}")
    html = page.get_data(as_text=True)
    assert page.status_code == 200
    assert 'class="top"' in html and "nudge · council console" in html  # the header
    assert f'href="/campaigns/{running.slug}"' in html and "Back to the campaign" in html
    assert 'rel="stylesheet" href="/reports/static/report.css"' in html
    assert "<style" not in html and html.count("<h1>") == 1
    assert "Effects against control" in html


def test_report_not_ready_is_a_console_page(council, make_campaign, staff_client):
    draft = make_campaign(council)
    page = staff_client(council).get(f"/reports/{draft.slug}")
    html = page.get_data(as_text=True)
    assert page.status_code == 200
    assert "<h1>Report not ready</h1>" in html and 'class="notice"' in html
    assert 'class="top"' in html and "console.css" in html
    assert "The campaign is a draft" in html


def test_report_link_only_once_launched(council, make_campaign, signed_in):
    draft = make_campaign(council)
    live = make_campaign(council, status="running")
    client, _, _ = signed_in(council, "designer")
    assert f"/reports/{draft.slug}" not in client.get(f"/campaigns/{draft.slug}").get_data(
        as_text=True
    )
    assert f"/reports/{live.slug}" in client.get(f"/campaigns/{live.slug}").get_data(as_text=True)


def test_monitoring_and_report_count_delivered_alike(running, populate, app, db_session):
    """Sent or delivered first messages count; failed ones and follow-ups do not."""
    from nudge_app.models import Assignment, OutboundMessage
    from nudge_app.services.monitoring import campaign_monitoring
    from nudge_app.services.reporting import campaign_report

    populate(running, n=240, seed=4)
    people = db_session.execute(
        select(Assignment.participant_id, Assignment.arm_id).where(
            Assignment.campaign_id == running.id
        )
    ).all()
    delivered = {
        pid
        for (pid,) in db_session.execute(
            select(OutboundMessage.participant_id).where(OutboundMessage.campaign_id == running.id)
        )
    }
    extra = []
    for i, (pid, arm_id) in enumerate(people):
        if pid in delivered:
            if i % 5 == 0:  # a receipt said it failed after all: not delivered
                db_session.execute(
                    OutboundMessage.__table__.update()
                    .where(OutboundMessage.participant_id == pid)
                    .values(status="failed")
                )
                delivered.discard(pid)
            elif i % 7 == 0:  # accepted, no receipt yet: delivered as far as we know
                db_session.execute(
                    OutboundMessage.__table__.update()
                    .where(OutboundMessage.participant_id == pid)
                    .values(status="sent")
                )
        elif i % 3 == 0:  # only a reminder reached them: their first message did not
            extra.append(
                OutboundMessage(
                    campaign_id=running.id,
                    participant_id=pid,
                    arm_id=arm_id,
                    kind="reminder",
                    channel="email",
                    due_at=running.launched_at,
                    status="delivered",
                    idempotency_key=f"test-reminder:{pid}",
                )
            )
    db_session.add_all(extra)
    db_session.commit()
    arm_key = {a.id: a.key for a in running.arms}
    expected = {a.key: 0 for a in running.arms}
    for pid, arm_id in people:
        if pid in delivered:
            expected[arm_key[arm_id]] += 1

    monitoring = campaign_monitoring(running)
    flow = {f.arm: f.delivered for f in campaign_report(running).analysis.flow}
    assert monitoring.delivered_by_arm == expected == flow


def test_strata_follow_the_bands_order(running, populate, signed_in):
    populate(running, n=400, seed=5)
    from nudge_app.services.monitoring import campaign_monitoring

    order = list(campaign_monitoring(running).by_stratum)
    ages, efficacy = DEFAULT_AGE_BANDS.levels, DEFAULT_SELF_EFFICACY_BANDS.levels
    expected = [
        f"age={a}|self_efficacy={e}"
        for a in ages
        for e in efficacy
        if f"age={a}|self_efficacy={e}" in order
    ]
    assert order == expected and len(order) == 9
    client, _, _ = signed_in(running.council, "designer")
    page = client.get(f"/campaigns/{running.slug}/monitor").get_data(as_text=True)
    shown = re.findall(r"<td>(age=[^<]+)</td>", page)
    assert shown == expected


def test_stratum_order_puts_missing_last_and_numbers_numerically():
    specs = [DEFAULT_SELF_EFFICACY_BANDS]
    labels = ["self_efficacy=high", "self_efficacy=NA", "self_efficacy=low", "self_efficacy=middle"]
    assert stratum_order(labels, specs) == [
        "self_efficacy=low",
        "self_efficacy=middle",
        "self_efficacy=high",
        "self_efficacy=NA",
    ]
    assert stratum_order(["ward=10", "ward=9", "ward=b", "ward=a"], []) == [
        "ward=9",
        "ward=10",
        "ward=a",
        "ward=b",
    ]


@pytest.mark.parametrize(
    ("value", "decimals", "text"),
    [
        (2500.0, None, "2,500"),
        (2500, None, "2,500"),
        (1234567, None, "1,234,567"),
        (2500.5, None, "2,500.5"),
        (0.03, None, "0.03"),
        (0.025, None, "0.025"),
        (1 / 3, None, "0.333"),
        (0.126, 2, "0.13"),
        (None, None, "–"),
        (float("nan"), None, "–"),
    ],
)
def test_numbers_are_written_as_people_write_them(value, decimals, text):
    assert number(value, decimals) == text


def test_campaign_page_numbers_and_minimum_effect_in_its_unit(council, make_campaign, signed_in):
    campaign = make_campaign(council)
    campaign.planned_sample_size = 2500
    from nudge_app.extensions import db

    db.session.commit()
    client, _, _ = signed_in(council, "designer")
    page = client.get(f"/campaigns/{campaign.slug}").get_data(as_text=True)
    assert "2,500" in page and "2500.0" not in page and "1.0</td>" not in page
    # Typed as a proportion (0.03), shown as one, with the points beside it.
    assert "a rise of 0.03 in the proportion" in page and "3 percentage points" in page
    assert not re.search(r"\d\.0 h<", page)  # follow-up offsets: "72 h", not "72.0 h"


def test_an_end_date_in_the_past_is_refused(council, make_campaign, db_session):
    from nudge_app.services import campaigns
    from nudge_app.services.campaigns import CampaignStateError, design_of

    campaign = make_campaign(council)
    design = design_of(campaign)
    design.end_date = (date.today() - timedelta(days=2)).isoformat()
    with pytest.raises(DesignError) as info:
        campaigns.update_design(campaign, design, actor="test")
    assert [p.path for p in info.value.problems] == ["campaign.end_date"]
    assert "in the past" in str(info.value)
    db_session.rollback()
    design = design_of(campaign)
    design.end_date = (date.today() + timedelta(days=30)).isoformat()
    campaigns.update_design(campaign, design, actor="test")
    db_session.commit()
    with pytest.raises(DesignError):
        design.end_date = "2020-01-31"
        campaigns.create_campaign(council, design, actor="test")
    db_session.rollback()
    # A date that has passed since it was set stops the launch, with the reason.
    campaign.end_date = "2020-01-31"
    with pytest.raises(CampaignStateError, match="end date 2020-01-31 has passed"):
        campaigns.launch_campaign(campaign, actor="test")
    db_session.rollback()


def test_console_form_refuses_a_past_end_date_beside_the_field(council, make_campaign, signed_in):
    campaign = make_campaign(council)
    client, _, _ = signed_in(council, "designer")
    form = client.get(f"/campaigns/{campaign.slug}/design").get_data(as_text=True)
    found = re.search(r'name="csrf_token" value="([^"]+)"', form)
    token = found.group(1) if found else ""
    upload = client.get(f"/campaigns/{campaign.slug}/design.toml").get_data(as_text=True)
    text = upload.replace("[campaign]\n", '[campaign]\nend_date = "2020-01-31"\n', 1)
    import io

    response = client.post(
        f"/campaigns/{campaign.slug}/design",
        data={"csrf_token": token, "design_file": (io.BytesIO(text.encode()), "design.toml")},
        content_type="multipart/form-data",
    )
    assert response.status_code == 422
    assert "in the past" in response.get_data(as_text=True)


def test_console_errors_speak_to_staff(council, signed_in, client):
    staff, _, _ = signed_in(council, "designer")
    for path in ("/campaigns/no-such-campaign", "/no-such-page"):
        page = staff.get(path)
        html = page.get_data(as_text=True)
        assert page.status_code == 404, path
        assert "Not found in the console" in html and "Back to your campaigns" in html
        assert "letter, email or text message" not in html  # the residents' wording
        assert 'class="top"' in html
    resident = client.get("/p/not-a-token")
    assert resident.status_code == 404
    assert "letter, email or text message" in resident.get_data(as_text=True)


def test_favicon(client, council, signed_in):
    with client.get("/favicon.ico") as icon:
        assert icon.status_code == 200 and icon.mimetype == "image/svg+xml"
        assert b"<svg" in icon.data
    staff, _, _ = signed_in(council, "designer")
    assert 'rel="icon"' in staff.get("/").get_data(as_text=True)
    assert 'rel="icon"' in client.get("/login").get_data(as_text=True)
