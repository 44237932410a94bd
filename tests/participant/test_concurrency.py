"""Simultaneous requests on a real threaded server: one state, one assignment, one arm.

Fifty requests with the same token arrive together (a person double-clicking, a mail
client and a phone opening the same link, a retry storm); the database must end with
one of everything and every response must show the same arm.
"""

from __future__ import annotations

import re
from concurrent.futures import ThreadPoolExecutor

import requests
from participant_helpers import FORM_KEY_RE, csrf_of
from sqlalchemy import func, select

from nudge_app.db import utcnow
from nudge_app.extensions import db
from nudge_app.models import Assignment, Event, Participant, SurveyResponse

N = 50
ARM_RE = re.compile(r'data-arm="([^"]+)"')


def _count(model, *where) -> int:
    db.session.commit()  # a fresh read transaction: see what the server committed
    value = db.session.scalar(select(func.count()).select_from(model).where(*where))
    db.session.commit()
    return value


def _together(fn, n=N):
    with ThreadPoolExecutor(max_workers=n) as pool:
        return list(pool.map(lambda _: fn(), range(n)))


def _ready_for_the_nudge(running, make_person):
    """A person who consented and answered the baseline, not yet randomized."""
    p, token = make_person(running)
    p.consent_status, p.consent_basis, p.consented_at = "given", "consent", utcnow()
    p.age, p.gender, p.se_safety, p.se_environment, p.se_health = 29, "man", 1, 2, 2
    p.self_efficacy = 5 / 3
    p.baseline_completed_at = utcnow()
    db.session.commit()
    return p.id, token


def test_fifty_simultaneous_first_visits_give_one_assignment_and_one_arm(
    running, make_person, live_server
):
    pid, token = _ready_for_the_nudge(running, make_person)
    url = f"{live_server.url}/p/{token}"

    responses = _together(lambda: requests.get(url, timeout=60))
    assert [r.status_code for r in responses] == [200] * N
    arms = {ARM_RE.search(r.text).group(1) for r in responses}
    assert len(arms) == 1
    assert _count(Assignment, Assignment.participant_id == pid) == 1
    assert _count(Event, Event.participant_id == pid, Event.kind == "exposure") == 1
    assert _count(Event, Event.participant_id == pid, Event.kind == "visit") == 1
    db.session.commit()
    arm_key = (
        db.session.scalars(select(Assignment).where(Assignment.participant_id == pid)).one().arm.key
    )
    assert arms == {arm_key}

    # Link scanners: HEAD and GET of every link, many times: never a join.
    for path in ("", "/join", "/follow-up", "/opt-out"):
        _together(lambda path=path: requests.head(url + path, timeout=60), n=10)
        _together(lambda path=path: requests.get(url + path, timeout=60), n=10)
    assert _count(Event, Event.participant_id == pid, Event.kind == "join") == 0
    assert _count(Event, Event.participant_id == pid, Event.kind == "opt_out") == 0


def test_fifty_simultaneous_baseline_submissions_store_one(running, make_person, live_server):
    p, token = make_person(running)
    p.consent_status, p.consented_at = "given", utcnow()
    db.session.commit()
    pid = p.id
    url = f"{live_server.url}/p/{token}"
    session = requests.Session()
    session.get(url, timeout=60)
    form = {
        "age": "44",
        "gender": "prefer_not_to_say",
        "se_safety": "3",
        "se_environment": "3",
        "se_health": "3",
    }
    cookies = session.cookies.get_dict()
    responses = _together(
        lambda: requests.post(
            url + "/baseline", data=form, cookies=cookies, allow_redirects=False, timeout=60
        )
    )
    assert [r.status_code for r in responses] == [303] * N
    assert _count(SurveyResponse, SurveyResponse.participant_id == pid) == 1
    assert _count(Assignment, Assignment.participant_id == pid) == 1
    assert _count(Event, Event.participant_id == pid, Event.kind == "baseline") == 1


def test_fifty_simultaneous_open_enrolments_with_one_form_create_one_person(running, live_server):
    url = f"{live_server.url}/p/join/{running.open_code}"
    session = requests.Session()
    html = session.get(url, timeout=60).text
    form = {
        "csrf_token": csrf_of(html),
        "form_key": FORM_KEY_RE.search(html).group(1),
        "decision": "agree",
    }
    cookies = session.cookies.get_dict()
    responses = _together(
        lambda: requests.post(url, data=form, cookies=cookies, allow_redirects=False, timeout=60)
    )
    assert [r.status_code for r in responses] == [303] * N
    assert len({r.headers["Location"] for r in responses}) == 1
    assert _count(Participant, Participant.campaign_id == running.id) == 1


def test_sqlite_pages_read_without_the_write_lock_and_write_after_it(
    running, make_person, client, database_url
):
    """SQLite: a page's reads run outside a transaction and its first write takes the lock.

    Another process holds the write lock: a page that only reads is served meanwhile, and
    a page that writes waits for the lock, then writes (a held lock would otherwise make
    every resident's page wait for the slowest writer).
    """
    import sqlite3
    import threading

    import pytest

    if not database_url.startswith("sqlite"):
        pytest.skip("SQLite's single write lock")
    p, token = make_person(running)
    assert client.get(f"/p/{token}").status_code == 200  # the visit: written
    other = sqlite3.connect(database_url.removeprefix("sqlite:///"), isolation_level=None)
    other.execute("BEGIN IMMEDIATE")
    answers: dict[str, int] = {}

    def request(name, send):
        answers[name] = send().status_code

    reader = threading.Thread(target=request, args=("read", lambda: client.get(f"/p/{token}")))
    reader.start()
    reader.join(timeout=20)  # a reader waiting for the lock would wait 30 s, then fail
    assert answers.get("read") == 200

    writer_client, agree = client.application.test_client(), {"decision": "agree"}
    writer = threading.Thread(
        target=request,
        args=("write", lambda: writer_client.post(f"/p/{token}/consent", data=agree)),
    )
    writer.start()
    writer.join(timeout=1)
    assert "write" not in answers  # waits for the other writer
    assert _count(Event, Event.participant_id == p.id, Event.kind == "consent") == 0
    other.execute("COMMIT")
    other.close()
    writer.join(timeout=20)
    assert answers.get("write") == 303
    assert _count(Event, Event.participant_id == p.id, Event.kind == "consent") == 1
