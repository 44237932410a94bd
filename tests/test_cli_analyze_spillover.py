"""`nudge analyze --cluster COL --saturation COL`: the `spillover` list of the report, from
a list randomized by `nudge randomize --saturations`; bad saturation input is refused."""

from __future__ import annotations

import json

import jsonschema
import numpy as np
import pandas as pd
from click.testing import CliRunner

from experiments.report.model import schema
from nudge_app.cli.analyze import command as analyze_command
from nudge_app.cli.randomize import command as randomize_command

KEYS = [
    "arm", "saturation", "direct", "direct_ci_low", "direct_ci_high", "spillover",
    "spillover_ci_low", "spillover_ci_high", "total", "total_ci_low", "total_ci_high",
]  # fmt: skip


def _randomized(tmp_path):
    rng = np.random.default_rng(8)
    n = 1500
    src = tmp_path / "residents.csv"
    pd.DataFrame({"id": [f"r{i:05d}" for i in range(n)], "street": rng.integers(0, 60, n)}).to_csv(
        src, index=False
    )
    out = tmp_path / "assigned.csv"
    args = [str(src), "--arms", "control,mentor", "--cluster", "street",
            "--saturations", "0,0.4,0.8", "--seed", "12", "--out", str(out)]  # fmt: skip
    assert CliRunner().invoke(randomize_command, args).exit_code == 0
    df = pd.read_csv(out)
    treated = df["arm"] == "mentor"
    spill = (df["saturation"] > 0) & ~treated
    df["joined"] = (rng.random(n) < 0.2 + 0.15 * treated + 0.1 * spill).astype(int)
    df.to_csv(out, index=False)
    return out, df


def test_spillover_in_the_json_report(tmp_path):
    path, df = _randomized(tmp_path)
    args = [str(path), "--arm", "arm", "--control", "control", "--outcome", "joined",
            "--cluster", "street", "--saturation", "saturation"]  # fmt: skip
    result = CliRunner().invoke(analyze_command, args)
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    jsonschema.validate(report, schema())
    rows = report["spillover"]
    assert [(r["arm"], r["saturation"]) for r in rows] == [("mentor", 0.4), ("mentor", 0.8)]
    for r in rows:
        assert all(k in r for k in KEYS)
        assert r["direct_ci_low"] < r["direct"] < r["direct_ci_high"]
        pure = df.loc[df["saturation"] == 0, "joined"].mean()
        treated = df.loc[(df["saturation"] == r["saturation"]) & (df["arm"] == "mentor"), "joined"]
        assert abs(r["direct"] - (treated.mean() - pure)) < 1e-12


def test_bad_saturation_column_is_one_message(tmp_path):
    path, df = _randomized(tmp_path)
    df.loc[10, "saturation"] = 2
    df.to_csv(path, index=False)
    args = [str(path), "--arm", "arm", "--control", "control", "--outcome", "joined",
            "--cluster", "street", "--saturation", "saturation"]  # fmt: skip
    result = CliRunner().invoke(analyze_command, args)
    assert result.exit_code != 0
    assert "holds 2 at data row 11" in result.output and "Traceback" not in result.output
    no_cluster = [a for a in args if a not in ("--cluster", "street")]
    result = CliRunner().invoke(analyze_command, no_cluster)
    assert result.exit_code != 0 and "(--cluster)" in result.output
    missing = [*args[:-1], "sat"]
    result = CliRunner().invoke(analyze_command, missing)
    assert result.exit_code != 0 and "no column 'sat'" in result.output


def test_html_report_has_the_spillover_panel(tmp_path):
    path, df = _randomized(tmp_path)
    args = [str(path), "--arm", "arm", "--control", "control", "--outcome", "joined",
            "--cluster", "street", "--saturation", "saturation", "--format", "html"]  # fmt: skip
    result = CliRunner().invoke(analyze_command, args)
    assert result.exit_code == 0, result.output
    html = result.output
    assert "Spillover (randomized saturation design)" in html
    assert '<svg class="spill"' in html and html.count('class="treated"') >= 2
    assert "style=" not in html.split("Spillover (randomized", 1)[1].split("</table>", 1)[0]
    pure = df.loc[df["saturation"] == 0, "joined"].mean()
    report = json.loads(CliRunner().invoke(analyze_command, args[:-2]).output)
    assert abs(report["spillover"][0]["mean_pure_control"] - pure) < 1e-12
