"""`nudge analyze`: JSON content against statsmodels, formats, and refused inputs."""

from __future__ import annotations

import csv
import io
import json
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
import statsmodels.formula.api as smf
from click.testing import CliRunner

from experiments.report import SCHEMA_VERSION
from nudge_app.cli.analyze import command


@pytest.fixture
def trial_csv(tmp_path):
    rng = np.random.default_rng(11)
    n = 4000
    arm = rng.choice(["00", "01", "02", "03"], n)
    joined = (rng.random(n) < 0.1 + 0.03 * (arm == "01") + 0.05 * (arm == "03")).astype(float)
    df = pd.DataFrame(
        {
            "group": arm,
            "joined": joined,
            "age": rng.integers(18, 80, n),
            "self_efficacy": np.round(rng.uniform(1, 5, n), 2),
            "gender": rng.choice(["woman", "man"], n),
        }
    )
    df.loc[:6, "joined"] = np.nan
    df.loc[10:12, "age"] = np.nan
    path = tmp_path / "trial.csv"
    df.to_csv(path, index=False)
    return path, df


def run(*args):
    return CliRunner().invoke(command, [str(a) for a in args], catch_exceptions=False)


def test_json_report_matches_statsmodels_hc2(trial_csv):
    path, df = trial_csv
    res = run(
        path,
        "--arm",
        "group",
        "--control",
        "00",
        "--outcome",
        "joined",
        "--moderator",
        "age:25,35",
        "--moderator",
        "gender",
    )
    assert res.exit_code == 0, res.output
    report = json.loads(res.output)
    assert report["schema_version"] == SCHEMA_VERSION
    assert "Welch" in report["reference_distribution"]
    kept = df.dropna(subset=["joined"]).copy()
    kept["group"] = kept["group"].astype(str).str.zfill(2)
    assert report["dropped"]["missing_outcome"] == 7
    assert report["dropped"]["missing_moderator"]["age"] == 3  # left out of age's subgroups
    assert report["dropped"]["total"] == 7
    assert report["n_analysed"] == len(kept)
    assert {a["arm"] for a in report["arms"]} == {"00", "01", "02", "03"}
    fit = smf.ols("joined ~ C(group, Treatment('00'))", kept).fit(cov_type="HC2")
    for e in report["effects"]:
        name = f"C(group, Treatment('00'))[T.{e['arm']}]"
        assert e["estimate"] == pytest.approx(fit.params[name], rel=1e-8)
        assert e["std_error"] == pytest.approx(fit.bse[name], rel=1e-8)
        assert e["ci_low"] < e["estimate"] < e["ci_high"]
        assert e["p_adjusted"] >= e["p_value"]
    ages = [s["level"] for s in report["subgroups"] if s["moderator"] == "age"]
    assert list(dict.fromkeys(ages)) == ["<25", "25-34", "35+"]
    genders = [s["level"] for s in report["subgroups"] if s["moderator"] == "gender"]
    assert list(dict.fromkeys(genders)) == ["man", "woman"]
    young = kept[kept.age < 25]  # NaN ages are not young
    s = next(s for s in report["subgroups"] if s["level"] == "<25" and s["arm"] == "03")
    t, c = young.loc[young.group == "03", "joined"], young.loc[young.group == "00", "joined"]
    assert s["n"] == len(t) + len(c)
    assert s["estimate"] == pytest.approx(t.mean() - c.mean(), rel=1e-10)
    assert s["std_error"] == pytest.approx(np.sqrt(t.var() / len(t) + c.var() / len(c)), rel=1e-10)
    inter = [i for i in report["interactions"] if i["moderator"] == "age"]
    assert {i["arm"] for i in inter} == {"01", "02", "03"} and all(i["df"] == 2 for i in inter)
    assert set(report["srm"]) >= {"statistic", "df", "p_value"} and report["srm"]["df"] == 3
    assert len(report["sentences"]) == 3


def test_csv_has_one_row_per_estimate_and_html_has_forest_plot(trial_csv, tmp_path):
    path, _ = trial_csv
    out = tmp_path / "r.csv"
    res = run(
        path,
        "--arm",
        "group",
        "--control",
        "00",
        "--outcome",
        "joined",
        "--moderator",
        "self_efficacy:2.5,3.5",
        "--format",
        "csv",
        "--out",
        out,
    )
    assert res.exit_code == 0
    assert res.output == f"Wrote the CSV report to {out} ({out.stat().st_size:,} bytes).\n"
    rows = list(csv.DictReader(io.StringIO(out.read_text())))
    kinds = [r["kind"] for r in rows]
    assert kinds.count("effect") == 3
    assert kinds.count("subgroup") == 9 and kinds.count("interaction") == 3
    assert kinds.count("slope") == 3
    res = run(
        path,
        "--arm",
        "group",
        "--control",
        "00",
        "--outcome",
        "joined",
        "--moderator",
        "age:35,55",
        "--format",
        "html",
    )
    assert res.exit_code == 0
    assert res.output.startswith("<!DOCTYPE html>") and '<svg class="forest"' in res.output
    assert "<script" not in res.output and "http://" not in res.output.replace(
        'xmlns="http://www.w3.org/2000/svg"', ""
    )


@pytest.mark.parametrize(
    "args, fragment",
    [
        (["--outcome", "missing"], "no column 'missing'"),
        (["--control", "99"], "control value '99' does not occur"),
        (["--outcome", "gender"], "outcome column 'gender' is not numeric"),
        (["--moderator", "empty"], "'empty' is missing on every row"),
        (["--moderator", "age:35,x"], "cut points must be comma-separated numbers"),
        (["--moderator", "self_efficacy_followup:3"], "measured after the message"),
        (["--alpha", "1.5"], "--alpha"),
    ],
)
def test_bad_input_exits_nonzero_with_one_clear_message(tmp_path, args, fragment):
    df = pd.DataFrame(
        {
            "arm": ["c", "t", "c", "t", "c", "t"],
            "y": [1, 0, 0, 1, 1, 1],
            "age": [20, 30, 40, 50, 60, 70],
            "gender": ["f", "m"] * 3,
            "empty": [None] * 6,
            "self_efficacy_followup": [3.0] * 6,
        }
    )
    path = tmp_path / "t.csv"
    df.to_csv(path, index=False)
    base = ["--arm", "arm", "--control", "c", "--outcome", "y"]
    merged = base + args
    res = CliRunner().invoke(command, [str(path), *merged])
    assert res.exit_code != 0
    assert fragment in res.output, res.output
    assert "Traceback" not in res.output and res.output.count("Error:") == 1


def test_small_arm_and_unreadable_files(tmp_path):
    path = tmp_path / "t.csv"
    path.write_text("arm,y\nc,1\nc,0\nt,1\n")
    res = CliRunner().invoke(
        command, [str(path), "--arm", "arm", "--control", "c", "--outcome", "y"]
    )
    assert res.exit_code != 0 and "arm 't' has 1 row" in res.output
    for bad, fragment in [
        (tmp_path / "nope.csv", "no such file"),
        (tmp_path, "directory"),
        (tmp_path / "empty.csv", "empty"),
    ]:
        if bad.name == "empty.csv":
            bad.write_text("")
        res = CliRunner().invoke(
            command, [str(bad), "--arm", "arm", "--control", "c", "--outcome", "y"]
        )
        assert res.exit_code != 0 and fragment in res.output and "Traceback" not in res.output
    binary = tmp_path / "bin.csv"
    binary.write_bytes(b"\xff\xfe\x00arm\x00")
    res = CliRunner().invoke(
        command, [str(binary), "--arm", "arm", "--control", "c", "--outcome", "y"]
    )
    assert res.exit_code != 0 and "Traceback" not in res.output


def test_whole_process_without_flask(trial_csv):
    path, _ = trial_csv
    code = (
        "import sys\nfrom nudge_app.cli import main\n"
        "try:\n    main(sys.argv[1:])\nexcept SystemExit as e:\n    rc = e.code\n"
        "assert 'flask' not in sys.modules, 'flask imported'\n"
        "assert 'nudge_app.app' not in sys.modules\nsys.exit(rc)\n"
    )
    proc = subprocess.run(
        [
            sys.executable,
            "-c",
            code,
            "analyze",
            str(path),
            "--arm",
            "group",
            "--control",
            "0",
            "--outcome",
            "joined",
        ],
        capture_output=True,
        text=True,
    )
    # arms are text as written: "0" is not "00"
    assert proc.returncode == 1 and "control value '0' does not occur" in proc.stderr
    assert "Traceback" not in proc.stderr
    proc = subprocess.run(
        [
            sys.executable,
            "-c",
            code,
            "analyze",
            str(path),
            "--arm",
            "group",
            "--control",
            "00",
            "--outcome",
            "joined",
        ],
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["control"] == "00"


def test_preregistered_moderator_and_underpowered_warning(trial_csv):
    path, _ = trial_csv
    res = run(
        path,
        "--arm",
        "group",
        "--control",
        "00",
        "--outcome",
        "joined",
        "--moderator",
        "age:35,55",
        "--moderator",
        "gender",
        "--preregistered",
        "age",
        "--minimum-effect",
        "0.001",
        "--correction",
        "bh",
    )
    assert res.exit_code == 0, res.output
    report = json.loads(res.output)
    families = {s["moderator"]: s["family"] for s in report["subgroups"]}
    assert families == {"age": "confirmatory", "gender": "exploratory"}
    assert report["multiplicity"] == {"arms": "bh", "confirmatory": "bh", "exploratory": "bh"}
    codes = [w["code"] for w in report["warnings"]]
    assert "underpowered" in codes and "dropped_rows" in codes


def test_analyse_is_an_alias_and_numeric_moderators_without_cuts_get_bands(trial_csv):
    from nudge_app.cli import main

    path, _ = trial_csv
    base = [str(path), "--arm", "group", "--control", "00", "--outcome", "joined"]
    res = CliRunner().invoke(main, ["analyse", *base, "--moderator", "age"])
    assert res.exit_code == 0, res.output
    report = json.loads(res.output)
    (age,) = report["moderators"]
    assert age["levels"] == ["18-34", "35-54", "55+"] and age["default_bands"] is True
    assert any(w["code"] == "default_bands" for w in report["warnings"])
    assert "analyse" in CliRunner().invoke(main, ["--help"]).output
    res = run(*base, "--moderator", "self_efficacy", "--moderator", "gender")
    assert json.loads(res.output)["moderators"][0]["levels"] == ["low", "middle", "high"]


def test_a_numeric_moderator_with_many_values_and_no_default_bands_is_refused(tmp_path):
    rng = np.random.default_rng(3)
    df = pd.DataFrame(
        {
            "arm": rng.choice(["c", "t"], 300),
            "y": rng.integers(0, 2, 300),
            "income": rng.integers(10_000, 90_000, 300),
        }
    )
    path = tmp_path / "t.csv"
    df.to_csv(path, index=False)
    res = run(path, "--arm", "arm", "--control", "c", "--outcome", "y", "--moderator", "income")
    assert res.exit_code == 1
    assert "'income' is numeric with" in res.output and "income:" in res.output
    res = run(path, "--arm", "arm", "--control", "c", "--outcome", "y", "--preregistered", "age")
    assert res.exit_code == 1 and "'age' is not a moderator of this analysis" in res.output


def test_probability_blocks_and_randomization_inference_from_the_command_line(tmp_path):
    rng = np.random.default_rng(8)
    n = 400
    stratum = rng.choice(["a", "b"], n)
    p_t = np.where(stratum == "a", 0.25, 0.75)
    treated = rng.random(n) < p_t
    df = pd.DataFrame(
        {
            "arm": np.where(treated, "t", "c"),
            "stratum": stratum,
            "p": np.where(treated, p_t, 1 - p_t),
            "y": rng.normal(0, 1, n) + 2.0 * (stratum == "b") + 0.3 * treated,
        }
    )
    path = tmp_path / "t.csv"
    df.to_csv(path, index=False)
    base = [path, "--arm", "arm", "--control", "c", "--outcome", "y"]
    res = run(*base, "--block", "stratum", "--probability", "p", "--randomization-inference", "99")
    assert res.exit_code == 0, res.output
    report = json.loads(res.output[res.output.index("{") :])
    (e,) = report["effects"]
    assert e["method"] == "blocked" and 0 < e["ri_p_value"] <= 1
    assert report["design"]["probability"] == "p" and report["design"]["strata"] == 2
    assert report["design"]["randomization_inference"]["draws"] == 99
    ipw = json.loads(run(*base, "--probability", "p").output)
    assert ipw["effects"][0]["method"] == "ipw"
    html = run(*base, "--block", "stratum", "--format", "html").output
    assert "p = &lt;" not in html and "p = <" not in html


def test_sequential_adds_the_interface_key_and_refuses_a_column_that_is_not_a_time(tmp_path):
    rng = np.random.default_rng(12)
    n = 900
    df = pd.DataFrame(
        {
            "arm": rng.choice(["control", "peer"], n),
            "joined": (rng.random(n) < 0.2).astype(int),
            "enrolled": rng.choice(["2026-11-02", "2026-11-03", "2026-11-10"], n),
        }
    )
    path = tmp_path / "seq.csv"
    df.to_csv(path, index=False)
    args = [str(path), "--arm", "arm", "--control", "control", "--outcome", "joined"]
    res = CliRunner().invoke(command, [*args, "--sequential", "enrolled"])
    assert res.exit_code == 0, res.output
    (entry,) = json.loads(res.output)["sequential"]
    assert list(entry) == ["arm", "method", "looks"] and entry["arm"] == "peer"
    assert [x["through"] for x in entry["looks"]] == ["2026-11-02", "2026-11-03", "2026-11-10"]
    assert list(entry["looks"][0]) == ["through", "n", "estimate", "ci_low", "ci_high", "p_value"]
    assert entry["looks"][-1]["n"] == n
    df.loc[4, "enrolled"] = "soon"
    df.to_csv(path, index=False)
    res = CliRunner().invoke(command, [*args, "--sequential", "enrolled"])
    assert res.exit_code == 1 and "'soon' at data row 5" in res.output
    assert "Traceback" not in res.output
    res = CliRunner().invoke(command, [*args, "--sequential", "when"])
    assert res.exit_code == 1 and "no column 'when'" in res.output
