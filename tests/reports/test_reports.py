"""Campaign reports from the database: the analysis frame, the report, the routes, the CLI."""

from __future__ import annotations

import csv
import io
import json

import numpy as np
import pandas as pd
import pytest

from experiments.report import SCHEMA_VERSION
from nudge_app.cli import main
from nudge_app.services.reporting import ReportNotReady, analysis_frame, campaign_report


@pytest.fixture
def running(council, make_campaign):
    return make_campaign(council, status="running")


def test_analysis_frame_has_one_row_per_randomized_participant(running, populate):
    written = pd.DataFrame(populate(running, n=120, seed=1))
    frame = analysis_frame(running)
    assert len(frame) == 120
    merged = frame.merge(written, on="participant_id", suffixes=("", "_w"))
    for col in (
        "arm",
        "age",
        "self_efficacy",
        "gender",
        "joined",
        "exposed",
        "delivered",
        "stratum",
    ):
        assert (merged[col] == merged[f"{col}_w"]).all(), col
    assert merged["participated"].isna().equals(merged["participated_w"].isna())
    assert (merged["participated"].dropna() == merged["participated_w"].dropna()).all()
    assert (frame["opted_out"] == 0).all()
    assert "email" not in frame.columns and "first_name" not in frame.columns


def test_campaign_report_uses_the_plan_and_blocks(running, populate):
    written = pd.DataFrame(populate(running, n=600, seed=2))
    report = campaign_report(running)
    a = report.analysis
    assert a.outcome == "joined" and a.control == "control"
    (effect,) = a.effects
    assert effect.method == "blocked" and a.block == "stratum"
    # independent blocked estimate: sum_j N_j/N (mean_T,j - mean_C,j)
    est = 0.0
    for _, g in written.groupby("stratum"):
        t = g.loc[g.arm == "efficacy", "joined"]
        c = g.loc[g.arm == "control", "joined"]
        est += len(g) / len(written) * (t.mean() - c.mean())
    assert effect.estimate == pytest.approx(est, rel=1e-10)
    assert {m["moderator"]: m["family"] for m in a.moderators} == {
        "age": "confirmatory",
        "self_efficacy": "confirmatory",
    }
    assert [m["levels"] for m in a.moderators] == [
        ["18-34", "35-54", "55+"],
        ["low", "middle", "high"],
    ]
    assert [e.method for e in a.adjusted_effects] == ["lin_blocked"]  # Lin within strata
    assert a.design.probability == "probability"  # recorded at assignment
    assert report.arm_labels["efficacy"] == "Your action counts"
    assert sum(f.allocated for f in a.flow) == 600
    assert a.flow[0].delivered == int(written[written.arm == "control"].delivered.sum())
    followup = campaign_report(running, outcome="participated")
    assert followup.analysis.attrition is not None
    assert followup.analysis.n_analysed == int(written.participated.notna().sum())


def test_routes_need_login(app, client, running, populate):
    populate(running, n=50, seed=3)
    res = client.get(f"/reports/{running.slug}.json", headers={"Accept": "application/json"})
    assert res.status_code in (302, 401)
    assert client.get(f"/reports/{running.slug}").status_code in (302, 401)


def test_routes_refuse_another_councils_campaign(
    app, running, populate, staff_client, make_council
):
    populate(running, n=200, seed=3)
    slug = running.slug
    other = make_council("elsewhere")
    c = staff_client(other, email="other@example.org")
    assert c.get(f"/reports/{slug}").status_code == 404
    assert c.get(f"/reports/{slug}.json").status_code == 404


def test_routes_render_html_json_and_csv(app, running, populate, staff_client):
    populate(running, n=300, seed=4)
    c = staff_client(running.council)
    html = c.get(f"/reports/{running.slug}")
    assert html.status_code == 200 and html.mimetype == "text/html"
    body = html.get_data(as_text=True)
    assert '<svg class="forest"' in body and "Your action counts" in body
    assert "Pre-registered: primary outcome joined, moderators age, self_efficacy" in body
    assert html.headers["Cache-Control"] == "no-store"
    data = c.get(f"/reports/{running.slug}.json")
    assert data.status_code == 200
    report = data.get_json()
    assert report["schema_version"] == SCHEMA_VERSION and report["campaign"]["slug"] == running.slug
    assert report["effects"][0]["arm"] == "efficacy"
    text = c.get(f"/reports/{running.slug}.csv")
    assert text.mimetype == "text/csv"
    assert "attachment" in text.headers["Content-Disposition"]
    rows = list(csv.DictReader(io.StringIO(text.get_data(as_text=True))))
    assert {r["kind"] for r in rows} >= {"effect", "subgroup", "interaction"}


def test_not_ready_campaign(app, running, staff_client):
    c = staff_client(running.council)
    res = c.get(f"/reports/{running.slug}.json")
    assert res.status_code == 409 and res.get_json()["error"] == "not_ready"
    page = c.get(f"/reports/{running.slug}")
    assert page.status_code == 200 and "not ready" in page.get_data(as_text=True)
    with pytest.raises(ReportNotReady):
        campaign_report(running)


def test_cli_report_writes_json_and_html(runner, running, populate, tmp_path):
    populate(running, n=200, seed=5)
    res = runner.invoke(main, ["report", running.slug, "--format", "json"])
    assert res.exit_code == 0, res.output
    data = json.loads(res.output)
    assert data["campaign"]["slug"] == running.slug
    assert np.isfinite(data["effects"][0]["estimate"])
    out = tmp_path / "r.html"
    res = runner.invoke(main, ["report", running.slug, "--format", "html", "--out", str(out)])
    assert res.exit_code == 0 and out.read_text().startswith("<!DOCTYPE html>")
    res = runner.invoke(main, ["report", "no-such-campaign"])
    assert res.exit_code != 0 and "no campaign" in res.output


def test_categorical_preregistered_moderator_and_covariate(council, make_campaign, populate):
    from experiments.design import AnalysisPlan

    plan = AnalysisPlan(moderators=["age", "gender"], covariates=["age", "gender"])
    campaign = make_campaign(council, status="running", analysis=plan)
    populate(campaign, n=160, seed=6)
    a = campaign_report(campaign).analysis
    families = {m["moderator"]: m["family"] for m in a.moderators}
    assert families == {
        "age": "confirmatory",
        "self_efficacy": "exploratory",
        "gender": "confirmatory",
    }
    assert a.covariates == ["age", "gender=woman"]
    assert [s.level for s in a.subgroups if s.moderator == "gender"] == ["man", "woman"]


def test_cli_report_runs_the_plans_randomization_inference(
    runner, council, make_campaign, populate, tmp_path
):
    from experiments.design import AnalysisPlan

    plan = AnalysisPlan(randomization_inference=40)
    campaign = make_campaign(council, status="running", analysis=plan)
    populate(campaign, n=160, seed=9)
    out = tmp_path / "r.json"
    res = runner.invoke(main, ["report", campaign.slug, "--out", str(out)])
    assert res.exit_code == 0, res.output
    assert f"Wrote the JSON report to {out}" in res.output
    data = json.loads(out.read_text())
    assert data["design"]["randomization_inference"]["draws"] == 40
    assert data["campaign"]["randomization_inference"] == 40
    assert 0 < data["effects"][0]["ri_p_value"] <= 1
    res = runner.invoke(main, ["report", campaign.slug, "--randomization-inference", "0"])
    assert "ri_p_value" not in json.loads(res.output)["effects"][0]
    # the web report does not run them (a request must stay quick)
    assert "ri_p_value" not in campaign_report(campaign).to_dict()["effects"][0]
