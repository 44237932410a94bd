"""The report object and its JSON / CSV forms.

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

import io
import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from importlib import resources
from typing import Any

from experiments import csv_cells
from experiments.analysis.engine import AnalysisResult, family_method
from experiments.analysis.further import FurtherAnalyses
from experiments.report.html import render_html
from experiments.report.sentences import effect_sentence
from experiments.report.version import SCHEMA_VERSION

OUTCOME_LABELS = {
    "exposed": "page views",
    "joined": "sign-ups",
    "participated": "reported participation",
    "self_efficacy_followup": "follow-up self-efficacy",
}

CSV_COLUMNS = (
    "kind",
    "moderator",
    "level",
    "arm",
    "family",
    "method",
    "n",
    "n_treatment",
    "n_control",
    "estimate",
    "std_error",
    "ci_low",
    "ci_high",
    "statistic",
    "df",
    "p_value",
    "p_adjusted",
    "error",
    "ri_p_value",
    "df_denominator",
    "reference",
)


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
        a = self.analysis
        rows: list[dict[str, Any]] = []
        for kind, effects in (("effect", a.effects), ("adjusted_effect", a.adjusted_effects)):
            for e in effects:
                rows.append(
                    dict(
                        kind=kind,
                        arm=e.arm,
                        method=e.method,
                        n=e.n_treatment + e.n_control,
                        n_treatment=e.n_treatment,
                        n_control=e.n_control,
                        estimate=e.estimate,
                        std_error=e.std_error,
                        ci_low=e.ci_low,
                        ci_high=e.ci_high,
                        statistic=e.statistic,
                        df=e.df,
                        p_value=e.p_value,
                        p_adjusted=e.p_adjusted,
                        error=e.error,
                        ri_p_value=e.ri_p_value,
                        reference=e.reference,
                    )
                )
        rows += self._further_csv_rows()
        for s in a.subgroups:
            rows.append(
                dict(
                    kind="subgroup",
                    moderator=s.moderator,
                    level=s.level,
                    arm=s.arm,
                    family=s.family,
                    method=s.method,
                    n=s.n,
                    n_treatment=s.n_treatment,
                    n_control=s.n_control,
                    estimate=s.estimate,
                    std_error=s.std_error,
                    ci_low=s.ci_low,
                    ci_high=s.ci_high,
                    df=s.df,
                    p_value=s.p_value,
                    p_adjusted=s.p_adjusted,
                    error=s.error,
                    ri_p_value=s.ri_p_value,
                    reference=s.reference,
                )
            )
        for t in a.interactions:
            rows.append(
                dict(
                    kind="interaction",
                    moderator=t.moderator,
                    arm=t.arm,
                    family=t.family,
                    method="htz_homogeneity" if t.test == "htz_f" else "wald_homogeneity",
                    statistic=t.statistic,
                    df=t.df,
                    df_denominator=t.df_denominator,
                    p_value=t.p_value,
                    p_adjusted=t.p_adjusted,
                    error=t.error,
                    ri_p_value=t.ri_p_value,
                    reference=t.reference,
                )
            )
        for s in a.slopes:
            rows.append(
                dict(
                    kind="slope",
                    moderator=s.moderator,
                    arm=s.arm,
                    family=s.family,
                    method="linear_interaction",
                    estimate=s.estimate,
                    std_error=s.std_error,
                    ci_low=s.ci_low,
                    ci_high=s.ci_high,
                    df=s.df,
                    p_value=s.p_value,
                    p_adjusted=s.p_adjusted,
                    error=s.error,
                    ri_p_value=s.ri_p_value,
                    reference=s.reference,
                )
            )
        if a.cells is not None:
            moderators = " x ".join(a.cells.table.moderators)
            for c in a.cells.table.cells:
                rows.append(
                    dict(
                        kind="cell",
                        moderator=moderators,
                        level=" | ".join(c.levels.values()),
                        arm=c.arm,
                        method="raw",
                        n=c.n,
                        n_treatment=c.n_treatment,
                        n_control=c.n_control,
                        estimate=c.estimate,
                        std_error=c.std_error,
                        error=c.error,
                    )
                )
                rows.append(
                    dict(
                        kind="cell",
                        moderator=moderators,
                        level=" | ".join(c.levels.values()),
                        arm=c.arm,
                        method="empirical_bayes",
                        n=c.n,
                        n_treatment=c.n_treatment,
                        n_control=c.n_control,
                        estimate=c.pooled_estimate,
                        std_error=c.pooled_std_error,
                        ci_low=c.pooled_ci_low,
                        ci_high=c.pooled_ci_high,
                        error=c.error,
                    )
                )
        return rows

    def _further_csv_rows(self) -> list[dict[str, Any]]:
        """Secondary outcomes' effects (`level` names the outcome, `family` its role), the
        complier effects, the mediated effects (ACME) and the Lee bounds (as ci_low and
        ci_high)."""
        f = self.further
        if f is None:
            return []
        rows: list[dict[str, Any]] = []
        for o in f.outcomes:
            if o.role == "primary":
                continue
            for e in o.effects:
                rows.append(
                    dict(
                        kind="outcome_effect",
                        level=o.outcome,
                        arm=e.arm,
                        family=o.role,
                        method=e.method,
                        n=e.n_treatment + e.n_control,
                        n_treatment=e.n_treatment,
                        n_control=e.n_control,
                        estimate=e.estimate,
                        std_error=e.std_error,
                        ci_low=e.ci_low,
                        ci_high=e.ci_high,
                        statistic=e.statistic,
                        df=e.df,
                        p_value=e.p_value,
                        p_adjusted=e.p_adjusted,
                        error=e.error,
                        reference=e.reference,
                    )
                )
        for c in f.cace:
            e = c.effect
            rows.append(
                dict(
                    kind="cace",
                    level=c.outcome,
                    arm=c.arm,
                    method="two_stage_least_squares",
                    n=c.n,
                    estimate=e.estimate,
                    std_error=e.std_error,
                    ci_low=e.ci_low,
                    ci_high=e.ci_high,
                    df=e.df,
                    p_value=e.p_value,
                )
            )
        for m in f.mediation:
            rows.append(
                dict(
                    kind="mediation",
                    moderator=m.mediator,
                    level=m.outcome,
                    arm=m.arm,
                    family="exploratory",
                    method="causal_mediation_acme",
                    n=m.n,
                    estimate=m.acme,
                    ci_low=m.acme_ci_low,
                    ci_high=m.acme_ci_high,
                    p_value=m.acme_p_value,
                )
            )
        for b in f.bounds:
            rows.append(
                dict(
                    kind="lee_bounds",
                    level=b.outcome,
                    arm=b.arm,
                    method="lee_bounds",
                    ci_low=b.lower,
                    ci_high=b.upper,
                )
            )
        return rows

    def to_csv(self) -> str:
        buf = io.StringIO()
        writer = csv_cells.dict_writer(buf, CSV_COLUMNS)
        writer.writeheader()
        for row in self.csv_rows():
            writer.writerow({k: _csv_value(row.get(k)) for k in CSV_COLUMNS})
        return buf.getvalue()

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


def _csv_value(v: Any) -> Any:
    if v is None:
        return ""
    if isinstance(v, float):
        if not math.isfinite(v):
            return "" if math.isnan(v) else ("inf" if v > 0 else "-inf")
        return repr(v)
    return v


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
