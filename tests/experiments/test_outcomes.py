"""Several outcomes in one report: roles, Holm across the primary family, Benjamini-Hochberg
across the secondaries, the JSON entry, and the bad plans."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from statsmodels.stats.multitest import multipletests

from experiments.analysis import analyze
from experiments.analysis.outcomes import (
    OutcomePlanError,
    analyze_outcomes,
    roles,
    several_outcomes,
)


@pytest.fixture(scope="module")
def frame() -> pd.DataFrame:
    rng = np.random.default_rng(4)
    n = 4000
    arm = rng.choice(["control", "efficacy", "peer", "info"], n)
    lift = pd.Series(arm).map({"control": 0, "efficacy": 0.05, "peer": 0.02, "info": 0}).to_numpy()
    return pd.DataFrame(
        {
            "arm": arm,
            "attended": (rng.random(n) < 0.1 + lift).astype(float),
            "joined": (rng.random(n) < 0.12 + lift).astype(float),
            "collective_coproduction": (rng.random(n) < 0.3 + lift).astype(float),
            "individual_coproduction": rng.binomial(6, 0.4, n).astype(float),
        }
    )


def _effects(frame, outcome):
    return analyze(frame, arm="arm", control="control", outcome=outcome, correction="none").effects


def test_primary_is_holm_across_arms_and_secondaries_bh_across_all(frame):
    names = ["attended", "collective_coproduction", "individual_coproduction", "joined"]
    rows = analyze_outcomes(names, lambda o: _effects(frame, o))
    assert [r.outcome for r in rows] == names
    assert [r.role for r in rows] == ["primary", "secondary", "secondary", "secondary"]
    primary = rows[0].effects
    p = [e.p_value for e in primary]
    holm = multipletests(p, method="holm")[1]
    assert [e.p_adjusted for e in primary] == pytest.approx(list(holm))
    # the primary family's figures are the top-level effects of a report on that outcome
    headline = analyze(frame, arm="arm", control="control", outcome="attended").effects
    assert [e.p_adjusted for e in primary] == pytest.approx([e.p_adjusted for e in headline])
    secondary = [e for r in rows[1:] for e in r.effects]
    bh = multipletests([e.p_value for e in secondary], method="fdr_bh")[1]
    assert [e.p_adjusted for e in secondary] == pytest.approx(list(bh))
    assert all(
        e.estimate == f.estimate for e, f in zip(primary, _effects(frame, "attended"), strict=True)
    )


def test_json_entry(frame):
    rows = several_outcomes(
        {o: _effects(frame, o) for o in ("joined", "attended")}, ["joined", "attended"]
    )
    d = rows[1].to_dict()
    assert set(d) == {"outcome", "role", "effects"}
    assert d["outcome"] == "attended" and d["role"] == "secondary"
    headline_fields = set(_effects(frame, "attended")[0].to_dict())
    assert all(set(e) == headline_fields for e in d["effects"])


def test_no_correction_leaves_p_values(frame):
    rows = analyze_outcomes(["joined", "attended"], lambda o: _effects(frame, o), "none")
    for r in rows:
        assert [e.p_adjusted for e in r.effects] == pytest.approx([e.p_value for e in r.effects])


def test_bad_plans():
    with pytest.raises(OutcomePlanError, match="at least one outcome"):
        roles([])
    with pytest.raises(OutcomePlanError, match="'joined' is named twice"):
        roles(["joined", "attended", "joined"])
    with pytest.raises(OutcomePlanError, match="no effects for outcome"):
        several_outcomes({"joined": []}, ["joined", "attended"])


def test_a_secondary_outcome_is_estimated_on_its_own_column_not_a_namesake():
    """The report names the follow-up answer `collective_coproduction`; in the frame that
    name is the baseline answer (the same for everyone after eligibility screening) and
    the outcome is `collective_coproduction_followup`. The estimate must be of the latter."""
    from experiments.analysis.adjustment import TrialColumns
    from experiments.analysis.further import OutcomeSpec, further_analyses

    rng = np.random.default_rng(11)
    n = 3000
    arm = rng.choice(["control", "efficacy"], n)
    followup = (rng.random(n) < 0.3 + 0.08 * (arm == "efficacy")).astype(float)
    frame = pd.DataFrame(
        {
            "arm": arm,
            "joined": (rng.random(n) < 0.1).astype(float),
            "collective_coproduction": np.zeros(n),  # baseline: eligibility kept the zeros
            "collective_coproduction_followup": followup,
        }
    )
    out = further_analyses(
        frame,
        _effects(frame, "joined"),
        [
            OutcomeSpec("joined", "joined"),
            OutcomeSpec(
                "collective_coproduction",
                "collective_coproduction_followup",
                "collective_coproduction",
            ),
        ],
        columns=TrialColumns(arm="arm", control="control"),
        estimate=lambda column: _effects(frame, column),
    )
    (effect,) = out.outcomes[1].effects
    treated, control = followup[arm == "efficacy"], followup[arm == "control"]
    assert effect.error is None
    assert effect.estimate == pytest.approx(treated.mean() - control.mean(), rel=1e-12)
