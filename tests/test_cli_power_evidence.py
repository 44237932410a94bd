"""`nudge power FILE --prior-from-evidence`: each arm's assurance equals the power of the
planned comparison integrated over the evidence prior (scipy quad, test-side power
formula), the prior is the library's pooled prediction distribution, the output says how
many campaigns it rests on, and arms without evidence say why."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
from scipy import integrate, stats

from nudge_app.cli import main

CATALOG = Path(__file__).resolve().parents[1] / "experiments" / "catalog"
PEER = CATALOG / "peer-invitation-young.toml"
EFFECTS = [(0.031, 0.011), (0.045, 0.014), (0.012, 0.010), (0.026, 0.012)]


def pack(effects, mechanism="peer", outcome="joined") -> dict:
    def arm(mech, effect, se):
        return {
            "mechanism": mech,
            "control": mech == "control",
            "outcome": outcome,
            "effect": effect,
            "std_error": se,
            "n": 500,
            "population": {},
        }

    return {
        "schema": "nudge-results-pack",
        "schema_version": "1.0",
        "exported": "2026-05",
        "campaigns": [
            {
                "policy_domain": "community-safety",
                "activity_kind": None,
                "started": "2026-01",
                "closed": "2026-04",
                "bands": {},
                "arms": [arm("control", None, None), arm(mechanism, y, s)],
            }
            for y, s in effects
        ],
    }


@pytest.fixture
def library(runner, council, tmp_path):
    path = tmp_path / "pack.json"
    path.write_text(json.dumps(pack(EFFECTS)))
    res = runner.invoke(main, ["evidence", "import", str(path), "--council", council.slug])
    assert res.exit_code == 0, res.output
    return council


def power_two_proportions(theta, p0, n_t, n_c, alpha):
    p1 = min(max(p0 + theta, 1e-9), 1 - 1e-9)
    se = math.sqrt(p1 * (1 - p1) / n_t + p0 * (1 - p0) / n_c)
    z = stats.norm.isf(alpha / 2)
    return stats.norm.cdf(theta / se - z) + stats.norm.cdf(-theta / se - z)


def test_assurance_integrates_power_over_the_evidence_prior(runner, library):
    from experiments.evidence.meta import random_effects

    res = runner.invoke(
        main,
        ["power", str(PEER), "--simulations", "20", "--n", "3000", "--prior-from-evidence",
         "--format", "json"],
    )  # fmt: skip
    assert res.exit_code == 0, res.output
    data = json.loads(res.output)
    rows = {r["arm"]: r for r in data["assurance"]}
    assert set(rows) == {"peer", "peer-practical"}
    pooled = random_effects([y for y, _ in EFFECTS], [s for _, s in EFFECTS], method="reml")
    # Higgins, Thompson and Spiegelhalter: tau^2 plus the model-based variance of mu
    v = np.array([s for _, s in EFFECTS]) ** 2
    sd = math.sqrt(pooled.tau2 + 1 / np.sum(1 / (v + pooled.tau2)))
    alpha = 0.05 / 2  # Holm's first step over the two message arms
    for arm, row in rows.items():
        assert row["campaigns"] == 4 and row["effects"] == 4
        assert row["prior_mean"] == pytest.approx(pooled.estimate, abs=1e-12)
        assert row["prior_sd"] == pytest.approx(sd, rel=1e-9)
        n_t, n_c = data["n_per_arm"][arm], data["n_per_arm"]["control"]
        expect, _ = integrate.quad(
            lambda t, n_t=n_t, n_c=n_c: (
                stats.norm.pdf(t, pooled.estimate, sd)
                * power_two_proportions(t, 0.08, n_t, n_c, alpha)
            ),
            pooled.estimate - 12 * sd,
            pooled.estimate + 12 * sd,
        )
        assert row["assurance"] == pytest.approx(expect, abs=1e-6)
        at_mean = power_two_proportions(pooled.estimate, 0.08, n_t, n_c, alpha)
        assert row["power_at_prior_mean"] == pytest.approx(at_mean, abs=1e-6)
    res = runner.invoke(
        main, ["power", str(PEER), "--simulations", "20", "--n", "3000", "--prior-from-evidence"]
    )
    assert "from 4 effect(s) in 4 earlier campaign(s); assurance" in res.output


def test_arms_without_evidence_say_why_and_several_councils_need_one_named(
    runner, library, make_council
):
    res = runner.invoke(
        main,
        ["power", str(CATALOG / "self-efficacy-cleanup.toml"), "--simulations", "20",
         "--prior-from-evidence"],
    )  # fmt: skip
    assert res.exit_code == 0, res.output
    assert "no earlier campaign in the library used 'self-efficacy' on joined" in res.output
    from nudge_app.extensions import db

    db.session.rollback()  # a fresh transaction after the commands' writes
    make_council("another")
    res = runner.invoke(main, ["power", str(PEER), "--simulations", "20", "--prior-from-evidence"])
    assert res.exit_code == 1 and "--council SLUG" in res.output
    res = runner.invoke(
        main,
        ["power", str(PEER), "--simulations", "20", "--prior-from-evidence", "--council",
         "another"],
    )  # fmt: skip
    assert res.exit_code == 0 and "no earlier campaign in the library used 'peer'" in res.output


def test_one_campaign_is_too_few_for_a_prior(runner, council, tmp_path):
    path = tmp_path / "one.json"
    path.write_text(json.dumps(pack(EFFECTS[:1])))
    assert (
        runner.invoke(main, ["evidence", "import", str(path), "--council", council.slug]).exit_code
        == 0
    )
    res = runner.invoke(
        main,
        ["power", str(PEER), "--simulations", "20", "--prior-from-evidence", "--format", "json"],
    )
    row = json.loads(res.output)["assurance"][0]
    assert row["assurance"] is None and "rests on 1 campaign" in row["message"]
    assert np.isfinite(json.loads(res.output)["main"][0]["power"])
