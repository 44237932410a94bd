"""`nudge power FILE` says its sample sizes count eligible residents when the design has
eligibility rules (text and JSON), and says nothing of the kind without them."""

from __future__ import annotations

import json
import tomllib
from pathlib import Path

import tomli_w
from click.testing import CliRunner

from nudge_app.cli.power import command

CATALOG = Path(__file__).resolve().parents[1] / "experiments" / "catalog"


def test_power_says_the_sample_counts_eligible_residents(tmp_path):
    path = CATALOG / "self-efficacy-cleanup.toml"
    text = CliRunner().invoke(command, [str(path), "--simulations", "20"])
    assert text.exit_code == 0, text.output
    assert "Sample sizes count eligible residents" in text.output
    assert "individual_coproduction >= 1; collective_coproduction = 0" in text.output
    data = json.loads(
        CliRunner().invoke(command, [str(path), "--simulations", "20", "--format", "json"]).output
    )
    assert data["eligibility"] == ["individual_coproduction >= 1", "collective_coproduction = 0"]
    tables = tomllib.loads(path.read_text())
    del tables["eligibility"]
    plain = tmp_path / "plain.toml"
    plain.write_text(tomli_w.dumps(tables))
    text = CliRunner().invoke(command, [str(plain), "--simulations", "20"])
    assert text.exit_code == 0 and "eligible" not in text.output
