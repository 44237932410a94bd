"""Power of saturation designs by simulation: the size is alpha when nothing works, power
grows with the effect, and `nudge power` runs it for a saturation design file."""

from __future__ import annotations

import json
import tomllib
from pathlib import Path

import pytest
import tomli_w
from click.testing import CliRunner

from experiments.saturation_power import simulate_saturation_power
from nudge_app.cli.power import command

BASE = (
    Path(__file__).resolve().parents[2] / "experiments" / "catalog" / "self-efficacy-cleanup.toml"
)
SETTINGS = dict(clusters=36, cluster_size=20, saturations=(0, 0.4, 0.8), baseline_rate=0.2)


@pytest.mark.slow  # a simulation (run by .ci/run: -m slow)
def test_size_is_alpha_without_effects():
    result = simulate_saturation_power(
        **SETTINGS, direct_effect=0.0, spillover_effect=0.0, simulations=400, seed=1
    )
    for row in result.rows:
        for power in (row.direct_power, row.spillover_power, row.total_power):
            assert 0.015 <= power <= 0.09, result


@pytest.mark.slow  # a simulation (run by .ci/run: -m slow)
def test_power_grows_with_the_effect():
    small = simulate_saturation_power(
        **SETTINGS, direct_effect=0.05, spillover_effect=0.02, simulations=200, seed=2
    )
    large = simulate_saturation_power(
        **SETTINGS, direct_effect=0.25, spillover_effect=0.15, simulations=200, seed=2
    )
    for lo, hi in zip(small.rows, large.rows, strict=True):
        assert hi.direct_power > lo.direct_power and hi.spillover_power > lo.spillover_power
    assert all(r.direct_power > 0.9 for r in large.rows)
    again = simulate_saturation_power(
        **SETTINGS, direct_effect=0.05, spillover_effect=0.02, simulations=200, seed=2
    )
    assert again == small


def test_full_saturation_has_no_spillover_power():
    result = simulate_saturation_power(
        clusters=12, cluster_size=10, saturations=(0, 1), baseline_rate=0.3,
        direct_effect=0.1, spillover_effect=0.05, simulations=20, seed=3,
    )  # fmt: skip
    assert result.rows[0].spillover_power is None


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (dict(saturations=(0.4, 0.8)), "must include 0"),
        (dict(clusters=4), "too few"),
        (dict(baseline_rate=1.2), "baseline rate"),
    ],
)
def test_bad_settings(change, message):
    settings = {**SETTINGS, **change}
    with pytest.raises(ValueError, match=message):
        simulate_saturation_power(
            **settings, direct_effect=0.1, spillover_effect=0.0, simulations=10
        )


def _design_file(tmp_path, planned: int | None = 2400) -> Path:
    data = tomllib.loads(BASE.read_text())
    control = next(a for a in data["arms"] if a.get("control"))
    other = next(a for a in data["arms"] if not a.get("control"))
    data["arms"] = [control, other]
    data["randomization"].update({"cluster": "cluster", "saturations": [0, 0.4, 0.8]})
    data["analysis"]["minimum_spillover"] = 0.04
    if planned:
        data["campaign"]["planned_sample_size"] = planned
    else:
        data["campaign"].pop("planned_sample_size", None)
    path = tmp_path / "design.toml"
    path.write_text(tomli_w.dumps(data))
    return path


def test_nudge_power_on_a_saturation_design(tmp_path):
    path = _design_file(tmp_path)
    result = CliRunner().invoke(command, [str(path), "--simulations", "50", "--format", "json"])
    assert result.exit_code == 0, result.output
    out = json.loads(result.output)
    assert out["design"] == "saturation"
    assert out["clusters"] == 120 and out["cluster_size"] == 20
    assert out["spillover_effect"] == 0.04
    assert [r["saturation"] for r in out["rows"]] == [0.4, 0.8]
    text = CliRunner().invoke(command, [str(path), "--simulations", "20"]).output
    assert "spillover" in text and "Randomized saturation design: 120 clusters of 20" in text


def test_nudge_power_needs_a_size(tmp_path):
    path = _design_file(tmp_path, planned=None)
    result = CliRunner().invoke(command, [str(path), "--simulations", "20"])
    assert result.exit_code != 0 and "give --n or planned_sample_size" in result.output
