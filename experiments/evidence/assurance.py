"""Assurance of a planned design from the evidence library: for each message arm, the
pooled effect of earlier campaigns with the same mechanism on the same outcome gives a
prior (the random-effects prediction distribution, `bayes.prior_from_evidence`), and the
power of the planned comparison is averaged over it (`bayes.assurance_two_proportions`
for a 0/1 outcome at the planned arm sizes and control rate; `bayes.assurance` with the
standard error implied by the minimum detectable effect at 80% power otherwise). Each
row says how many earlier campaigns and effects the prior rests on, or why there is none.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from experiments.analysis.dist import norm_isf
from experiments.evidence.bayes import (
    EvidenceError,
    EvidencePrior,
    assurance,
    assurance_two_proportions,
    prior_from_evidence,
)
from experiments.evidence.meta import MetaAnalysis


@dataclass(frozen=True)
class ArmAssurance:
    arm: str
    mechanism: str | None
    outcome: str
    campaigns: int  # earlier campaigns the prior rests on
    effects: int  # their effects pooled (an arm each)
    prior: EvidencePrior | None
    assurance: float
    power_at_prior_mean: float
    message: str = ""

    def to_dict(self) -> dict:
        def f(x: float) -> float | None:
            return x if math.isfinite(x) else None

        return {
            "arm": self.arm,
            "mechanism": self.mechanism,
            "outcome": self.outcome,
            "campaigns": self.campaigns,
            "effects": self.effects,
            "prior_mean": f(self.prior.mean) if self.prior else None,
            "prior_sd": f(self.prior.sd) if self.prior else None,
            "assurance": f(self.assurance),
            "power_at_prior_mean": f(self.power_at_prior_mean),
            "message": self.message,
        }


def arm_assurance(
    arm: str,
    mechanism: str | None,
    outcome: str,
    pooled: MetaAnalysis | None,
    campaigns: int,
    *,
    binary: bool,
    baseline_rate: float,
    n_treatment: int,
    n_control: int,
    alpha_per_test: float,
    mde: float,
) -> ArmAssurance:
    """One arm's assurance (module docstring), or a row saying why there is none."""
    nan = math.nan
    if mechanism is None:
        return ArmAssurance(
            arm, None, outcome, 0, 0, None, nan, nan,
            "the arm has no mechanism tag: give it one (mechanism_tag) to use the evidence",
        )  # fmt: skip
    if pooled is None:
        return ArmAssurance(
            arm, mechanism, outcome, 0, 0, None, nan, nan,
            f"no earlier campaign in the library used {mechanism!r} on {outcome}",
        )  # fmt: skip
    try:
        prior = prior_from_evidence(pooled)
    except EvidenceError as exc:
        return ArmAssurance(arm, mechanism, outcome, campaigns, pooled.k, None, nan, nan, str(exc))
    if binary:
        value = assurance_two_proportions(
            prior, baseline_rate, n_treatment, n_control, alpha=alpha_per_test
        )
        at_mean = assurance_two_proportions(
            EvidencePrior(prior.mean, 1e-9, prior.campaigns),
            baseline_rate,
            n_treatment,
            n_control,
            alpha=alpha_per_test,
        )
    else:
        se = mde / (norm_isf(alpha_per_test / 2) + norm_isf(0.2))
        value = assurance(prior, se, alpha=alpha_per_test)
        at_mean = assurance(EvidencePrior(prior.mean, 1e-12, prior.campaigns), se, alpha_per_test)
    return ArmAssurance(arm, mechanism, outcome, campaigns, pooled.k, prior, value, at_mean)


def assurance_text(rows: list[ArmAssurance]) -> str:
    lines = [
        "",
        "Assurance from the evidence library (power averaged over the prediction "
        "distribution of earlier campaigns with the arm's mechanism):",
    ]
    for r in rows:
        if r.prior is None:
            lines.append(f"  {r.arm:<20} no prior: {r.message}")
            continue
        lines.append(
            f"  {r.arm:<20} {r.mechanism}: prior effect {r.prior.mean:+.4f} (sd {r.prior.sd:.4f}) "
            f"from {r.effects} effect(s) in {r.campaigns} earlier campaign(s); assurance "
            f"{100 * r.assurance:.1f}% (power at the prior mean {100 * r.power_at_prior_mean:.1f}%)"
        )
    return "\n".join(lines)
