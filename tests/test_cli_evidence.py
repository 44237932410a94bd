"""`nudge evidence pool`: the exact JSON per group against statsmodels and the test-side
formulas, the readable text, and refused inputs named by row and column."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner
from scipy import stats
from statsmodels.stats.meta_analysis import combine_effects

from nudge_app.cli import main

FIXTURES = Path(__file__).parent / "experiments" / "fixtures"
KEYS = [
    "group",
    "k",
    "estimate",
    "std_error",
    "ci_low",
    "ci_high",
    "tau2",
    "i2",
    "prediction_low",
    "prediction_high",
]


@pytest.fixture
def teacher_csv(tmp_path):
    """Raudenbush (1985) as standard errors, split into two groups by study number."""
    d = pd.read_csv(FIXTURES / "dat_raudenbush1985.csv", comment="#")
    d["se"] = np.sqrt(d["vi"])
    d["mechanism"] = np.where(d["study"] <= 10, "peer", "self-efficacy")
    path = tmp_path / "effects.csv"
    d[["study", "mechanism", "yi", "se"]].to_csv(path, index=False)
    return path, d


def run(*args):
    return CliRunner().invoke(main, ["evidence", "pool", *map(str, args)])


def test_json_by_group_with_dl_equals_statsmodels(teacher_csv):
    path, d = teacher_csv
    res = run(
        path,
        "--estimate",
        "yi",
        "--std-error",
        "se",
        "--by",
        "mechanism",
        "--method",
        "dl",
        "--format",
        "json",
    )
    assert res.exit_code == 0, res.output
    out = json.loads(res.output)
    assert [g["group"] for g in out] == ["peer", "self-efficacy"]
    for g in out:
        assert list(g) == KEYS
        sub = d[d["mechanism"] == g["group"]]
        sm = combine_effects(sub["yi"].to_numpy(), sub["se"].to_numpy() ** 2, method_re="dl")
        _, ci, _, _ = sm.conf_int(use_t=False)
        assert g["k"] == len(sub)
        assert g["estimate"] == pytest.approx(sm.mean_effect_re, rel=1e-6)
        assert g["std_error"] == pytest.approx(sm.sd_eff_w_re, rel=1e-6)
        assert (g["ci_low"], g["ci_high"]) == pytest.approx(tuple(ci), rel=1e-6)
        assert g["tau2"] == pytest.approx(sm.tau2, rel=1e-6, abs=1e-12)
        assert g["i2"] == pytest.approx(sm.i2, rel=1e-6, abs=1e-12)
        half = stats.t.ppf(0.975, len(sub) - 2) * math.sqrt(sm.tau2 + sm.sd_eff_w_re**2)
        pred = (sm.mean_effect_re - half, sm.mean_effect_re + half)
        assert (g["prediction_low"], g["prediction_high"]) == pytest.approx(pred, rel=1e-6)


def test_json_reml_uses_hartung_knapp(teacher_csv):
    path, _ = teacher_csv
    res = run(path, "--estimate", "yi", "--std-error", "se", "--format", "json")
    assert res.exit_code == 0, res.output
    (g,) = json.loads(res.output)
    assert g["group"] is None and g["k"] == 19
    # published (Raudenbush 2009, Table 16.3): REML with the Knapp-Hartung interval
    assert g["tau2"] == pytest.approx(0.0188, abs=5e-5)
    assert (g["estimate"], g["std_error"]) == pytest.approx((0.0837, 0.0616), abs=5e-5)
    assert (g["ci_low"], g["ci_high"]) == pytest.approx((-0.0457, 0.2131), abs=5e-5)


def test_text_is_a_readable_table(teacher_csv):
    path, _ = teacher_csv
    res = run(path, "--estimate", "yi", "--std-error", "se", "--by", "mechanism")
    assert res.exit_code == 0, res.output
    assert "Hartung-Knapp-Sidik-Jonkman" in res.output and "k - 2 df" in res.output
    lines = res.output.splitlines()
    header = next(line for line in lines if line.startswith("mechanism"))
    assert "estimate" in header and "I^2" in header
    assert any(line.startswith("peer ") and " 10 " in line for line in lines)
    assert any(line.startswith("self-efficacy") for line in lines)


def test_small_groups_carry_their_message(tmp_path):
    path = tmp_path / "small.csv"
    path.write_text("arm,est,se\npeer,0.03,0.01\nnotes,0.01,0.02\nnotes,0.02,0.02\n")
    res = run(path, "--estimate", "est", "--std-error", "se", "--by", "arm", "--format", "json")
    assert res.exit_code == 0, res.output
    peer, notes = json.loads(res.output)
    assert peer["k"] == 1 and peer["estimate"] == 0.03 and peer["tau2"] is None
    assert notes["k"] == 2 and notes["prediction_low"] is None and notes["tau2"] is not None
    text = run(path, "--estimate", "est", "--std-error", "se", "--by", "arm").output
    assert "peer: one campaign only" in text and "notes: a prediction interval needs" in text


@pytest.mark.parametrize(
    ("body", "args", "message"),
    [
        ("est,se\n0.1,0.1\n", ("--estimate", "effect", "--std-error", "se"), "no column 'effect'"),
        (
            "est,se\n0.1,0.1\n0.2,-0.05\n",
            (),
            "row 2, column 'se': the standard error -0.05 must be greater than 0",
        ),
        ("est,se\n0.1,0.1\n0.2,0\n", (), "row 2, column 'se': the standard error 0 must be"),
        ("est,se\n0.1,0.1\nabc,0.1\n", (), "row 2, column 'est': 'abc' is not a number"),
        ("est,se\n0.1,0.1\n0.3,\n", (), "row 2, column 'se': the value is missing"),
        ("est,se\n0.1,0.1\n0.3,inf\n", (), "row 2, column 'se': 'inf' is not a finite number"),
        ("est,se\n", (), "no data rows"),
        ("", (), "the file is empty"),
    ],
)
def test_bad_input_names_row_and_column(tmp_path, body, args, message):
    path = tmp_path / "in.csv"
    path.write_text(body)
    res = run(path, *(args or ("--estimate", "est", "--std-error", "se")))
    assert res.exit_code != 0
    assert message in res.output and "Traceback" not in res.output


def test_bad_group_and_missing_file(tmp_path):
    path = tmp_path / "in.csv"
    path.write_text("est,se,arm\n0.1,0.1,peer\n0.2,0.1,\n")
    res = run(path, "--estimate", "est", "--std-error", "se", "--by", "arm")
    assert res.exit_code != 0 and "row 2, column 'arm': no group" in res.output
    res = run(tmp_path / "nope.csv", "--estimate", "est", "--std-error", "se")
    assert res.exit_code != 0 and "no such file" in res.output


def test_whole_process_without_flask(teacher_csv):
    path, _ = teacher_csv
    code = (
        "import sys\nfrom nudge_app.cli import main\n"
        "try:\n    main(sys.argv[1:])\nexcept SystemExit as e:\n    rc = e.code\n"
        "assert 'flask' not in sys.modules, 'flask imported'\n"
        "assert 'sqlalchemy' not in sys.modules, 'sqlalchemy imported'\nsys.exit(rc)\n"
    )
    args = ["evidence", "pool", str(path), "--estimate", "yi", "--std-error", "se"]
    proc = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert "all rows" in proc.stdout
