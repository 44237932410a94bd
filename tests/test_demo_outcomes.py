"""The demo's outcomes against its truth: with 5,000 residents and a fixed seed, the 95%
intervals of every arm's effect on verified attendance and on individual and collective
co-production (the report's `outcomes`) cover the simulator's `truth.json`; and a small
demo names those outcomes, checks its attendees in and shows the side-by-side panel."""

from __future__ import annotations

import json

import pytest

from nudge_app.cli import main

OUTCOMES = ("attended", "individual_coproduction", "collective_coproduction")


def _demo(runner, tmp_path, n: int, seed: int):
    out = tmp_path / "demo-out"
    result = runner.invoke(
        main,
        ["demo", "--no-serve", "--participants", str(n), "--seed", str(seed), "--out", str(out)],
    )
    assert result.exit_code == 0, result.output
    return result, out


def test_small_demo_checks_attendees_in_and_reports_the_three_outcomes(runner, tmp_path, app):
    result, out = _demo(runner, tmp_path, n=300, seed=5)
    assert "check-ins in the organiser's attendance register" in result.output
    report = json.loads((out / "report.json").read_text())
    roles = {o["outcome"]: o["role"] for o in report["outcomes"]}
    assert roles["joined"] == "primary"
    assert all(roles[name] == "secondary" for name in OUTCOMES)
    assert report["campaign"]["attendance"]["participants"] > 0
    assert report["outcome_analyses"]["coproduction"]
    html = (out / "report.html").read_text()
    assert 'id="coproduction"' in html and "verified-attendance" in html


@pytest.mark.slow
def test_demo_intervals_cover_the_truth_on_attendance_and_both_coproductions(runner, tmp_path, app):
    """One demo run (it takes minutes), every arm of every outcome checked against the
    truth: each outcome is estimated from its own column (the follow-up answer, not the
    baseline answer of the same name, which eligibility makes the same for everyone)."""
    _, out = _demo(runner, tmp_path, n=5000, seed=0)
    report = json.loads((out / "report.json").read_text())
    truth = json.loads((out / "truth.json").read_text())["effects_by_outcome"]
    analysed = {o["outcome"]: o for o in report["outcomes"]}
    for name in OUTCOMES:
        effects = analysed[name]["effects"]
        assert {e["arm"] for e in effects} == set(truth[name])
        for e in effects:
            assert e["ci_low"] is not None, (name, e)
            assert e["ci_low"] <= truth[name][e["arm"]] <= e["ci_high"], (name, e, truth[name])
    assert report["mediation"] and report["bounds"]
