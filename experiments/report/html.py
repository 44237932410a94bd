"""The self-contained HTML page of a report: tables, an inline SVG forest plot, warnings.

No JavaScript, no external assets: the page can be mailed, archived or printed as is.
"""

from __future__ import annotations

import math
from html import escape
from typing import TYPE_CHECKING

from experiments.forest_axis import ForestAxis, svg_open
from experiments.report.cells_html import CSS as CELLS_CSS
from experiments.report.cells_html import cells_section
from experiments.report.outcomes_html import CSS as OUTCOMES_CSS
from experiments.report.outcomes_html import outcomes_section
from experiments.report.prior_panel import prior_section
from experiments.report.referrals_html import referrals_section
from experiments.report.sentences import CORRECTION_NAMES, amount, fmt_p, p_text
from experiments.report.sequential_html import CSS as SEQUENTIAL_CSS
from experiments.report.sequential_html import sequential_section, stage_notice
from experiments.report.spillover_html import CSS as SPILLOVER_CSS
from experiments.report.spillover_html import spillover_section
from experiments.report.version import SCHEMA_VERSION

if TYPE_CHECKING:
    from experiments.report.model import Report

PAGE_CSS = """
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:2rem auto;
max-width:70rem;padding:0 1rem;color:#1b1b1b;line-height:1.45}
"""
# The report's own rules: the stand-alone page has them inline, a page that embeds the
# report's body (the council console) serves them as a stylesheet (`stylesheet()`).
CONTENT_CSS = """
h1{font-size:1.6rem;margin-bottom:.2rem}h2{font-size:1.2rem;margin-top:2rem;
border-bottom:2px solid #ddd;padding-bottom:.2rem}
table{border-collapse:collapse;margin:.5rem 0 1rem;font-size:.9rem}
th,td{padding:.25rem .6rem;border-bottom:1px solid #e3e3e3;text-align:right}
th:first-child,td:first-child,td.text,th.text{text-align:left}
th{background:#f4f4f4}
.meta{color:#555;font-size:.9rem}
.warnings{border-left:5px solid #d4351c;background:#fdf0ee;padding:.5rem 1rem;margin:1rem 0}
.warnings li{margin:.3rem 0}
.sentence{font-size:1.05rem;margin:.4rem 0}
.exploratory{color:#7a4b00}
.forest text{font-size:12px;fill:#1b1b1b}
.forest .ci{stroke:#1d70b8;stroke-width:2}.forest .pt{fill:#1d70b8}
.forest .pt.exploratory{fill:#b58100}.forest .ci.exploratory{stroke:#b58100}
.forest .zero{stroke:#555;stroke-dasharray:4 3}.forest .axis{stroke:#999}
.forest .main .pt{fill:#0b0c0c}.forest .main .ci{stroke:#0b0c0c}
small{color:#555}
"""
CSS = PAGE_CSS + CONTENT_CSS


def _n(x: float | None, digits: int = 3) -> str:
    """A number for a cell: 3 significant digits, whole with separators from 1,000 on
    (df 3,858, never 3.86e+03)."""
    if x is None or not math.isfinite(x):
        return "&ndash;"
    if abs(x) >= 10**digits:
        return f"{x:,.0f}"
    return f"{x:.{digits}g}" if abs(x) >= 1e-3 or x == 0 else f"{x:.2e}"


def _p(p: float | None) -> str:
    """A p-value for a cell, HTML-escaped (`&lt; 0.001`)."""
    return escape(fmt_p(p))


def stylesheet() -> str:
    """The report's rules without the page's own (for a page that embeds `render_body`)."""
    return CONTENT_CSS + CELLS_CSS + SEQUENTIAL_CSS + OUTCOMES_CSS + SPILLOVER_CSS


def render_html(report: Report) -> str:
    """The stand-alone page: no JavaScript, no external assets."""
    return "\n".join(
        [
            "<!DOCTYPE html>",
            '<html lang="en"><head><meta charset="utf-8">',
            '<meta name="viewport" content="width=device-width, initial-scale=1">',
            f"<title>{escape(report.title)}</title><style>{PAGE_CSS}{stylesheet()}</style>"
            "</head><body>",
            render_body(report),
            "</body></html>",
        ]
    )


def render_body(report: Report) -> str:
    """The report's content (from its h1 on), for the stand-alone page or another's body."""
    a = report.analysis
    level = round(100 * (1 - a.alpha))
    units = "percentage points" if a.binary_outcome else "outcome units"
    parts = [
        f"<h1>{escape(report.title)}</h1>",
        f'<p class="meta">Outcome: <strong>{escape(report.outcome_label or a.outcome)}'
        f"</strong> (<code>{escape(a.outcome)}</code>). Source: {escape(report.source)}. "
        f"Generated {escape(report.generated_at)}. Report schema {escape(SCHEMA_VERSION)}.</p>",
    ]
    if report.campaign:
        c = report.campaign
        parts.append(
            '<p class="meta">Campaign <code>'
            + escape(str(c.get("slug", "")))
            + "</code> ("
            + escape(str(c.get("status", "")))
            + "), launched "
            + escape(str(c.get("launched_at") or "not yet"))
            + ". Pre-registered: primary "
            "outcome "
            + escape(str(c.get("primary_outcome", "")))
            + ", moderators "
            + escape(", ".join(c.get("preregistered_moderators") or []) or "none")
            + ". Design hash <code>"
            + escape(str(c.get("design_hash") or "")[:16])
            + "</code>."
            + _consent_versions(c.get("consent_versions"))
            + _attendance(c.get("attendance"))
            + "</p>"
        )
    if a.warnings:
        parts.append('<div class="warnings" role="alert"><h2>Warnings</h2><ul>')
        parts += [
            f"<li><strong>{escape(w.code.replace('_', ' '))}</strong>: {escape(w.message)}</li>"
            for w in a.warnings
        ]
        parts.append("</ul></div>")
    parts.append(stage_notice(report))
    parts.append("<h2>Summary</h2>")
    parts += [f'<p class="sentence">{escape(s["text"])}</p>' for s in report.sentences]
    parts.append(_population(report))
    parts.append(_arms_table(report))
    parts.append(f"<h2>Effects against control ({level}% intervals)</h2>")
    parts.append(_effects_table(report, a.effects))
    if a.adjusted_effects:
        parts.append(
            "<h3>Covariate-adjusted (Lin 2013: " + escape(", ".join(a.covariates)) + ")</h3>"
        )
        parts.append(_effects_table(report, a.adjusted_effects))
    parts.append(
        f"<p><small>Estimates in {units}. Reference distribution: "
        f"{escape(a.reference_distribution)}. Multiplicity: "
        f"{escape(CORRECTION_NAMES.get(a.correction) or 'none')} across arms and "
        "across the pre-registered (confirmatory) subgroup family; "
        "Benjamini-Hochberg for exploratory families.</small></p>"
    )
    parts.append(sequential_section(report))
    parts.append(outcomes_section(report))
    parts.append(prior_section(report))
    if a.subgroups:
        parts.append("<h2>Effects by subgroup</h2>")
        parts.append(forest_svg(report))
        parts.append(_subgroup_table(report))
        parts.append(_interaction_table(report))
    parts.append(spillover_section(report))
    parts.append(referrals_section(report))
    parts.append(cells_section(report))
    parts.append(_diagnostics(report))
    return "\n".join(parts)


def _pct(x: float | None) -> str:
    return "&ndash;" if x is None else f"{100 * x:.0f}%"


def _population(report: Report) -> str:
    """Whom the estimates are about: the sentence, and the eligible population beside all
    who were assessed for eligibility."""
    p = report.population
    if not p:
        return ""
    out = ["<h2>Whom this report is about</h2>", f"<p>{escape(p['sentence'])}</p>"]
    names = {
        "age": "Age",
        "self_efficacy": "Self-efficacy",
        "individual_coproduction": "Individual co-production at baseline (activities)",
        "collective_coproduction": "Collective co-production at baseline (takes part in a group)",
    }
    rows = [
        [
            escape(names.get(r["variable"], r["variable"])),
            escape(str(r["level"])),
            f"{r['assessed']:,} ({_pct(r['assessed_share'])})",
            f"{r['eligible']:,} ({_pct(r['eligible_share'])})",
        ]
        for r in p["rows"]
    ]
    out.append(
        _table(
            [
                "Baseline characteristic",
                "Level",
                f"Assessed (n = {p['assessed']:,})",
                f"Eligible (n = {p['eligible']:,})",
            ],
            rows,
            caption="The eligible population beside everyone assessed for eligibility",
        )
    )
    return "\n".join(out)


def _screening(report: Report) -> str:
    """The CONSORT steps before allocation: assessed for eligibility, screened out (by
    rule), then the allocated per arm (the table below)."""
    s = report.screening
    if not s:
        return ""
    allocated = sum(f.allocated for f in report.analysis.flow)
    rules = [f"{escape(rule)}: {n:,}" for rule, n in s["by_rule"].items()]
    by_rule = (
        f" (first rule not met &ndash; {'; '.join(rules)})" if rules and s["screened_out"] else ""
    )
    return (
        f"<p>Assessed for eligibility: <strong>{s['assessed']:,}</strong>. "
        f"Screened out: <strong>{s['screened_out']:,}</strong>{by_rule}. "
        f"Eligible: <strong>{s['eligible']:,}</strong>. "
        f"Allocated: <strong>{allocated:,}</strong>.</p>"
    )


def _attendance(attendance) -> str:
    """The organiser's check-ins: participants checked in, at how many sessions."""
    if not attendance:
        return ""
    sessions = attendance.get("sessions") or []
    return (
        f' <span id="verified-attendance">Verified attendance: '
        f"{attendance.get('participants', 0):,} participant(s) checked in, "
        f"{attendance.get('check_ins', 0):,} check-in(s) at {len(sessions)} session(s)"
        + (
            " ("
            + ", ".join(f"{escape(s['session'])}: {s['participants']}" for s in sessions[-6:])
            + ")"
            if sessions
            else ""
        )
        + ".</span>"
    )


def _consent_versions(versions) -> str:
    """Participants per version of the consent text (platform reports)."""
    if not versions:
        return ""
    parts = [
        f"version {escape(str(v.get('number')))}: {int(v.get('participants', 0)):,}"
        if v.get("number") is not None
        else f"no version recorded: {int(v.get('participants', 0)):,}"
        for v in versions
    ]
    return " Consent text " + "; ".join(parts) + "."


def _table(head: list[str], rows: list[list[str]], caption: str = "") -> str:
    cap = f"<caption>{escape(caption)}</caption>" if caption else ""
    th = "".join(f'<th scope="col">{h}</th>' for h in head)
    body = "".join("<tr>" + "".join(f"<td>{c}</td>" for c in r) + "</tr>" for r in rows)
    return f"<table>{cap}<thead><tr>{th}</tr></thead><tbody>{body}</tbody></table>"


def _arms_table(report: Report) -> str:
    a = report.analysis
    rows = []
    for r in a.arms:
        mean = f"{100 * r.mean:.1f}%" if a.binary_outcome else _n(r.mean)
        rows.append(
            [
                escape(report.label(r.arm)) + (" (control)" if r.control else ""),
                escape(r.arm),
                f"{r.n:,}",
                mean,
            ]
        )
    return _table(["Arm", "Key", "Analysed", "Mean"], rows)


def _effects_table(report: Report, effects) -> str:
    """Effects with their own relative lift (the estimate over the control mean of the
    same estimator), df, and randomization-inference p-values when they were run."""
    ri = any(e.ri_p_value is not None for e in effects)
    rows = []
    for e in effects:
        if e.error:
            rows.append([escape(report.label(e.arm)), escape(e.message)] + [""] * (6 + ri))
            continue
        rows.append(
            [
                escape(report.label(e.arm)),
                amount(report, e.estimate, signed=True),
                f"{amount(report, e.ci_low)} to {amount(report, e.ci_high)}",
                amount(report, e.std_error),
                _n(e.df),
                _p(e.p_value),
                _p(e.p_adjusted),
                *([_p(e.ri_p_value)] if ri else []),
                _n(100 * e.relative_lift if math.isfinite(e.relative_lift) else math.nan) + "%",
            ]
        )
    head = ["Arm", "Effect", "Interval", "SE", "df", "p", "adjusted p"]
    head += ["randomization p"] if ri else []
    caption = f"Reference: {effects[0].reference}." if effects else ""
    return _table(head + ["Relative lift"], rows, caption)


def _subgroup_table(report: Report) -> str:
    subgroups = report.analysis.subgroups
    ri = any(s.ri_p_value is not None for s in subgroups)
    rows = []
    for s in subgroups:
        cls = ' class="exploratory"' if s.family == "exploratory" else ""
        est = "&ndash;" if s.error else amount(report, s.estimate, signed=True)
        ci = (
            escape(s.message)
            if s.error
            else f"{amount(report, s.ci_low)} to {amount(report, s.ci_high)}"
        )
        rows.append(
            [
                f"<span{cls}>{escape(s.moderator)}</span>",
                escape(s.level),
                escape(report.label(s.arm)),
                f"{s.n:,}",
                est,
                ci,
                _p(s.p_value),
                _p(s.p_adjusted),
                *([_p(s.ri_p_value)] if ri else []),
                s.family,
            ]
        )
    head = ["Moderator", "Level", "Arm", "n", "Effect", "Interval", "p", "adjusted p"]
    head += ["randomization p"] if ri else []
    caption = (
        f"Does the effect differ from zero in this subgroup? ({subgroups[0].reference})"
        if subgroups
        else ""
    )
    return _table(head + ["Family"], rows, caption)


def _interaction_table(report: Report) -> str:
    a = report.analysis
    tests = [*a.interactions, *a.slopes]
    ri = any(t.ri_p_value is not None for t in tests)
    rows = []
    for t in a.interactions:
        df = str(t.df) if t.df_denominator is None else f"{t.df}, {_n(t.df_denominator)}"
        rows.append(
            [
                escape(t.moderator),
                escape(report.label(t.arm)),
                "HTZ F" if t.test == "htz_f" else "Wald chi-square",
                _n(t.statistic),
                df,
                _p(t.p_value),
                _p(t.p_adjusted),
                *([_p(t.ri_p_value)] if ri else []),
                t.family,
            ]
        )
    head = ["Moderator", "Arm", "Test", "Statistic", "df", "p", "adjusted p"]
    head += ["randomization p"] if ri else []
    out = (
        "<h3>Do effects differ across subgroups? (the interaction test: a different question "
        "from whether one subgroup's effect differs from zero)</h3>"
        + _table(head + ["Family"], rows)
    )
    if a.slopes:
        rows = [
            [
                escape(s.moderator),
                escape(report.label(s.arm)),
                _slope(report, s.estimate, signed=True),
                f"{_slope(report, s.ci_low)} to {_slope(report, s.ci_high)}",
                _p(s.p_value),
                _p(s.p_adjusted),
                *([_p(s.ri_p_value)] if ri else []),
                s.family,
            ]
            for s in a.slopes
        ]
        head = ["Moderator", "Arm", "Per unit", "Interval", "p", "adjusted p"]
        head += ["randomization p"] if ri else []
        out += (
            "<h3>Change in effect per unit of a numeric moderator (linear interaction: "
            "per year of age, per point of self-efficacy; adjusted with the interaction "
            "tests of its family)</h3>" + _table(head + ["Family"], rows)
        )
    return out


def _slope(report: Report, x: float, signed: bool = False) -> str:
    if not math.isfinite(x):
        return "&ndash;"
    v = 100 * x if report.analysis.binary_outcome else x
    return f"{v:+.3g}" if signed else f"{v:.3g}"


def _diagnostics(report: Report) -> str:
    a = report.analysis
    s = a.srm
    out = ["<h2>Diagnostics</h2>", "<h3>Sample ratio</h3>"]
    rows = [
        [escape(report.label(arm)), f"{n:,}", _n(s.expected.get(arm), 6)]
        for arm, n in s.observed.items()
    ]
    out.append(_table(["Arm", f"Allocated {escape(s.unit)}", "Expected"], rows))
    verdict = "MISMATCH (p &lt; 0.001)" if s.flagged else "no mismatch detected"
    within = f", compared within {s.strata} strata" if s.strata > 1 else ""
    out.append(
        f"<p>Chi-square {_n(s.statistic)}, df {s.df}, {p_text(s.p_value)}{within}: {verdict}.</p>"
    )
    out.append(_design(report))
    if a.flow:
        rows = [
            [
                escape(report.label(f.arm)),
                f"{f.allocated:,}",
                _opt(f.delivered),
                _opt(f.exposed),
                f"{f.analysed:,}",
                _opt(f.opted_out),
                f"{f.lost:,}",
            ]
            for f in a.flow
        ]
        out.append("<h3>Participant flow (CONSORT)</h3>")
        out.append(_screening(report))
        out.append(
            _table(
                [
                    "Arm",
                    "Allocated",
                    "Message delivered",
                    "Page seen",
                    "Analysed",
                    "Opted out",
                    "Not analysed",
                ],
                rows,
            )
        )
    if a.attrition:
        rows = [
            [
                escape(report.label(r.arm)),
                f"{r.allocated:,}",
                f"{r.responded:,}",
                f"{100 * r.rate:.1f}%",
            ]
            for r in a.attrition.rows
        ]
        out.append(f"<h3>Response to {escape(a.outcome)}</h3>")
        out.append(_table(["Arm", "Allocated", "Responded", "Rate"], rows))
    if a.balance:
        rows = [
            [
                escape(b.covariate) + (f" = {escape(b.level)}" if b.level else ""),
                escape(report.label(b.arm)),
                _n(b.mean_treatment),
                _n(b.mean_control),
                _n(b.difference, 2) + (" *" if b.note else ""),
            ]
            for b in a.balance
        ]
        out.append("<h3>Baseline balance (standardized differences; * above 0.1)</h3>")
        out.append(
            _table(
                ["Characteristic", "Arm", "Mean (arm)", "Mean (control)", "Std. difference"], rows
            )
        )
    d = a.dropped
    extra = {
        k.removeprefix("missing_"): d[k]
        for k in ("missing_cluster", "missing_probability")
        if d.get(k)
    }
    out.append(
        f"<p>{a.n_analysed:,} of {a.n_rows:,} rows analysed; left out: missing outcome "
        f"{d['missing_outcome']:,}, missing arm {d['missing_arm']:,}"
        + "".join(f", missing {escape(k)} {v:,}" for k, v in extra.items())
        + ". Rows missing a moderator are left out of that moderator's subgroups only"
        + "".join(f"; {escape(k)}: {v:,}" for k, v in d.get("missing_moderator", {}).items() if v)
        + ". Missing covariate values entered at the mean with an indicator"
        + "".join(f"; {escape(k)}: {v:,}" for k, v in a.covariates_imputed.items() if v)
        + ".</p>"
    )
    return "\n".join(out)


def _design(report: Report) -> str:
    """How the estimates respected the design, in words."""
    d = report.analysis.design
    items = []
    if d.strata:
        items.append(f"Estimates formed within {d.strata} strata and combined by their shares.")
    for p in d.pools:
        items.append(f"Pooled strata {escape(' + '.join(p.members))}: {escape(p.reason)}.")
    if d.probability:
        items.append(
            f"Recorded assignment probabilities: column <code>{escape(d.probability)}</code>."
        )
    if d.weighted:
        items.append("Rows weighted by the inverse of their recorded probability.")
    if d.clusters:
        items.append(
            f"{d.clusters} clusters: CR2 standard errors with Bell-McCaffrey degrees of "
            "freedom; HTZ F tests across subgroups."
        )
    ri = d.randomization_inference
    if ri:
        how = (
            "every possible assignment enumerated"
            if ri["exact"]
            else f"{ri['draws']:,} re-randomizations, seed {ri['seed']}"
        )
        items.append(
            f"Randomization inference with the design's randomizer ({escape(ri['randomizer'])}): "
            f"{how}; {escape(ri['statistic'])}."
        )
    if not items:
        return ""
    return "<h3>Design</h3><ul>" + "".join(f"<li>{i}</li>" for i in items) + "</ul>"


def _opt(x: int | None) -> str:
    return "&ndash;" if x is None else f"{x:,}"


def forest_svg(report: Report) -> str:
    """A forest plot: overall effects, then each moderator level's effect per arm."""
    a = report.analysis
    scale = 100.0 if a.binary_outcome else 1.0
    rows: list[tuple[str, str, float, float, float, str]] = []
    for e in a.effects:
        if not e.error:
            rows.append(
                ("All participants", report.label(e.arm), e.estimate, e.ci_low, e.ci_high, "main")
            )
    for s in a.subgroups:
        if not s.error:
            rows.append(
                (
                    f"{s.moderator} {s.level}",
                    report.label(s.arm),
                    s.estimate,
                    s.ci_low,
                    s.ci_high,
                    s.family,
                )
            )
    if not rows:
        return "<p>No subgroup effect could be estimated.</p>"
    lo = min(min(r[3] for r in rows), 0.0) * scale
    hi = max(max(r[4] for r in rows), 0.0) * scale
    label_w, plot_w, row_h, top = 330, 480, 20, 30
    width = label_w + plot_w + 40
    height = top + row_h * len(rows) + 40
    axis = ForestAxis.spanning([lo, hi], left=label_w, width=plot_w, scale=scale)
    x = axis.x
    out = [
        svg_open("forest", "Forest plot of effects by subgroup", width, height),
        f'<text x="{label_w}" y="16">Effect ({"percentage points" if a.binary_outcome else "units"}'
        f") with {round(100 * (1 - a.alpha))}% interval</text>",
        axis.zero_line(top - 6, top + row_h * len(rows)),
    ]
    for i, (group, arm, est, l_, h_, fam) in enumerate(rows):
        y = top + row_h * i + row_h / 2
        cls = "main" if fam == "main" else ""
        ecls = "exploratory" if fam == "exploratory" else ""
        out.append(
            f'<g class="{cls}"><text x="4" y="{y + 4:.1f}">{escape(group)}: '
            f"{escape(arm)}</text>"
            f'<line class="ci {ecls}" x1="{x(l_):.1f}" y1="{y:.1f}" x2="{x(h_):.1f}" '
            f'y2="{y:.1f}"/><circle class="pt {ecls}" cx="{x(est):.1f}" cy="{y:.1f}" '
            f'r="4"><title>{escape(group)}, {escape(arm)}: '
            f"{amount(report, est, signed=True)} ({amount(report, l_)} to "
            f"{amount(report, h_)})</title></circle></g>"
        )
    out += axis.axis(top + row_h * len(rows) + 8, label_dy=16)
    out.append("</svg>")
    if any(r[5] == "exploratory" for r in rows):
        out.append(
            '<p><small class="exploratory">Amber: exploratory subgroups (moderators '
            "not pre-registered).</small></p>"
        )
    return "\n".join(out)
