"""P-values in the sentences officers and evaluators read are worded as the report words
them (issue 19, finding 9 and its review): "p < 0.001" or "p = 0.023", never
"p = 1.2e-05" nor "p = < 0.001": the analysis warnings, the console's monitoring verdict,
and a scan of the code that writes such sentences."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from experiments.analysis import analyze
from experiments.p_values import fmt_p, p_text

ROOT = Path(__file__).resolve().parents[2]
SCIENTIFIC = re.compile(r"\d(?:\.\d+)?e-\d")


@pytest.mark.parametrize(
    ("p", "cell", "sentence"),
    [
        (1.2e-05, "< 0.001", "p < 0.001"),
        (0.0004, "< 0.001", "p < 0.001"),
        (0.001, "0.001", "p = 0.001"),
        (0.023, "0.023", "p = 0.023"),
        (0.41, "0.41", "p = 0.41"),
        (float("nan"), "n/a", "p = n/a"),
    ],
)
def test_the_two_forms(p, cell, sentence):
    assert fmt_p(p) == cell
    assert p_text(p) == sentence


def _lopsided(seed: int = 5) -> pd.DataFrame:
    """Three times as many rows in the control as in the message arm of an equal design,
    and the message arm's outcomes mostly missing: both checks' p-values are ~1e-100."""
    rng = np.random.default_rng(seed)
    arm = np.array(["control"] * 3000 + ["peer"] * 1000)
    y = (rng.random(arm.size) < 0.2).astype(float)
    y[(arm == "peer") & (rng.random(arm.size) < 0.5)] = np.nan
    return pd.DataFrame({"arm": arm, "joined": y})


def test_analysis_warnings_word_tiny_p_values_as_the_report_does():
    result = analyze(
        _lopsided(), arm="arm", control="control", outcome="joined", flow_columns=False
    )
    texts = {w.code: w.message for w in result.warnings}
    assert "srm" in texts, texts
    for code, message in texts.items():
        assert not SCIENTIFIC.search(message), f"{code}: {message}"
        assert "= <" not in message, f"{code}: {message}"
    assert "p < 0.001" in texts["srm"]


def test_monitoring_verdict_words_p_as_the_report_does():
    from nudge_app.services.monitoring import _srm

    bad = _srm({"control": 900, "peer": 300}, {"control": 0.5, "peer": 0.5})
    assert bad.status == "mismatch" and bad.p_value < 1e-5
    assert "(p < 0.001)" in bad.message and not SCIENTIFIC.search(bad.message)
    good = _srm({"control": 500, "peer": 490}, {"control": 0.5, "peer": 0.5})
    assert good.status == "ok"
    assert f"(p = {fmt_p(good.p_value)};" in good.message


def test_no_sentence_formats_a_p_value_itself():
    """Every "p = {...}" in the code that writes sentences goes through p_text: a format
    spec such as `:.2g` beside "p =" would print 1.2e-05 for a tiny p-value, and a table
    cell's fmt_p after "p =" reads "p = < 0.001"."""
    pattern = re.compile(
        r'p = (?:"\s*f")?\{[^}]*:\.\d*[eg]\}|p = (?:"\s*f")?\{(?:escape\()?fmt_p\('
    )
    offenders = []
    for folder in ("experiments", "nudge_app"):
        for path in (ROOT / folder).rglob("*.py"):
            text = path.read_text()
            offenders += [f"{path.relative_to(ROOT)}: {m}" for m in pattern.findall(text)]
        for path in (ROOT / folder).rglob("*.html"):
            text = path.read_text()
            offenders += [
                f"{path.relative_to(ROOT)}: {m}"
                for m in re.findall(r"p = \{\{[^}]*\}\}", text)
                if "p_text" not in m and "fmt_p" not in m
            ]
    assert not offenders, offenders
