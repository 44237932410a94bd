"""Saturation designs in the design file: `[randomization] saturations` and
`[analysis] minimum_spillover` round-trip; mistakes are named by field."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest
import tomli_w

from experiments.design import DesignError, design_to_toml, parse_design

BASE = (
    Path(__file__).resolve().parents[2] / "experiments" / "catalog" / "self-efficacy-cleanup.toml"
)


def saturation_design(**randomization) -> dict:
    data = tomllib.loads(BASE.read_text())
    control = next(a for a in data["arms"] if a.get("control"))
    other = next(a for a in data["arms"] if not a.get("control"))
    data["arms"] = [control, other]
    data["randomization"].update({"cluster": "neighbourhood", "saturations": [0, 0.4, 0.8]})
    data["randomization"].update(randomization)
    data["analysis"]["minimum_spillover"] = 0.02
    return data


def problems_of(data: dict) -> list[str]:
    with pytest.raises(DesignError) as info:
        parse_design(tomli_w.dumps(data))
    return [str(p) for p in info.value.problems]


def test_saturation_design_round_trips():
    design = parse_design(tomli_w.dumps(saturation_design()))
    assert design.randomization.saturations == [0.0, 0.4, 0.8]
    assert design.analysis.minimum_spillover == 0.02
    text = design_to_toml(design)
    assert "saturations = [" in text
    again = parse_design(text)
    assert again == design
    assert again.design_hash() == design.design_hash()


def test_designs_without_saturations_keep_their_hash():
    data = tomllib.loads(BASE.read_text())
    design = parse_design(tomli_w.dumps(data))
    assert design.randomization.saturations is None
    assert "saturations" not in design_to_toml(design)
    assert "minimum_spillover" not in design_to_toml(design)


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ({"saturations": [0, 1.4]}, "randomization.saturations[1]: 1.4 is outside [0, 1]"),
        ({"saturations": [0, "half"]}, "randomization.saturations[1]: must be a number"),
        ({"saturations": [0.4, 0.8]}, "randomization.saturations: must include 0"),
        ({"saturations": [0]}, "randomization.saturations: give at least two"),
        ({"saturations": [0, 0.5, 0.5]}, "randomization.saturations[2]: 0.5 is listed twice"),
        ({"saturations": "0,0.4"}, "randomization.saturations: must be a list"),
    ],
)
def test_bad_saturations_are_named(change, expected):
    problems = problems_of(saturation_design(**change))
    assert any(p.startswith(expected) for p in problems), problems


def test_saturations_need_a_cluster_and_two_arms():
    data = saturation_design()
    del data["randomization"]["cluster"]
    assert any("set randomization.cluster" in p for p in problems_of(data))
    data = saturation_design()
    data["arms"].append(dict(data["arms"][1], key="third", name="Third"))
    assert any("has two arms" in p for p in problems_of(data))
