"""Issue 19's findings 5, 8 and 10 where the other browser tests leave them, repeated in
headless Chromium on a desktop and at 375 px, with axe on every page:

- 5: the console says the scheduler never ran (an alert), then when it last ran, and
  why a message waits and until when (quiet hours);
- 8: a list with national phone numbers and postcodes as typed imports through the form,
  and the participant export, downloaded as it is, imports into another campaign;
- 10: numbers as people write them ("2,500", never "2500.0"), the minimum effect in its
  own unit, and an end date in the past refused beside its field with nothing saved.
"""

from __future__ import annotations

import csv
import io
from datetime import UTC, date, datetime, timedelta

import pytest
from console_browser import HAVE_CHROMIUM, check_page, fresh
from sqlalchemy import select

pytestmark = [
    pytest.mark.browser,
    pytest.mark.slow,
    pytest.mark.skipif(not HAVE_CHROMIUM, reason="needs Debian's chromium at /usr/bin/chromium"),
]
FOLDER = "console-findings"


def test_finding_5_the_scheduler_and_held_messages_are_visible(
    officer, axe, council, make_campaign, db_session
):
    from playwright.sync_api import expect

    from nudge_app.models import OutboundMessage, Participant
    from nudge_app.scheduler import heartbeat
    from nudge_app.security import new_nonce, sha256_hex

    campaign = make_campaign(council, "council-consultation", status="running")
    slug, campaign_id = campaign.slug, campaign.id
    page = officer()
    page.goto(f"{page.base}/campaigns/{slug}/monitor")
    status = page.locator("#scheduler-status")
    expect(status).to_have_attribute("role", "alert")
    expect(status).to_contain_text("never run")
    check_page(page, axe, "scheduler-never-ran", folder=FOLDER)

    fresh(db_session)  # hold no read lock while writing beside the server
    heartbeat.beat("host:1:x", "scheduler", datetime.now(UTC))
    person = Participant(
        campaign_id=campaign_id,
        access_nonce=new_nonce(),
        email="held@example.org",
        access_token_hash=sha256_hex(new_nonce()),
    )
    db_session.add(person)
    db_session.flush()
    db_session.add(
        OutboundMessage(
            campaign_id=campaign_id,
            participant_id=person.id,
            kind="nudge",
            channel="email",
            due_at=datetime(2026, 7, 2, 7, 0, tzinfo=UTC),
            status="pending",
            error_kind="quiet_hours",
            idempotency_key="held-1",
        )
    )
    db_session.commit()
    page.reload()
    expect(status).to_have_attribute("role", "status")
    expect(status).to_have_text("The scheduler last ran just now.")
    expect(page.locator("main")).to_contain_text(
        "1 message held because of quiet hours, until 02 Jul 08:00."
    )
    check_page(page, axe, "scheduler-running-held", folder=FOLDER)
    page.goto(f"{page.base}/campaigns/{slug}")
    expect(page.locator("#scheduler-status")).to_contain_text("last ran")


def test_finding_8_national_numbers_import_and_the_export_imports_again(
    officer, axe, council, make_campaign, db_session, tmp_path
):
    from playwright.sync_api import expect

    from nudge_app.models import Participant

    first = make_campaign(council, "council-consultation")
    second = make_campaign(council, "council-consultation", name="The same people again")
    people = tmp_path / "people.csv"
    people.write_text(
        "external_ref,first_name,email,phone,postcode,age\n"
        "R1,Ann,,07700 900123,sw1a1aa,34\n"
        "R2,Bob,bob@example.org,+44 7700 900124,M1 1AE,51\n"
        "R3,Cat,cat@example.org,(07700) 900-125,,62\n"
    )
    page = officer()
    page.goto(f"{page.base}/campaigns/{first.slug}/participants")
    page.set_input_files("#file", str(people))
    page.click("text=Check and import")
    expect(page.locator(".flash")).to_contain_text("Imported 3 participant")
    check_page(page, axe, "imported-national", folder=FOLDER)

    export = page.request.get(f"{page.base}/campaigns/{first.slug}/participants.csv")
    assert export.status == 200
    text = export.text()
    rows = list(csv.DictReader(io.StringIO(text, newline="")))
    assert [r["phone"] for r in rows] == ["+447700900123", "+447700900124", "+447700900125"]
    assert [r["postcode"] for r in rows] == ["SW1A 1AA", "M1 1AE", ""]
    assert not any(cell.startswith("'") for r in rows for cell in r.values())
    exported = tmp_path / "export.csv"
    exported.write_bytes(export.body())

    page.goto(f"{page.base}/campaigns/{second.slug}/participants")
    page.set_input_files("#file", str(exported))
    page.click("text=Check and import")
    expect(page.locator(".flash")).to_contain_text("Imported 3 participant")
    check_page(page, axe, "export-imported-again", folder=FOLDER)
    session = fresh(db_session)

    def details(campaign):
        return session.execute(
            select(Participant.external_ref, Participant.phone, Participant.postcode)
            .where(Participant.campaign_id == campaign.id)
            .order_by(Participant.external_ref)
        ).all()

    assert details(second) == details(first)


def test_finding_10_numbers_minimum_effect_and_a_past_end_date(
    officer, axe, council, make_campaign, db_session
):
    from playwright.sync_api import expect

    from nudge_app.models import Campaign

    campaign = make_campaign(council, planned_sample_size=2500)
    page = officer()
    page.goto(f"{page.base}/campaigns/{campaign.slug}")
    main = page.locator("main")
    expect(main).to_contain_text("2,500")
    expect(main).not_to_contain_text("2500.0")
    expect(main).to_contain_text("a rise of 0.03 in the proportion")
    expect(main).to_contain_text("3 percentage points")
    check_page(page, axe, "campaign-numbers", folder=FOLDER)

    page.goto(f"{page.base}/campaigns/{campaign.slug}/edit")
    past = (date.today() - timedelta(days=3)).isoformat()
    page.fill("#name", "Clean-up, renamed")
    page.fill("#end_date", past)
    page.click("button:has-text('Save settings')")
    beside = page.locator(".form-group:has(#end_date) .error-message")
    expect(beside).to_contain_text("in the past")
    assert (
        page.input_value("#end_date") == past and page.input_value("#name") == "Clean-up, renamed"
    )
    check_page(page, axe, "settings-past-end-date", folder=FOLDER)
    saved = fresh(db_session).get(Campaign, campaign.id)
    assert saved.end_date != past and saved.name != "Clean-up, renamed"
