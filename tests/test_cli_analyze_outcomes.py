"""`nudge analyze` with several outcomes, a mediator, a response and an exposure column, on
a simulated campaign: the report JSON's `outcomes`, `mediation`, `bounds` and `cace`
(exact keys), Holm within the primary family, the side-by-side and reporting-bias panels,
and clear messages for bad options."""

from __future__ import annotations

import json

import jsonschema
import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner
from statsmodels.stats.multitest import multipletests

from experiments.analysis.outcomes_calibration import campaign_frame
from experiments.report import schema
from experiments.simulate import CATALOG_EFFECTS, simulate_responses
from nudge_app.cli.analyze import command

EFFECTS = {
    "control": CATALOG_EFFECTS["self-efficacy-cleanup"]["control"],
    "efficacy": CATALOG_EFFECTS["self-efficacy-cleanup"]["efficacy"],
}


@pytest.fixture(scope="module")
def trial_csv(tmp_path_factory):
    frame, population = campaign_frame(3000, 11, EFFECTS)
    r = simulate_responses(population, frame["arm"].to_numpy(), EFFECTS, seed=12)
    frame["participated"] = r["participated"].astype("float")
    frame["exposed"] = r["exposed"]
    frame["never_exposed"] = 0
    # a third arm so the primary family has two p-values to adjust
    frame.loc[frame.index % 3 == 0, "arm"] = "plain"
    path = tmp_path_factory.mktemp("outcomes") / "trial.csv"
    frame.to_csv(path, index=False)
    return path


def run(args):
    result = CliRunner().invoke(command, [str(a) for a in args])
    return result


def full_args(path):
    return [
        path,
        "--arm", "arm", "--control", "control",
        "--outcome", "attended",
        "--outcome", "individual_coproduction",
        "--outcome", "collective_coproduction",
        "--outcome", "participated",
        "--baseline", "individual_coproduction=individual_baseline",
        "--baseline", "collective_coproduction=collective_baseline",
        "--covariate", "age", "--covariate", "self_efficacy",
        "--block", "stratum",
        "--mediator", "self_efficacy_followup",
        "--response", "surveyed",
        "--response-covariate", "joined",
        "--response-covariate", "age",
        "--response-covariate", "self_efficacy",
        "--exposure", "exposed",
    ]  # fmt: skip


@pytest.fixture(scope="module")
def report(trial_csv):
    result = run(full_args(trial_csv))
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def test_outcomes_in_order_with_roles_and_primary_effects_on_top(report):
    jsonschema.validate(report, schema())
    names = [(o["outcome"], o["role"]) for o in report["outcomes"]]
    assert names == [
        ("attended", "primary"),
        ("individual_coproduction", "secondary"),
        ("collective_coproduction", "secondary"),
        ("participated", "secondary"),
    ]
    assert report["outcome"] == "attended"
    assert report["outcomes"][0]["effects"] == report["effects"]
    for o in report["outcomes"]:
        assert {e["arm"] for e in o["effects"]} == {"efficacy", "plain"}


def test_holm_across_the_primary_family_and_bh_across_the_secondary(report):
    primary = report["outcomes"][0]["effects"]
    p = [e["p_value"] for e in primary]
    expected = multipletests(p, method="holm")[1]
    assert [e["p_adjusted"] for e in primary] == pytest.approx(expected, abs=1e-12)
    secondary = [e for o in report["outcomes"][1:] for e in o["effects"]]
    expected = multipletests([e["p_value"] for e in secondary], method="fdr_bh")[1]
    assert [e["p_adjusted"] for e in secondary] == pytest.approx(expected, abs=1e-12)


def test_exact_keys_of_mediation_bounds_and_cace(report):
    assert {frozenset(m) for m in report["mediation"]} == {
        frozenset(
            {
                "arm",
                "mediator",
                "acme",
                "acme_ci_low",
                "acme_ci_high",
                "ade",
                "proportion_mediated",
                "rho_at_zero",
            }
        )
    }
    assert {m["arm"] for m in report["mediation"]} == {"efficacy", "plain"}
    assert all(m["mediator"] == "self_efficacy_followup" for m in report["mediation"])
    assert {frozenset(b) for b in report["bounds"]} == {
        frozenset({"arm", "outcome", "lower", "upper"})
    }
    # survey-measured outcomes only (attended is known for everyone)
    assert {b["outcome"] for b in report["bounds"]} == {
        "individual_coproduction",
        "collective_coproduction",
        "participated",
    }
    assert all(b["lower"] <= b["upper"] for b in report["bounds"])
    assert {frozenset(c) for c in report["cace"]} == {
        frozenset({"arm", "estimate", "ci_low", "ci_high"})
    }


def test_cace_equals_hand_written_two_stage_least_squares(report, trial_csv):
    """Wald / 2SLS of the primary outcome on exposure x arm, instrumented by the arms,
    with the covariates and stratum indicators (centred) as exogenous regressors."""
    f = pd.read_csv(trial_csv)
    strata = pd.get_dummies(f["stratum"], drop_first=True, dtype=float)
    W = np.column_stack([f[["age", "self_efficacy"]].to_numpy(float), strata.to_numpy()])
    W = W - W.mean(axis=0)
    arms = ["efficacy", "plain"]
    Z = np.column_stack([(f["arm"] == a).to_numpy(float) for a in arms])
    D = Z * f["exposed"].to_numpy(float)[:, None]
    X = np.column_stack([np.ones(len(f)), W, D])
    instruments = np.column_stack([np.ones(len(f)), W, Z])
    fitted = instruments @ np.linalg.lstsq(instruments, X, rcond=None)[0]
    beta = np.linalg.lstsq(fitted, f["attended"].to_numpy(float), rcond=None)[0]
    got = {c["arm"]: c["estimate"] for c in report["cace"]}
    for j, a in enumerate(arms):
        assert got[a] == pytest.approx(beta[-2 + j], abs=1e-8)


def test_side_by_side_panel_with_reading_and_joint_interval(report):
    panel = report["outcome_analyses"]["coproduction"]
    assert [p["arm"] for p in panel] == ["efficacy", "plain"]
    for p in panel:
        assert p["outcomes"] == ["collective_coproduction", "individual_coproduction"]
        assert p["reading"].startswith("collective ")
        joint = p["joint_interval"]
        for name in p["outcomes"]:
            low, high = joint[name]
            # the simultaneous interval is wider than the marginal one
            assert low < p[name]["ci_low"] < p[name]["ci_high"] < high
            est = p[name]["estimate"]
            se = p[name]["std_error"]
            assert high - est == pytest.approx(np.sqrt(-2 * np.log(0.05)) * se)


def test_self_report_against_verified_flags_reporting_bias(report):
    checks = report["outcome_analyses"]["reporting_bias"]
    assert {c["arm"] for c in checks} == {"efficacy", "plain"}
    for c in checks:
        assert c["outcomes"] == ["participated", "attended"]
        assert isinstance(c["flagged"], bool)
        assert ("possible reporting bias" in c["reading"]) == c["flagged"]


def test_survey_readings_say_which_reading_the_data_support(report):
    readings = report["outcome_analyses"]["survey_readings"]
    assert len(readings) == len(report["bounds"])
    assert all("Lee bounds" in r["reading"] for r in readings)
    weighted = report["outcome_analyses"]["response_weighted"]
    assert {w["outcome"] for w in weighted} == {b["outcome"] for b in report["bounds"]}
    assert report["outcome_analyses"]["mediation_response_weighted"] is True
    assert report["outcome_analyses"]["notes"] == []


def test_csv_carries_secondary_outcomes_cace_mediation_and_bounds(trial_csv):
    result = run([*full_args(trial_csv), "--format", "csv"])
    assert result.exit_code == 0, result.output
    kinds = pd.read_csv(__import__("io").StringIO(result.stdout))["kind"].value_counts()
    assert kinds["outcome_effect"] == 6
    assert kinds["cace"] == 2 and kinds["mediation"] == 2 and kinds["lee_bounds"] == 6


def test_one_outcome_keeps_the_old_report_and_gains_the_primary_entry(trial_csv):
    result = run([trial_csv, "--arm", "arm", "--control", "control", "--outcome", "attended"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert [o["role"] for o in data["outcomes"]] == ["primary"]
    assert data["mediation"] == data["bounds"] == data["cace"] == []


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--outcome", "attended"], "'attended' is named twice"),
        (["--baseline", "nope"], "is not OUTCOME=COL"),
        (["--baseline", "joined=age"], "'joined' is not one of the --outcome columns"),
        (["--mediator", "nothing"], "no column 'nothing'"),
        (["--response", "nothing"], "no column 'nothing'"),
        (["--exposure", "nothing"], "no column 'nothing'"),
    ],
)
def test_bad_options_get_one_clear_message(trial_csv, extra, message):
    base = [trial_csv, "--arm", "arm", "--control", "control", "--outcome", "attended"]
    result = run([*base, *extra])
    assert result.exit_code != 0
    assert message in result.output
    assert "Traceback" not in result.output


def test_a_response_column_that_is_not_zero_or_one_is_refused(trial_csv):
    result = run(
        [trial_csv, "--arm", "arm", "--control", "control", "--outcome", "attended",
         "--outcome", "collective_coproduction", "--response", "age"]
    )  # fmt: skip
    assert result.exit_code != 0
    assert "response column 'age' must be 1 (answered) or 0" in result.output
    assert "row 2" in result.output


def test_an_analysis_the_data_cannot_support_is_a_note_not_a_failure(trial_csv):
    # nobody saw the message: no complier effect, but the rest of the report stands
    result = run(
        [trial_csv, "--arm", "arm", "--control", "control", "--outcome", "attended",
         "--exposure", "attended_zero"]
    )  # fmt: skip
    assert result.exit_code != 0 and "no column 'attended_zero'" in result.output
    result = run(
        [trial_csv, "--arm", "arm", "--control", "control", "--outcome", "attended",
         "--exposure", "never_exposed"]
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["cace"] == []
    assert "Note: complier effect of never_exposed: not computed" in result.stderr
    assert "nobody in arm" in result.stderr


def test_an_exposure_column_that_is_not_zero_or_one_is_refused(trial_csv):
    result = run(
        [trial_csv, "--arm", "arm", "--control", "control", "--outcome", "attended",
         "--exposure", "age"]
    )  # fmt: skip
    assert result.exit_code != 0
    assert "exposure column 'age' must be 1 (saw the message) or 0" in result.output


def test_html_shows_roles_side_by_side_panel_mediation_diagram_bounds_and_cace(trial_csv):
    result = run([*full_args(trial_csv), "--format", "html"])
    assert result.exit_code == 0, result.output
    html = result.stdout
    assert '<span class="role primary">primary</span>' in html
    assert '<span class="role secondary">secondary</span>' in html
    assert "Collective and individual co-production, side by side" in html
    assert html.count('<div class="panel">') == 2 and "joint interval" in html
    assert html.count('<svg class="mediation"') == 2 and "sequential ignorability" in html
    assert "Lee bounds" in html and "complier average causal effect" in html
    assert "<script" not in html and " style=" not in html


@pytest.mark.browser
@pytest.mark.slow
def test_report_panels_render_in_chromium_with_screenshots(trial_csv, tmp_path):
    """Screenshots of the side-by-side panel and the mediation diagram, kept as test
    artefacts in test-output/report-outcomes/ (gitignored)."""
    import os
    from pathlib import Path

    if not os.path.exists("/usr/bin/chromium"):
        pytest.skip("needs Debian's chromium at /usr/bin/chromium")
    from playwright.sync_api import sync_playwright

    out = Path(__file__).resolve().parents[1] / "test-output" / "report-outcomes"
    out.mkdir(parents=True, exist_ok=True)
    page_path = tmp_path / "report.html"
    assert run([*full_args(trial_csv), "--format", "html", "--out", page_path]).exit_code == 0
    with sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path="/usr/bin/chromium", args=["--headless", "--no-sandbox"]
        )
        page = browser.new_page(viewport={"width": 1100, "height": 900})
        page.goto(page_path.as_uri())
        for name, selector in (("coproduction", "#coproduction"), ("mediation", "#mediation")):
            page.evaluate(f"document.querySelector('{selector}').scrollIntoView()")
            page.screenshot(path=str(out / f"{name}.png"))
            assert (out / f"{name}.png").stat().st_size > 10_000
        boxes = page.locator("svg.mediation").first.bounding_box()
        assert boxes["width"] > 300 and boxes["height"] > 100
        browser.close()
    print(f"screenshots in {out}")
