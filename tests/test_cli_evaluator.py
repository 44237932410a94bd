"""Issue 19, finding 9 repeated with the real `nudge` commands (the installed console
script, in a subprocess, on CSV files written here), one test per point of the finding:

- a numeric moderator given without cut points gets the registry's default bands, and says
  so; one without default bands is refused with the cut points to give;
- sentences read "p < 0.001", never "p = < 0.001" nor "p = 1.2e-05";
- the Lin table's relative lift is its own (checked against statsmodels' Lin regression);
- `nudge analyse`, the help text's own spelling, runs;
- `--out` says which file was written and how big it is;
- `nudge power` shows its progress: a bar on a terminal (a pseudo-terminal here), lines
  into a file with `--progress`.
"""

from __future__ import annotations

import json
import os
import re
import select
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import statsmodels.formula.api as smf

ROOT = Path(__file__).resolve().parents[1]
CATALOG = ROOT / "experiments" / "catalog"
NUDGE = Path(sys.executable).with_name("nudge")

pytestmark = [
    pytest.mark.slow,  # each command starts a Python with pandas and scipy (~2 s)
    pytest.mark.skipif(not NUDGE.exists(), reason="the nudge console script is not installed"),
]


def nudge(*args, cwd: Path, **kw) -> subprocess.CompletedProcess:
    env = {**os.environ, "NO_COLOR": "1", "COLUMNS": "100"}
    return subprocess.run(
        [str(NUDGE), *map(str, args)],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
        **kw,
    )


@pytest.fixture(scope="module")
def trial(tmp_path_factory) -> tuple[Path, pd.DataFrame]:
    """8,000 residents, a message that raises sign-ups by ~6 points (p ~ 1e-20), and an
    age that predicts joining (so the Lin estimate differs from the plain one)."""
    rng = np.random.default_rng(3)
    n = 8000
    arm = rng.choice(["control", "peer"], n)
    age = rng.integers(18, 85, n)
    joined = (rng.random(n) < 0.08 + 0.06 * (arm == "peer") + 0.003 * (age - 50)).astype(int)
    frame = pd.DataFrame({"arm": arm, "joined": joined, "age": age})
    folder = tmp_path_factory.mktemp("finding9")
    frame.to_csv(folder / "trial.csv", index=False)
    return folder, frame


BASE = ["trial.csv", "--arm", "arm", "--control", "control", "--outcome", "joined"]


def test_a_numeric_moderator_without_cuts_gets_the_default_bands(trial):
    folder, frame = trial
    res = nudge("analyze", *BASE, "--moderator", "age", cwd=folder)
    assert res.returncode == 0, res.stderr
    report = json.loads(res.stdout)
    (age,) = report["moderators"]
    assert age["levels"] == ["18-34", "35-54", "55+"] and age["default_bands"] is True
    # Three subgroups per arm, not one per distinct age (there are 67 here).
    levels = {s["level"] for s in report["subgroups"] if s["moderator"] == "age"}
    assert levels == {"18-34", "35-54", "55+"} and frame.age.nunique() > 60
    young = frame[frame.age < 35]
    s = next(s for s in report["subgroups"] if s["level"] == "18-34")
    assert s["n"] == len(young)
    (warning,) = [w for w in report["warnings"] if w["code"] == "default_bands"]
    assert "without cut points" in warning["message"] and "18-34, 35-54, 55+" in warning["message"]


def test_a_numeric_moderator_without_default_bands_is_refused_clearly(tmp_path):
    rng = np.random.default_rng(1)
    pd.DataFrame(
        {
            "arm": rng.choice(["c", "t"], 300),
            "y": rng.integers(0, 2, 300),
            "income": rng.integers(10_000, 90_000, 300),
        }
    ).to_csv(tmp_path / "inc.csv", index=False)
    args = ["inc.csv", "--arm", "arm", "--control", "c", "--outcome", "y"]
    res = nudge("analyze", *args, "--moderator", "income", cwd=tmp_path)
    assert res.returncode == 1 and res.stdout == ""
    assert "moderator 'income' is numeric with" in res.stderr
    assert re.search(r"income:\d+,\d+", res.stderr), res.stderr  # the cut points to give
    assert "Traceback" not in res.stderr


def test_sentences_say_p_below_0_001_as_the_report_does(trial):
    folder, _ = trial
    res = nudge("analyze", *BASE, "--covariate", "age", cwd=folder)
    assert res.returncode == 0, res.stderr
    report = json.loads(res.stdout)
    assert report["effects"][0]["p_value"] < 1e-10
    (sentence,) = [s["text"] for s in report["sentences"]]
    assert "p < 0.001" in sentence
    html = nudge("analyze", *BASE, "--covariate", "age", "--format", "html", cwd=folder).stdout
    for text in (sentence, html, *(w["message"] for w in report["warnings"])):
        assert "p = <" not in text and "p = &lt;" not in text
        assert not re.search(r"p = \d(?:\.\d+)?e-\d", text), text
    assert "p &lt; 0.001" in html


def test_the_lin_table_shows_its_own_relative_lift(trial):
    folder, frame = trial
    res = nudge("analyze", *BASE, "--covariate", "age", "--format", "html", cwd=folder)
    assert res.returncode == 0, res.stderr
    # Lin (2013) test-side: centred covariate interacted with the arm, HC2.
    data = frame.assign(t=(frame.arm == "peer").astype(float), xc=frame.age - frame.age.mean())
    fit = smf.ols("joined ~ t * xc", data).fit(cov_type="HC2")
    lin_lift = 100 * fit.params["t"] / fit.params["Intercept"]
    plain = frame.groupby("arm").joined.mean()
    plain_lift = 100 * (plain["peer"] - plain["control"]) / plain["control"]
    assert abs(lin_lift - plain_lift) > 0.05  # far enough apart to tell one from the other
    tables = [t for t in re.findall(r"<table>.*?</table>", res.stdout, re.S) if "lift" in t]
    assert len(tables) == 2, "the effects table and the Lin (adjusted) table"
    plain_table, lin_table = tables
    assert f"{lin_lift:.3g}%" in lin_table and f"{plain_lift:.3g}%" not in lin_table
    assert f"{plain_lift:.3g}%" in plain_table


def test_analyse_is_an_alias_and_out_confirms_the_file_written(trial):
    folder, _ = trial
    helped = nudge("--help", cwd=folder)
    assert "analyse" in helped.stdout
    for fmt, out in (("json", "r.json"), ("csv", "r.csv"), ("html", "r.html")):
        res = nudge("analyse", *BASE, "--format", fmt, "--out", out, cwd=folder)
        assert res.returncode == 0, res.stderr
        size = (folder / out).stat().st_size
        assert res.stdout == f"Wrote the {fmt.upper()} report to {out} ({size:,} bytes).\n"
    assert json.loads((folder / "r.json").read_text())["n_analysed"] == 8000
    res = nudge("analyse", *BASE, "--out", "no-such-folder/r.json", cwd=folder)
    assert res.returncode == 1 and "--out no-such-folder/r.json: cannot write" in res.stderr


def _on_a_terminal(args: list[str], cwd: Path) -> tuple[int, str, str]:
    """Run `nudge` with stderr on a pseudo-terminal (as in an evaluator's shell)."""
    import pty

    leader, follower = pty.openpty()
    with subprocess.Popen(
        [str(NUDGE), *args],
        cwd=cwd,
        stdout=subprocess.PIPE,
        stderr=follower,
        env={**os.environ, "COLUMNS": "100", "TERM": "xterm"},
    ) as proc:
        os.close(follower)
        seen = bytearray()
        while True:
            ready, _, _ = select.select([leader], [], [], 1.0)
            if ready:
                try:
                    chunk = os.read(leader, 65536)
                except OSError:  # the terminal closes when the command ends
                    chunk = b""
                if not chunk:
                    break
                seen += chunk
            elif proc.poll() is not None:
                break
        stdout = proc.stdout.read().decode()
        proc.wait(timeout=60)
    os.close(leader)
    return proc.returncode, stdout, seen.decode(errors="replace")


def test_power_shows_its_progress(tmp_path):
    design = str(CATALOG / "self-efficacy-cleanup.toml")
    args = ["power", design, "--simulations", "50", "--n", "400"]
    code, stdout, terminal = _on_a_terminal(args, tmp_path)
    assert code == 0, terminal
    assert "Main effect" in stdout
    assert "Simulating trials" in terminal and "50/50" in terminal
    res = nudge(*args, "--progress", cwd=tmp_path)  # into a log file: plain lines
    assert res.returncode == 0, res.stderr
    lines = [x for x in res.stderr.splitlines() if x.startswith("Simulating trials")]
    assert lines[-1] == "Simulating trials: 50/50" and 5 <= len(lines) <= 11
    quiet = nudge(*args, cwd=tmp_path)  # not a terminal, not asked: no bar in a log
    assert "Simulating trials" not in quiet.stderr and "Main effect" in quiet.stdout
