"""The report's evidence panel: each arm's estimate beside the pooled effect of earlier
campaigns with the same mechanism on the same outcome, and a Bayesian reading (the
probability the arm beats control under the evidence prior and under a flat prior,
`experiments.evidence.bayes`). An extra: it never replaces the frequentist result."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from html import escape
from typing import TYPE_CHECKING

from experiments.evidence.bayes import (
    BayesianReading,
    EvidenceError,
    EvidencePrior,
    bayesian_reading,
    prior_from_evidence,
)
from experiments.evidence.meta import MetaAnalysis

if TYPE_CHECKING:
    from experiments.analysis.results import Effect
    from experiments.report.model import Report


@dataclass(frozen=True)
class PriorReading:
    arm: str
    mechanism: str | None
    outcome: str
    campaigns: int  # earlier campaigns pooled
    pooled: MetaAnalysis | None
    prior: EvidencePrior | None
    reading: BayesianReading | None
    message: str = ""

    def to_dict(self) -> dict:
        def f(x: float | None) -> float | None:
            return x if x is not None and math.isfinite(x) else None

        p = self.pooled
        r = self.reading
        return {
            "arm": self.arm,
            "mechanism": self.mechanism,
            "outcome": self.outcome,
            "campaigns": self.campaigns,
            "effects": p.k if p else 0,
            "pooled_estimate": f(p.estimate) if p else None,
            "pooled_ci_low": f(p.ci_low) if p else None,
            "pooled_ci_high": f(p.ci_high) if p else None,
            "prior_mean": f(self.prior.mean) if self.prior else None,
            "prior_sd": f(self.prior.sd) if self.prior else None,
            "probability_beats_control_flat": f(r.probability_flat) if r else None,
            "probability_beats_control_evidence": f(r.probability_evidence) if r else None,
            "posterior_mean": f(r.posterior_mean) if r else None,
            "posterior_sd": f(r.posterior_sd) if r else None,
            "message": self.message,
        }


def prior_readings(
    effects: list[Effect],
    outcome: str,
    mechanisms: Mapping[str, str | None],
    pools: Mapping[str, tuple[MetaAnalysis, int]],
) -> list[PriorReading]:
    """One reading per arm: `mechanisms` maps arm -> tag, `pools` maps tag -> (the pooled
    earlier campaigns, how many campaigns they are)."""
    out = []
    for e in effects:
        tag = mechanisms.get(e.arm)
        pooled, campaigns = pools.get(tag, (None, 0)) if tag else (None, 0)
        prior, message = None, ""
        if tag is None:
            message = "the arm has no mechanism tag"
        elif pooled is None:
            message = f"no earlier campaign in the library used {tag!r} on {outcome}"
        else:
            try:
                prior = prior_from_evidence(pooled)
            except EvidenceError as exc:
                message = str(exc)
        reading = None
        if not e.error and math.isfinite(e.std_error) and e.std_error > 0:
            reading = bayesian_reading(e.estimate, e.std_error, prior)
        out.append(PriorReading(e.arm, tag, outcome, campaigns, pooled, prior, reading, message))
    return out


def prior_section(report: Report) -> str:
    """The HTML panel, or "" when the report carries no evidence readings."""
    rows = report.evidence
    if rows is None:
        return ""
    binary = report.analysis.binary_outcome

    def n(x: float | None, signed: bool = False) -> str:
        if x is None or not math.isfinite(x):
            return "&ndash;"
        v = 100 * x if binary else x
        return (f"{v:+.1f}" if signed else f"{v:.1f}") if binary else f"{v:+.3g}"

    def pct(x: float | None) -> str:
        return "&ndash;" if x is None or not math.isfinite(x) else f"{100 * x:.0f}%"

    estimates = {e.arm: e for e in report.analysis.effects}
    body = []
    for r in rows:
        e = estimates.get(r.arm)
        p = r.pooled
        pooled = (
            f"{n(p.estimate, True)} ({n(p.ci_low)} to {n(p.ci_high)}), {p.k} effect"
            f"{'s' if p.k != 1 else ''} from {r.campaigns} campaign{'s' if r.campaigns != 1 else ''}"
            if p
            else escape(r.message)
        )
        prior = f"{n(r.prior.mean, True)}, sd {n(r.prior.sd)}" if r.prior else "&ndash;"
        if p and not r.prior:
            prior = escape(r.message)
        reading = r.reading
        body.append(
            "<tr>"
            + "".join(
                f"<td>{c}</td>"
                for c in (
                    escape(report.label(r.arm)),
                    escape(r.mechanism or "none"),
                    f"{n(e.estimate, True)} ({n(e.ci_low)} to {n(e.ci_high)})" if e else "",
                    pooled,
                    prior,
                    pct(reading.probability_flat) if reading else "&ndash;",
                    pct(reading.probability_evidence) if reading else "&ndash;",
                )
            )
            + "</tr>"
        )
    head = "".join(
        f'<th scope="col">{h}</th>'
        for h in (
            "Arm",
            "Mechanism",
            "This campaign",
            "Earlier campaigns, pooled (REML, HKSJ interval)",
            "Evidence prior (prediction distribution)",
            "P(beats control), flat prior",
            "P(beats control), evidence prior",
        )
    )
    units = " (percentage points)" if binary else ""
    return (
        f"<h2>Beside earlier campaigns{units}</h2>"
        "<p>An extra reading, never a replacement for the effects above: this campaign's "
        "estimate beside the pooled effect of the council's earlier campaigns (its own and "
        "imported) whose arms used the same mechanism on the same outcome, and the "
        "probability that the arm beats control, with the estimate read under a flat prior "
        "and under the evidence prior (the earlier campaigns' prediction distribution).</p>"
        f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"
    )
