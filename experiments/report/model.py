"""The report object and its JSON form (the CSV rows are `csv_rows`).

JSON schema version 1 (`schema_version: "1.4"`) is described field by field in
`schema.json` beside this module; a reader should check `schema_version` and refuse a
major version it does not know. New optional fields raise the minor version (1.1 added
`design`, `covariates_imputed`, `ri_p_value`, the references of subgroups, interaction
tests and slopes, the HTZ test's denominator df and the slopes' adjusted p-values; 1.2
added `outcomes`, `mediation`, `bounds`, `cace`, `outcome_analyses`, `saturation`,
`spillover`, and, when the analysis formed a cell table, `cells`, `heterogeneity`,
`cell_model` and `targeting`; 1.3 added `sequential` (with `--sequential`, and in
campaign reports), `design.sequential`, the sample ratio test's `unit` and `strata`, and a
campaign's `planned_sample_size` and `final_analysis`; 1.4 added a campaign report's
`referrals`).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from importlib import resources
from typing import Any

from experiments.analysis.engine import AnalysisResult, family_method
from experiments.analysis.further import FurtherAnalyses
from experiments.report.csv_rows import csv_rows, to_csv
from experiments.report.html import render_html
from experiments.report.sentences import effect_sentence
from experiments.report.version import SCHEMA_VERSION

OUTCOME_LABELS = {
    "exposed": "page views",
    "joined": "sign-ups",
    "participated": "reported participation",
    "self_efficacy_followup": "follow-up self-efficacy",
}


def schema() -> dict:
    """The JSON Schema of the report (schema.json)."""
    text = resources.files("experiments.report").joinpath("schema.json").read_text("utf-8")
    return json.loads(text)


@dataclass
class Report:
    """An analysis result with what a reader needs around it (title, labels, sentences)."""

    title: str
    source: str
    analysis: AnalysisResult
    arm_labels: dict[str, str] = field(default_factory=dict)
    outcome_label: str = ""
    generated_at: str = ""
    campaign: dict[str, Any] | None = None
    # the evidence panel (campaign reports): list of prior_panel.PriorReading
    evidence: list[Any] | None = None
    further: FurtherAnalyses | None = None
    # Eligibility screening before allocation ({"assessed", "eligible", "screened_out",
    # "by_rule"}) and whom the estimates are about (experiments.population), for campaign
    # reports; None for a CSV analysis, which knows nothing of who was screened.
    screening: dict[str, Any] | None = None
    population: dict[str, Any] | None = None
    # Peer mentoring (campaign reports of a campaign with a mentor role): the referred
    # residents against the comparison arm (experiments.analysis.referrals, to_dict form).
    referrals: dict[str, Any] | None = None

    def label(self, arm: str) -> str:
        return self.arm_labels.get(arm, arm)

    @property
    def sentences(self) -> list[dict[str, str]]:
        return [{"arm": e.arm, "text": effect_sentence(self, e)} for e in self.analysis.effects]

    def to_dict(self) -> dict[str, Any]:
        a = self.analysis
        out = {
            "schema_version": SCHEMA_VERSION,
            "generated_at": self.generated_at,
            "title": self.title,
            "source": self.source,
            "campaign": self.campaign,
            "outcome": a.outcome,
            "outcome_label": self.outcome_label,
            "outcome_type": "binary" if a.binary_outcome else "numeric",
            "arm_column": a.arm_column,
            "control": a.control,
            "alpha": a.alpha,
            "confidence_level": 1 - a.alpha,
            "estimator": a.estimator,
            "reference_distribution": a.reference_distribution,
            "multiplicity": {
                "arms": a.correction,
                "confirmatory": family_method(a.correction, "confirmatory"),
                "exploratory": family_method(a.correction, "exploratory"),
            },
            "n_rows": a.n_rows,
            "n_analysed": a.n_analysed,
            "dropped": a.dropped,
            "covariates_imputed": a.covariates_imputed,
            "design": a.design.to_dict(),
            "arms": [dict(r.to_dict(), label=self.label(r.arm)) for r in a.arms],
            "effects": [e.to_dict() for e in a.effects],
            "adjusted_effects": [e.to_dict() for e in a.adjusted_effects],
            "covariates": a.covariates,
            "block": a.block,
            "cluster": a.cluster,
            "moderators": a.moderators,
            "subgroups": [s.to_dict() for s in a.subgroups],
            "interactions": [t.to_dict() for t in a.interactions],
            "slopes": [s.to_dict() for s in a.slopes],
            "srm": a.srm.to_dict(),
            "balance": [b.to_dict() for b in a.balance],
            "screening": self.screening,
            "population": self.population,
            "flow": [f.to_dict() for f in a.flow],
            "attrition": a.attrition.to_dict() if a.attrition else None,
            "warnings": [w.to_dict() for w in a.warnings],
            "sentences": self.sentences,
            **self.further_dict(),
            **self.cell_parts(),
            **(
                {"evidence": [r.to_dict() for r in self.evidence]}
                if self.evidence is not None
                else {}
            ),
        }
        if a.sequential:  # --sequential COL: the Interface's `sequential` key
            out["sequential"] = [arm.to_dict() for arm in a.sequential]
        if self.referrals is not None:
            out["referrals"] = dict(self.referrals)
        return self._with_spillover(out)

    def cell_parts(self) -> dict[str, Any]:
        """`cells`, `heterogeneity`, `cell_model` and `targeting` (empty without a cell table)."""
        c = self.analysis.cells
        if c is None:
            return {}
        t = c.table
        return {
            **t.to_dict(),
            "cell_model": {
                "moderators": list(t.moderators),
                "levels": {m: list(lv) for m, lv in zip(t.moderators, t.levels, strict=True)},
                "n": c.n,
                "left_out": c.left_out,
                "method": "empirical Bayes toward a model linear in both moderators "
                "(REML tau^2, Morris 1983 intervals)",
                **t.details(),
            },
            "targeting": c.targeting_dict(),
        }

    def _with_spillover(self, out: dict[str, Any]) -> dict[str, Any]:
        a = self.analysis
        if a.saturation:
            out["saturation"] = a.saturation
            out["spillover"] = [s.to_dict() for s in a.spillover]
        return out

    def further_dict(self) -> dict[str, Any]:
        """`outcomes` (every analysed outcome, the primary first), `mediation`, `bounds`,
        `cace` (the exact rows other tools read) and `outcome_analyses` (the figures
        behind them: side-by-side co-production, reporting bias, response-weighted
        estimates, readings, notes)."""
        f = self.further
        if f is None:
            a = self.analysis
            primary = {
                "outcome": a.outcome,
                "role": "primary",
                "effects": [e.to_dict() for e in a.effects],
            }
            return {"outcomes": [primary], "mediation": [], "bounds": [], "cace": []}
        return {
            "outcomes": [o.to_dict() for o in f.outcomes],
            "mediation": f.mediation_rows(),
            "bounds": f.bounds_rows(),
            "cace": f.cace_rows(),
            "outcome_analyses": f.details(),
        }

    def to_json(self, indent: int | None = 2) -> str:
        return json.dumps(self.to_dict(), indent=indent, allow_nan=False)

    def csv_rows(self) -> list[dict[str, Any]]:
        return csv_rows(self)

    def to_csv(self) -> str:
        return to_csv(self)

    def to_html(self) -> str:
        return render_html(self)

    def render(self, fmt: str) -> str:
        if fmt == "json":
            return self.to_json()
        if fmt == "csv":
            return self.to_csv()
        if fmt == "html":
            return self.to_html()
        raise ValueError(f"unknown format {fmt!r}: use json, html or csv")


def build_report(
    analysis: AnalysisResult,
    *,
    title: str,
    source: str,
    arm_labels: Mapping[str, str] | None = None,
    outcome_label: str | None = None,
    campaign: dict[str, Any] | None = None,
    generated_at: datetime | None = None,
    further: FurtherAnalyses | None = None,
    screening: dict[str, Any] | None = None,
    population: dict[str, Any] | None = None,
    referrals: dict[str, Any] | None = None,
) -> Report:
    when = (generated_at or datetime.now(UTC)).replace(microsecond=0)
    return Report(
        title=title,
        source=source,
        analysis=analysis,
        arm_labels=dict(arm_labels or {}),
        outcome_label=outcome_label or OUTCOME_LABELS.get(analysis.outcome, analysis.outcome),
        generated_at=when.isoformat().replace("+00:00", "Z"),
        campaign=campaign,
        further=further,
        screening=screening,
        population=population,
        referrals=referrals,
    )
