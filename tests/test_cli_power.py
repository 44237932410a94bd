"""`nudge power FILE`: runs on a catalog design, refuses a bad file cleanly."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner

from nudge_app.cli.power import command

CATALOG = Path(__file__).resolve().parents[1] / "experiments" / "catalog"


def test_power_text_and_json():
    path = CATALOG / "self-efficacy-cleanup.toml"
    res = CliRunner().invoke(command, [str(path), "--simulations", "50"])
    assert res.exit_code == 0, res.output
    assert "Main effect" in res.output and "age" in res.output and "MDE" in res.output
    res = CliRunner().invoke(
        command, [str(path), "--simulations", "50", "--format", "json", "--n", "2000"]
    )
    data = json.loads(res.output)
    assert data["n_total"] == 2000 and data["simulations"] == 50
    assert 0 <= data["main"][0]["power"] <= 1
    assert len(data["interactions"]) == 2


def test_power_bad_file(tmp_path):
    bad = tmp_path / "d.toml"
    bad.write_text("[campaign]\nname = 'x'\n")
    res = CliRunner().invoke(command, [str(bad)])
    assert res.exit_code != 0 and "is required" in res.output and "Traceback" not in res.output
    res = CliRunner().invoke(command, [str(tmp_path / "none.toml")])
    assert res.exit_code != 0 and "cannot read" in res.output


def test_power_for_a_cluster_design_and_its_progress_lines():
    path = CATALOG / "self-efficacy-cleanup.toml"
    args = [str(path), "--simulations", "20", "--n", "400", "--icc", "0.1"]
    res = CliRunner().invoke(command, [*args, "--cluster-size", "10", "--format", "json"])
    assert res.exit_code == 0, res.output
    data = json.loads(res.stdout)
    assert data["clusters"] == 40 and data["design_effect"] == 1.9
    assert 0 <= data["main"][0]["analytic"] <= 1
    assert "Simulating trials" not in res.stdout  # no terminal: no bar unless asked
    res = CliRunner().invoke(command, [*args, "--cluster-size", "10", "--progress"])
    assert res.exit_code == 0
    assert "Simulating trials: 20/20" in res.stderr and "design effect 1.9" in res.stdout


def test_power_refuses_an_icc_without_clusters_and_bad_values():
    path = str(CATALOG / "self-efficacy-cleanup.toml")
    res = CliRunner().invoke(command, [path, "--icc", "0.1"])
    assert res.exit_code != 0 and "--cluster-size" in res.output
    assert "Traceback" not in res.output
    res = CliRunner().invoke(command, [path, "--icc", "1.5", "--cluster-size", "10"])
    assert res.exit_code != 0 and "--icc" in res.output
    res = CliRunner().invoke(command, [path, "--cluster-size", "1"])
    assert res.exit_code != 0 and "--cluster-size" in res.output
