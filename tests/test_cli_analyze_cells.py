"""`nudge analyze --cells`: the interface's exact keys, raw cells against a pandas
re-computation (difference in means, Neyman SE) and statsmodels OLS HC2, the pooled cells
equal to the cell-pooling module fed the same rows, the targeting table, the HTML heat
maps and CSV rows, and refused inputs."""

from __future__ import annotations

import csv
import io
import json

import jsonschema
import numpy as np
import pandas as pd
import pytest
import statsmodels.formula.api as smf
from click.testing import CliRunner

from experiments.analysis.cell_pooling import cell_table
from experiments.bands import BandSpec
from experiments.report import schema
from nudge_app.cli.analyze import command

CELL_KEYS = {
    "arm",
    "levels",
    "n",
    "estimate",
    "std_error",
    "pooled_estimate",
    "pooled_ci_low",
    "pooled_ci_high",
}


@pytest.fixture
def trial_csv(tmp_path):
    rng = np.random.default_rng(17)
    n = 6000
    arm = rng.choice(["control", "peer", "efficacy"], n)
    age = rng.integers(18, 86, n).astype(float)
    se = np.round(np.clip(rng.normal(3, 0.8, n), 1, 5), 2)
    effect = np.where(arm == "peer", 0.06 - 0.001 * (age - 45), 0.0)
    effect += np.where(arm == "efficacy", 0.02 + 0.02 * (se - 3), 0.0)
    joined = (rng.random(n) < 0.15 + effect).astype(float)
    df = pd.DataFrame({"arm": arm, "joined": joined, "age": age, "self_efficacy": se})
    df.loc[20:24, "age"] = np.nan  # left out of the cell table only
    path = tmp_path / "trial.csv"
    df.to_csv(path, index=False)
    return path, df


CELL_ARGS = (
    "--arm",
    "arm",
    "--control",
    "control",
    "--outcome",
    "joined",
    "--moderator",
    "age:35,55",
    "--moderator",
    "self_efficacy:2.5,3.5",
    "--cells",
    "age,self_efficacy",
)


def run(*args):
    return CliRunner().invoke(command, [str(a) for a in args], catch_exceptions=False)


def test_cells_and_heterogeneity_have_the_interface_keys_and_check_out(trial_csv):
    path, df = trial_csv
    res = run(path, *CELL_ARGS)
    assert res.exit_code == 0, res.output
    report = json.loads(res.output)
    jsonschema.validate(report, schema())
    assert set(report["heterogeneity"]) == {"omnibus_p_value", "tau2"}
    cells = report["cells"]
    assert len(cells) == 2 * 9 and all(set(c) == CELL_KEYS for c in cells)
    assert {c["arm"] for c in cells} == {"peer", "efficacy"}
    assert report["cell_model"]["left_out"] == 5
    assert report["cell_model"]["levels"] == {
        "age": ["<35", "35-54", "55+"],
        "self_efficacy": ["<2.5", "2.5-<3.5", ">=3.5"],
    }

    kept = df.dropna(subset=["age"]).copy()
    kept["a"] = np.searchsorted([35, 55], kept["age"], side="right")
    kept["s"] = np.searchsorted([2.5, 3.5], kept["self_efficacy"], side="right")
    age_levels = report["cell_model"]["levels"]["age"]
    se_levels = report["cell_model"]["levels"]["self_efficacy"]
    for c in cells:
        i, j = age_levels.index(c["levels"]["age"]), se_levels.index(c["levels"]["self_efficacy"])
        sub = kept[(kept["a"] == i) & (kept["s"] == j) & kept["arm"].isin(["control", c["arm"]])]
        t, k = sub[sub["arm"] == c["arm"]]["joined"], sub[sub["arm"] == "control"]["joined"]
        assert c["n"] == len(sub)
        # the raw cell: difference in means with the Neyman (HC2) standard error
        assert c["estimate"] == pytest.approx(t.mean() - k.mean(), abs=1e-12)
        neyman = np.sqrt(t.var(ddof=1) / len(t) + k.var(ddof=1) / len(k))
        assert c["std_error"] == pytest.approx(neyman, rel=1e-10)
        fit = smf.ols("joined ~ C(arm, Treatment('control'))", sub).fit(cov_type="HC2")
        name = f"C(arm, Treatment('control'))[T.{c['arm']}]"
        assert c["std_error"] == pytest.approx(fit.bse[name], rel=1e-8)
        assert c["pooled_ci_low"] < c["pooled_estimate"] < c["pooled_ci_high"]

    # the pooled cells are the cell-pooling module's on the same rows
    table = cell_table(
        kept,
        arm="arm",
        control="control",
        outcome="joined",
        moderators=(BandSpec("age", (35.0, 55.0)), BandSpec("self_efficacy", (2.5, 3.5))),
    )
    expect = {(c.arm, tuple(c.levels.values())): c for c in table.cells}
    for c in cells:
        e = expect[(c["arm"], (c["levels"]["age"], c["levels"]["self_efficacy"]))]
        assert c["pooled_estimate"] == pytest.approx(e.pooled_estimate, abs=1e-12)
        assert c["pooled_ci_high"] == pytest.approx(e.pooled_ci_high, abs=1e-12)
    assert report["heterogeneity"]["tau2"] == pytest.approx(table.tau2, abs=1e-15)
    assert report["heterogeneity"]["omnibus_p_value"] == pytest.approx(table.omnibus_p_value)

    targeting = report["targeting"]
    assert len(targeting["best_arms"]) == 9
    for row in targeting["best_arms"]:
        assert sum(row["probabilities"].values()) == pytest.approx(1.0)
        assert row["best"] in {"control", "peer", "efficacy"}
    gain = targeting["gain"]
    assert gain["folds"] == 5 and gain["ci_low"] <= gain["estimate"] <= gain["ci_high"]
    assert targeting["calibration_label"] == "exploratory"
    assert all(c["label"] == "exploratory" for c in targeting["calibration"])
    assert {t["moderator"] for t in report["cell_model"]["trends"]} == {"age", "self_efficacy"}


def test_the_same_seed_gives_the_same_targeting_and_no_cells_without_the_option(trial_csv):
    path, _ = trial_csv
    one = json.loads(run(path, *CELL_ARGS, "--seed", "3").output)
    two = json.loads(run(path, *CELL_ARGS, "--seed", "3").output)
    assert one["targeting"] == two["targeting"]
    plain = json.loads(run(path, *CELL_ARGS[:-2]).output)
    assert "cells" not in plain and "heterogeneity" not in plain and "targeting" not in plain


def test_html_shows_heat_maps_and_the_targeting_table_and_csv_has_cell_rows(trial_csv, tmp_path):
    path, _ = trial_csv
    out = tmp_path / "r.html"
    assert run(path, *CELL_ARGS, "--format", "html", "--out", out).exit_code == 0
    html = out.read_text()
    assert html.count('<svg class="heat"') == 4  # raw and pooled, two arms
    assert "Raw effect of peer by age and self_efficacy" in html
    assert "Who to target" in html and "Probability it is best" in html
    assert "Calibration of the heterogeneity model (exploratory)" in html
    assert "style=" not in html  # colours are SVG attributes: no inline style under the CSP
    res = run(path, *CELL_ARGS, "--format", "csv")
    rows = list(csv.DictReader(io.StringIO(res.output)))
    cell_rows = [r for r in rows if r["kind"] == "cell"]
    assert len(cell_rows) == 2 * 2 * 9
    assert {r["method"] for r in cell_rows} == {"raw", "empirical_bayes"}


@pytest.mark.parametrize(
    ("extra", "fragment"),
    [
        (("--cells", "age"), "two moderators separated by a comma"),
        (("--cells", "age,age"), "two different moderators"),
        (("--cells", "age,income"), "'income' is not a moderator of this analysis"),
    ],
)
def test_bad_cells_exit_1_with_one_message(trial_csv, extra, fragment):
    path, _ = trial_csv
    res = run(path, *CELL_ARGS[:-2], *extra)
    assert res.exit_code == 1 and fragment in res.output, res.output
    assert "Traceback" not in res.output


def test_cells_need_banded_moderators_and_no_clusters(tmp_path):
    rng = np.random.default_rng(2)
    n = 400
    df = pd.DataFrame(
        {
            "arm": rng.choice(["c", "t"], n),
            "y": rng.random(n),
            "age": rng.integers(18, 80, n),
            "gender": rng.choice(["woman", "man"], n),
            "street": rng.integers(0, 40, n),
        }
    )
    path = tmp_path / "t.csv"
    df.to_csv(path, index=False)
    base = ("--arm", "arm", "--control", "c", "--outcome", "y", "--moderator", "age:35,55")
    res = run(path, *base, "--moderator", "gender", "--cells", "age,gender")
    assert res.exit_code == 1 and "needs numbers and cut points" in res.output
    res = run(
        path, *base, "--moderator", "street:10,20", "--cells", "age,street", "--cluster", "street"
    )
    assert res.exit_code == 1 and "does not account for clusters" in res.output
