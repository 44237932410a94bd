"""The report object: JSON against its schema, CSV rows, sentences, HTML safety."""

from __future__ import annotations

import csv
import io
import json

import jsonschema
import numpy as np
import pandas as pd
import pytest

from experiments.analysis import analyze
from experiments.bands import BandSpec
from experiments.report import SCHEMA_VERSION, build_report, schema


def trial(n=3000, seed=0, effect=0.05):
    rng = np.random.default_rng(seed)
    arm = rng.choice(["control", "peer", "info"], n)
    y = (rng.random(n) < 0.1 + effect * (arm == "peer")).astype(float)
    return pd.DataFrame(
        {
            "arm": arm,
            "joined": y,
            "age": rng.integers(18, 80, n),
            "self_efficacy": rng.uniform(1, 5, n),
            "gender": rng.choice(["f", "m"], n),
        }
    )


def make_report(frame=None, **kwargs):
    frame = trial() if frame is None else frame
    result = analyze(
        frame,
        arm="arm",
        control="control",
        outcome="joined",
        moderators=[BandSpec("age", (35.0, 55.0)), BandSpec("gender")],
        covariates=["self_efficacy"],
        preregistered=["age"],
        **kwargs,
    )
    return build_report(
        result, title="Test", source="generated", arm_labels={"peer": "peer invitation"}
    )


def test_json_validates_against_the_documented_schema():
    report = make_report()
    data = json.loads(report.to_json())
    jsonschema.validate(data, schema())
    assert data["schema_version"] == SCHEMA_VERSION
    assert {"arms", "effects", "subgroups", "interactions", "srm"} <= set(data)
    for effect in data["effects"]:
        assert {
            "arm",
            "estimate",
            "std_error",
            "ci_low",
            "ci_high",
            "p_value",
            "p_adjusted",
        } <= set(effect)


def test_degenerate_numbers_are_null_not_nan():
    frame = trial(n=400)
    frame.loc[frame.arm == "info", "joined"] = 0.0
    frame.loc[frame.arm == "control", "joined"] = 0.0
    report = make_report(frame)
    text = report.to_json()
    assert "NaN" not in text
    data = json.loads(text)
    jsonschema.validate(data, schema())
    info = next(e for e in data["effects"] if e["arm"] == "info")
    assert info["error"] == "zero_variance" and info["std_error"] is None
    assert any(w["code"] == "estimation" for w in data["warnings"])


def test_csv_has_one_row_per_estimate():
    report = make_report()
    rows = list(csv.DictReader(io.StringIO(report.to_csv())))
    a = report.analysis
    expected = (
        len(a.effects)
        + len(a.adjusted_effects)
        + len(a.subgroups)
        + len(a.interactions)
        + len(a.slopes)
    )
    assert len(rows) == expected
    sub = next(r for r in rows if r["kind"] == "subgroup")
    s = a.subgroups[0]
    assert float(sub["estimate"]) == s.estimate and sub["level"] == s.level


def test_sentence_states_effect_interval_and_adjusted_p():
    report = make_report(trial(n=20000, effect=0.05))
    text = report.sentences[0]["text"]
    e = report.analysis.effects[0]
    assert e.arm == "info" or e.arm == "peer"
    peer = next(s["text"] for s in report.sentences if s["arm"] == "peer")
    assert peer.startswith("The \u201cpeer invitation\u201d message raised sign-ups by ")
    assert "percentage points (95% CI" in peer and "Holm-adjusted" in peer
    assert "p < 0.001" in peer and "p = <" not in peer  # n = 20,000: a tiny p-value
    info = next(s["text"] for s in report.sentences if s["arm"] == "info")
    assert "consistent with no effect" in info
    assert text


def test_html_escapes_labels_and_is_self_contained():
    frame = trial(n=600)
    result = analyze(
        frame, arm="arm", control="control", outcome="joined", moderators=[BandSpec("gender")]
    )
    report = build_report(
        result, title="<b>T</b>", source="x", arm_labels={"peer": "<script>alert(1)</script>"}
    )
    html = report.to_html()
    assert "<script>" not in html and "&lt;script&gt;" in html
    assert "<b>T</b>" not in html
    assert "<link" not in html and "src=" not in html


def test_render_rejects_unknown_format():
    with pytest.raises(ValueError):
        make_report().render("xml")


def clustered_stratified_trial(seed=0):
    rng = np.random.default_rng(seed)
    sizes = rng.integers(3, 20, 16)
    cl = np.repeat(np.arange(16), sizes)
    arm_of = rng.permutation(np.arange(16) % 2)
    frame = pd.DataFrame(
        {
            "arm": np.where(arm_of[cl] == 1, "peer", "control"),
            "cluster": cl,
            "area": np.where(cl < 8, "north", "south"),
            "age": rng.integers(18, 80, len(cl)),
            "self_efficacy": rng.uniform(1, 5, len(cl)),
        }
    )
    frame["joined"] = (rng.random(len(cl)) < 0.1 + 0.05 * (frame.arm == "peer")).astype(float)
    frame.loc[:4, "self_efficacy"] = np.nan
    return frame


def test_new_fields_validate_and_show_in_json_csv_and_html():
    frame = clustered_stratified_trial()
    result = analyze(
        frame,
        arm="arm",
        control="control",
        outcome="joined",
        cluster="cluster",
        block="area",
        moderators=[BandSpec("age", (35.0, 55.0))],
        covariates=["self_efficacy"],
        randomization_inference=30,
        seed=4,
    )
    report = build_report(result, title="T", source="s")
    data = json.loads(report.to_json())
    jsonschema.validate(data, schema())
    assert data["schema_version"] == SCHEMA_VERSION
    assert data["design"]["clusters"] == 16 and data["design"]["strata"] == 2
    assert data["design"]["randomization_inference"]["draws"] == 30
    assert data["covariates_imputed"] == {"self_efficacy": 5}
    assert "CR2" in data["reference_distribution"]
    (test,) = data["interactions"]
    assert test["test"] == "htz_f" and test["df_denominator"] > 0 and "ri_p_value" in test
    assert all("ri_p_value" in e for e in data["effects"] + data["adjusted_effects"])
    assert all("reference" in s for s in data["subgroups"] + data["slopes"])
    rows = list(csv.DictReader(io.StringIO(report.to_csv())))
    assert {"ri_p_value", "reference", "df_denominator"} <= set(rows[0])
    inter = next(r for r in rows if r["kind"] == "interaction")
    assert inter["method"] == "htz_homogeneity" and float(inter["df_denominator"]) > 0
    html = report.to_html()
    for text in ("randomization p", "HTZ F", "16 clusters", "Bell-McCaffrey", "<h3>Design</h3>"):
        assert text in html, text
    assert "p = &lt;" not in html
