"""The evidence library: closed campaigns' results stored (effects equal to their reports',
counts by band re-counted with pandas), the results pack exported (valid against its JSON
Schema, de-identified, audit-logged) and imported by another council (console and CLI),
malformed packs refused with every problem named and nothing imported, councils isolated,
and the "What has worked" page's pooled effects and forest plot."""

from __future__ import annotations

import copy
import io
import json
from pathlib import Path

import jsonschema
import numpy as np
import pandas as pd
import pytest
from sqlalchemy import func, select

from experiments.evidence.pack import SCHEMA_VERSION
from nudge_app.cli import main

PACK_SCHEMA = (
    Path(__file__).resolve().parents[2] / "experiments" / "evidence" / "results-pack.schema.json"
)


@pytest.fixture
def login(app, client):
    """login(council, role): the test client signed in as a staff member of that council."""
    from nudge_app.extensions import db
    from nudge_app.services.staff import create_user

    def sign_in(council, role="designer"):
        from nudge_app.auth import SESSION_ID
        from nudge_app.services import staff_sessions

        user = create_user(council, f"{role}@{council.slug}.example", role, "a long password 123")
        token = staff_sessions.start(user)
        db.session.commit()
        with client.session_transaction() as session:
            session[SESSION_ID] = token
        return client

    return sign_in


@pytest.fixture
def closed_campaigns(council, make_campaign, populate):
    """Two closed campaigns of `council` with data, as (campaign, written rows)."""
    from nudge_app.extensions import db
    from nudge_app.services.campaigns import close_campaign

    out = []
    for seed, effect in ((1, 0.10), (2, 0.04)):
        campaign = make_campaign(council, status="running")
        written = populate(campaign, n=500, seed=seed, effect=effect)
        close_campaign(campaign, actor="test")
        db.session.commit()
        out.append((campaign, written))
    return out


def counts(model) -> int:
    from nudge_app.extensions import db

    db.session.rollback()  # see what the commands committed
    return db.session.scalar(select(func.count()).select_from(model))


def test_closed_campaigns_are_recorded_with_their_reports_effects(closed_campaigns):
    from nudge_app.services import evidence_library, evidence_record
    from nudge_app.services.reporting import campaign_report

    council_id = closed_campaigns[0][0].council_id
    assert evidence_record.record_closed(council_id) == 2
    assert evidence_record.record_closed(council_id) == 0  # once each
    entries = evidence_library.library(council_id)
    assert [e.campaign_id for e in entries] == [c.id for c, _ in closed_campaigns]
    for (campaign, written), entry in zip(closed_campaigns, entries, strict=True):
        report = campaign_report(campaign)
        by_arm = {e.arm: e for e in report.analysis.effects}
        frame = pd.DataFrame(written)
        tags = {a.key: a.mechanism_tag for a in campaign.arms}
        assert entry.policy_domain == campaign.policy_domain
        assert entry.started == campaign.launched_at.strftime("%Y-%m")
        for arm, key in zip(entry.arms, [a.key for a in campaign.arms], strict=True):
            rows = frame[frame["arm"] == key]
            assert arm.outcome == "joined" and arm.n == len(rows)
            if arm.control:
                assert arm.effect is None and arm.mechanism == "control"
                continue
            assert arm.mechanism == tags[key]
            assert arm.effect == pytest.approx(by_arm[key].estimate, abs=1e-12)
            assert arm.std_error == pytest.approx(by_arm[key].std_error, abs=1e-12)
            age = np.searchsorted([35, 55], rows["age"], side="right")
            expect = dict(
                zip(["18-34", "35-54", "55+"], np.bincount(age, minlength=3), strict=True)
            )
            got = {k: v for k, v in arm.population["age"].items() if k != "missing"}
            assert got == {k: int(v) for k, v in expect.items()}


def test_export_is_a_valid_de_identified_pack_and_audit_logged(runner, closed_campaigns, tmp_path):
    from nudge_app.extensions import db
    from nudge_app.models import AuditEntry

    campaign = closed_campaigns[0][0]
    out = tmp_path / "pack.json"
    res = runner.invoke(
        main, ["evidence", "export", "--council", campaign.council.slug, "--out", str(out)]
    )
    assert res.exit_code == 0, res.output
    assert "2 campaign(s)" in res.output
    text = out.read_text()
    pack = json.loads(text)
    jsonschema.validate(pack, json.loads(PACK_SCHEMA.read_text()))
    assert pack["schema_version"] == SCHEMA_VERSION and len(pack["campaigns"]) == 2
    for secret in (campaign.slug, campaign.name, campaign.council.slug, campaign.activity_name):
        assert secret not in text
    # counts under 10 are suppressed in the pack
    for c in pack["campaigns"]:
        for arm in c["arms"]:
            for band_counts in arm["population"].values():
                assert all(v is None or v == 0 or v >= 10 for v in band_counts.values())
    db.session.rollback()  # see what the command committed
    entry = db.session.scalar(select(AuditEntry).where(AuditEntry.action == "evidence.export"))
    assert entry is not None and entry.council_id == campaign.council_id


def test_another_council_imports_the_pack_and_councils_stay_isolated(
    runner, closed_campaigns, make_council, tmp_path, login
):
    from nudge_app.models import AuditEntry, EvidenceCampaign

    home = closed_campaigns[0][0].council
    other = make_council("otherton")
    third = make_council("thirdly")
    out = tmp_path / "pack.json"
    assert (
        runner.invoke(
            main, ["evidence", "export", "--council", home.slug, "--out", str(out)]
        ).exit_code
        == 0
    )
    res = runner.invoke(main, ["evidence", "import", str(out), "--council", other.slug])
    assert res.exit_code == 0, res.output
    assert "Imported 2 campaign(s)" in res.output
    res = runner.invoke(main, ["evidence", "import", str(out), "--council", other.slug])
    assert res.exit_code == 1 and "already imported" in res.output  # once only
    res = runner.invoke(main, ["evidence", "library", "--council", other.slug, "--format", "json"])
    data = json.loads(res.output)
    assert data["campaigns"] == {"own": 0, "imported": 2}
    res = runner.invoke(main, ["evidence", "library", "--council", home.slug, "--format", "json"])
    assert json.loads(res.output)["campaigns"] == {"own": 2, "imported": 0}
    res = runner.invoke(main, ["evidence", "library", "--council", third.slug, "--format", "json"])
    assert json.loads(res.output) == {"campaigns": {"own": 0, "imported": 0}, "pools": []}
    assert counts(EvidenceCampaign) == 4
    from nudge_app.extensions import db

    assert (
        db.session.scalar(select(func.count()).where(AuditEntry.action == "evidence.import")) == 1
    )
    # the third council's page shows none of the others' evidence
    db.session.rollback()
    response = login(third, "evaluator").get("/evidence")
    page = response.get_data(as_text=True)
    assert response.status_code == 200, page[-3000:]
    assert "No effects to pool yet" in page and "The library is empty" in page


def good_pack() -> dict:
    arm = {
        "mechanism": "peer",
        "control": False,
        "outcome": "joined",
        "effect": 0.03,
        "std_error": 0.01,
        "n": 400,
        "population": {"age": {"18-34": 100, "35-54": 150, "55+": 150, "missing": 0}},
    }
    control = dict(arm, mechanism="control", control=True, effect=None, std_error=None)
    campaign = {
        "policy_domain": "environment",
        "activity_kind": "clean-up",
        "started": "2026-01",
        "closed": "2026-03",
        "bands": {"age": ["18-34", "35-54", "55+"]},
        "arms": [control, arm],
    }
    return {
        "schema": "nudge-results-pack",
        "schema_version": "1.0",
        "exported": "2026-04",
        "campaigns": [campaign, copy.deepcopy(campaign)],
    }


def _missing_field(p):
    del p["campaigns"][1]["arms"][1]["std_error"]


def _negative_se(p):
    p["campaigns"][1]["arms"][1]["std_error"] = -0.01


def _wrong_version(p):
    p["schema_version"] = "2.0"


BAD = [
    (_missing_field, "campaigns[1].arms[1]: missing field 'std_error'"),
    (_negative_se, "campaigns[1].arms[1].std_error: -0.01 must be a positive number"),
    (_wrong_version, "schema_version: '2.0' is not supported"),
]


@pytest.mark.parametrize(("spoil", "message"), BAD)
def test_cli_refuses_malformed_packs_and_imports_nothing(runner, council, tmp_path, spoil, message):
    from nudge_app.models import AuditEntry, EvidenceCampaign, EvidenceImport

    pack = good_pack()
    spoil(pack)
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(pack))
    res = runner.invoke(main, ["evidence", "import", str(path), "--council", council.slug])
    assert res.exit_code == 1
    assert "nothing imported" in res.output and message in res.output, res.output
    assert "Traceback" not in res.output
    assert counts(EvidenceImport) == 0 and counts(EvidenceCampaign) == 0
    from nudge_app.extensions import db

    assert not db.session.scalar(select(AuditEntry).where(AuditEntry.action == "evidence.import"))


@pytest.mark.parametrize(("spoil", "message"), BAD)
def test_console_refuses_malformed_packs_and_imports_nothing(council, login, spoil, message):
    from nudge_app.models import EvidenceCampaign, EvidenceImport

    c = login(council, "designer")
    token = _csrf(c)
    pack = good_pack()
    spoil(pack)
    res = c.post(
        "/evidence/import",
        data={"csrf_token": token, "pack": (io.BytesIO(json.dumps(pack).encode()), "bad.json")},
        content_type="multipart/form-data",
    )
    assert res.status_code == 422
    body = res.get_data(as_text=True)
    path, _, text = message.partition(": ")
    assert path in body and text.replace("'", "&#39;") in body
    assert "Nothing was saved" in body
    assert counts(EvidenceImport) == 0 and counts(EvidenceCampaign) == 0


def _csrf(c) -> str:
    import re

    page = c.get("/evidence").get_data(as_text=True)
    return re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)


def test_console_import_pools_and_the_page_shows_the_meta_analysis(council, login):
    c = login(council, "designer")
    pack = good_pack()
    effects = [0.03, 0.05, 0.01]
    ses = [0.01, 0.015, 0.012]
    pack["campaigns"].append(copy.deepcopy(pack["campaigns"][0]))
    for campaign, y, s in zip(pack["campaigns"], effects, ses, strict=True):
        campaign["arms"][1]["effect"], campaign["arms"][1]["std_error"] = y, s
    res = c.post(
        "/evidence/import",
        data={"csrf_token": _csrf(c), "pack": (io.BytesIO(json.dumps(pack).encode()), "p.json")},
        content_type="multipart/form-data",
    )
    assert res.status_code == 302, res.get_data(as_text=True)
    page = c.get("/evidence")
    body = page.get_data(as_text=True)
    assert page.status_code == 200 and '<svg class="forest-plot"' in body
    assert "style=" not in body and "<script" not in body
    # the meta-analysis module (checked against statsmodels' combine_effects in
    # tests/experiments/test_evidence_meta.py) on the imported effects, as the table prints it
    from experiments.evidence.meta import random_effects

    ours = random_effects(effects, ses, method="reml")
    assert f"{100 * ours.estimate:+.1f}" in body
    assert f"{100 * ours.ci_low:.1f} to {100 * ours.ci_high:.1f}" in body
    assert f"{100 * ours.prediction_low:.1f} to {100 * ours.prediction_high:.1f}" in body
    assert "Prediction for a new campaign" in body


def test_evaluators_read_but_cannot_import_or_export(council, login):
    c = login(council, "evaluator")
    page = c.get("/evidence").get_data(as_text=True)
    assert "Check and import" not in page
    res = c.post("/evidence/import", data={})
    assert res.status_code in (400, 403)


def test_a_new_campaigns_report_reads_its_estimate_beside_the_evidence(
    closed_campaigns, make_campaign, populate, login
):
    import math

    from scipy import stats

    from experiments.evidence.meta import random_effects
    from nudge_app.services import evidence_library, evidence_record

    council = closed_campaigns[0][0].council
    evidence_record.record_closed(council.id)
    earlier = [
        a
        for e in evidence_library.library(council.id)
        for a in e.arms
        if not a.control and a.mechanism == "self-efficacy"
    ]
    assert len(earlier) == 2
    new = make_campaign(council, status="running")
    populate(new, n=500, seed=9, effect=0.08)
    from nudge_app.extensions import db

    db.session.commit()
    c = login(council, "evaluator")
    report = c.get(f"/reports/{new.slug}.json").get_json()
    jsonschema.validate(report, schema_of_report())
    (row,) = report["evidence"]
    assert row["mechanism"] == "self-efficacy" and row["campaigns"] == 2 and row["effects"] == 2
    pooled = random_effects([a.effect for a in earlier], [a.std_error for a in earlier])
    assert row["pooled_estimate"] == pytest.approx(pooled.estimate, abs=1e-12)
    # the evidence prior: tau^2 plus the model-based variance of the pooled mean
    v = np.array([a.std_error for a in earlier]) ** 2
    m, s2 = pooled.estimate, pooled.tau2 + 1 / np.sum(1 / (v + pooled.tau2))
    assert row["prior_sd"] == pytest.approx(math.sqrt(s2), rel=1e-9)
    effect = next(e for e in report["effects"] if e["arm"] == row["arm"])
    y, se2 = effect["estimate"], effect["std_error"] ** 2
    post_var = 1 / (1 / s2 + 1 / se2)
    post_mean = post_var * (m / s2 + y / se2)
    assert row["probability_beats_control_evidence"] == pytest.approx(
        stats.norm.sf(0, post_mean, math.sqrt(post_var)), abs=1e-12
    )
    assert row["probability_beats_control_flat"] == pytest.approx(
        stats.norm.sf(0, y, math.sqrt(se2)), abs=1e-12
    )
    page = c.get(f"/reports/{new.slug}").get_data(as_text=True)
    assert "Beside earlier campaigns" in page and "P(beats control), evidence prior" in page
    # the closed campaigns' own reports leave themselves out of their evidence
    own = c.get(f"/reports/{closed_campaigns[0][0].slug}.json").get_json()
    assert own["evidence"][0]["campaigns"] == 1


def schema_of_report():
    from experiments.report import schema

    return schema()


def test_console_without_a_file_or_anything_to_export_says_so(council, login):
    from nudge_app.models import EvidenceImport

    c = login(council, "admin")
    res = c.post("/evidence/import", data={"csrf_token": _csrf(c)})
    assert res.status_code == 422
    assert "choose a results pack" in res.get_data(as_text=True)
    res = c.post("/evidence/export", data={"csrf_token": _csrf(c)})
    assert res.status_code == 409
    assert "no closed campaign of this council" in res.get_data(as_text=True)
    assert counts(EvidenceImport) == 0
