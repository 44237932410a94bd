"""Report wording and numbers (issue 19, finding 9): "p < 0.001" never "p = < 0.001", the
Lin table's own relative lift, p-values escaped in cells, df without scientific notation."""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pytest

from experiments.analysis import analyze
from experiments.report import build_report
from experiments.report.sentences import fmt_p, p_text


@pytest.mark.parametrize(
    ("p", "text"),
    [(1e-9, "p < 0.001"), (0.0004, "p < 0.001"), (0.023, "p = 0.023"), (0.41, "p = 0.41")],
)
def test_p_in_a_sentence(p, text):
    assert p_text(p) == text
    assert "= <" not in p_text(p)


def report(n=8000, seed=3):
    rng = np.random.default_rng(seed)
    arm = rng.choice(["control", "peer"], n)
    age = rng.integers(18, 85, n)
    y = (rng.random(n) < 0.08 + 0.06 * (arm == "peer") + 0.003 * (age - 50)).astype(float)
    frame = pd.DataFrame({"arm": arm, "joined": y, "age": age})
    result = analyze(frame, arm="arm", control="control", outcome="joined", covariates=["age"])
    return build_report(result, title="T", source="generated")


def test_lin_table_shows_its_own_relative_lift_and_clean_cells():
    r = report()
    (plain,) = r.analysis.effects
    (lin,) = r.analysis.adjusted_effects
    # Computed here from the estimates, not read from the report's own lift fields.
    own = 100 * lin.estimate / lin.mean_control
    other = 100 * plain.estimate / plain.mean_control
    assert abs(own - other) > 0.05  # the two estimates differ enough to tell them apart
    html = r.to_html()
    tables = re.findall(r"<table>.*?</table>", html, re.S)
    effects = next(t for t in tables if "Relative lift" in t and plain.arm in t)
    adjusted = [t for t in tables if "Relative lift" in t][1]
    assert f"{own:.3g}%" in adjusted and f"{other:.3g}%" not in adjusted
    assert f"{other:.3g}%" in effects
    for table in (effects, adjusted):
        assert "<td>&lt; 0.001</td>" in table  # escaped, and never "= <"
        assert "<td>< " not in table
        assert not re.search(r"\de[+-]\d", table)  # df 7,998, not 8e+03
    assert "p = &lt;" not in html and "p = <" not in html
    assert fmt_p(1e-6) == "< 0.001"
