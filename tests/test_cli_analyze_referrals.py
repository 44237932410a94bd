"""`nudge analyze --referred-by COL`: the report's `referrals` (the rows a mentor's
invitation enrolled against the control arm's other rows), checked against statsmodels
OLS with HC2 (no two rows share a mentor or a cluster), with CR2 by mentor when they do
(beside --saturation, whose estimates leave the invited out); bad input is refused."""

from __future__ import annotations

import json

import jsonschema
import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm
from click.testing import CliRunner

from experiments.report.model import schema
from nudge_app.cli.analyze import command as analyze_command


def _trial(tmp_path, shared: bool):
    rng = np.random.default_rng(21)
    n, invited = 600, 80
    arm = np.where(rng.random(n) < 0.5, "mentor", "control")
    joined = (rng.random(n) < np.where(arm == "mentor", 0.3, 0.2)).astype(int)
    mentors = rng.integers(0, 20, invited) if shared else np.arange(invited)
    frame = pd.DataFrame(
        {
            "arm": np.r_[arm, np.where(rng.random(invited) < 0.5, "mentor", "control")],
            "joined": np.r_[joined, (rng.random(invited) < 0.45).astype(int)],
            "mentor": [""] * n + [f"m{m}" for m in mentors],
        }
    )
    path = tmp_path / "trial.csv"
    frame.to_csv(path, index=False)
    return path, frame


def _run(args):
    result = CliRunner().invoke(analyze_command, args)
    return result


def test_referrals_equal_statsmodels_ols_with_hc2(tmp_path):
    path, frame = _trial(tmp_path, shared=False)
    result = _run([str(path), "--arm", "arm", "--control", "control", "--outcome", "joined",
                   "--referred-by", "mentor"])  # fmt: skip
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    jsonschema.validate(report, schema())
    got = report["referrals"]
    referred = frame["mentor"] != ""
    use = referred | (frame["arm"] == "control")
    X = np.column_stack([np.ones(use.sum()), referred[use].to_numpy(float)])
    fit = sm.OLS(frame.loc[use, "joined"].to_numpy(float), X).fit(cov_type="HC2")
    assert got["estimate"] == pytest.approx(fit.params[1], rel=1e-10)
    assert got["std_error"] == pytest.approx(fit.bse[1], rel=1e-8)
    assert got["n_referred"] == int(referred.sum()) and got["mentors"] == int(referred.sum())
    assert got["n_comparison"] == int((~referred & (frame["arm"] == "control")).sum())
    # Without --saturation the invited stay in the estimates (their arms were randomized).
    assert report["n_analysed"] == len(frame)


def test_with_saturation_the_invited_are_left_out_and_the_html_has_the_panel(tmp_path):
    path, frame = _trial(tmp_path, shared=True)
    rng = np.random.default_rng(3)
    frame["street"] = rng.integers(0, 30, len(frame))
    level = np.array([0, 0.4, 0.8])[frame["street"] % 3]
    frame["saturation"] = level
    frame.loc[level == 0, "arm"] = "control"
    frame.to_csv(path, index=False)
    args = [str(path), "--arm", "arm", "--control", "control", "--outcome", "joined",
            "--cluster", "street", "--saturation", "saturation", "--referred-by", "mentor"]  # fmt: skip
    result = _run(args)
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    invited = int((frame["mentor"] != "").sum())
    assert report["n_rows"] == len(frame) - invited
    assert "left out of the estimates" in result.stderr
    got = report["referrals"]
    compared = (frame["mentor"] == "") & (frame["arm"] == "control") & (level == 0)
    assert got["n_comparison"] == int(compared.sum()) and got["mentors"] <= 20
    mean_gap = (
        frame.loc[frame["mentor"] != "", "joined"].mean() - frame.loc[compared, "joined"].mean()
    )
    assert got["estimate"] == pytest.approx(mean_gap, rel=1e-10)
    html = _run([*args, "--format", "html"])
    assert html.exit_code == 0 and 'id="referrals"' in html.stdout


def test_a_missing_referral_column_is_named(tmp_path):
    path, _ = _trial(tmp_path, shared=False)
    result = _run([str(path), "--arm", "arm", "--control", "control", "--outcome", "joined",
                   "--referred-by", "invited_by"])  # fmt: skip
    assert result.exit_code == 1 and "no column 'invited_by'" in result.output
