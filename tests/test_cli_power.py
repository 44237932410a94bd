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
