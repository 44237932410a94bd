"""The report's cell section in HTML: heat maps of each arm's raw and pooled effect in the
age x self-efficacy cells (inline SVG, colours as presentation attributes so a strict
Content-Security-Policy needs no inline style), the cell table, the omnibus and trend
tests, and the targeting table with the cross-fitted gain and the (exploratory)
calibration check."""

from __future__ import annotations

import math
from html import escape
from typing import TYPE_CHECKING

from experiments.report.sentences import amount, fmt_p, p_text

if TYPE_CHECKING:
    from experiments.analysis.estimators.cells import CellAnalysis
    from experiments.report.model import Report

CSS = """
.heat text{font-size:12px;fill:#0b0c0c}.heat text.light{fill:#fff}
.heat .frame{fill:none;stroke:#b1b4b6}.heatmaps{display:flex;flex-wrap:wrap;gap:1rem}
.legend{font-size:.85rem;color:#505a5f}
"""
POSITIVE = (0x1D, 0x70, 0xB8)  # blue: the arm raised the outcome
NEGATIVE = (0xD4, 0x35, 0x1C)  # red: the arm lowered it


def _colour(value: float, scale: float) -> tuple[str, bool]:
    """Fill for an effect (white at 0, full colour at |scale|) and whether its text
    should be light (dark fills)."""
    if not math.isfinite(value) or scale <= 0:
        return "#f3f2f1", False
    t = min(abs(value) / scale, 1.0)
    base = POSITIVE if value > 0 else NEGATIVE
    rgb = [round(255 + (c - 255) * t) for c in base]
    return "#" + "".join(f"{c:02x}" for c in rgb), _white_reads_better(rgb)


def _white_reads_better(rgb: list[int]) -> bool:
    """WCAG contrast of white against the fill above that of near-black (#0b0c0c)."""

    def channel(c: int) -> float:
        c = c / 255
        return c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4

    lum = 0.2126 * channel(rgb[0]) + 0.7152 * channel(rgb[1]) + 0.0722 * channel(rgb[2])
    dark = 0.2126 * channel(11) + 0.7152 * channel(12) + 0.0722 * channel(12)
    return 1.05 / (lum + 0.05) > (lum + 0.05) / (dark + 0.05)


def heat_map(report: Report, cells: CellAnalysis, arm: str, which: str, scale: float) -> str:
    """One arm's cells as a grid: rows the first moderator's bands, columns the second's;
    `which` is "raw" or "pooled"."""
    t = cells.table
    (m1, m2), (l1, l2) = t.moderators, t.levels
    by_cell = {(c.levels[m1], c.levels[m2]): c for c in t.cells if c.arm == arm}
    cw, ch, left, top = 86, 34, 96, 58
    width, height = left + cw * len(l2) + 8, top + ch * len(l1) + 8
    title = "Raw" if which == "raw" else "Pooled"
    label = f"{title} effect of {report.label(arm)} by {m1} and {m2}"
    out = [
        f'<svg class="heat" role="img" aria-label="{escape(label)}" '
        f'xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}">',
        f'<text x="0" y="14"><tspan font-weight="bold">{escape(title)}</tspan> '
        f"({escape(report.label(arm))})</text>",
    ]
    out.append(
        f'<text x="{left + cw * len(l2) / 2:.0f}" y="{top - 26}" text-anchor="middle">'
        f"{escape(m2)}</text>"
    )
    for j, b in enumerate(l2):
        out.append(
            f'<text x="{left + cw * j + cw / 2:.0f}" y="{top - 8}" text-anchor="middle">'
            f"{escape(b)}</text>"
        )
    for i, a in enumerate(l1):
        y = top + ch * i
        out.append(f'<text x="0" y="{y + ch / 2 + 4:.0f}">{escape(m1)} {escape(a)}</text>')
        for j, b in enumerate(l2):
            c = by_cell.get((a, b))
            value = math.nan
            if c is not None:
                value = c.estimate if which == "raw" else c.pooled_estimate
            fill, light = _colour(value, scale)
            text = amount(report, value, signed=True) if math.isfinite(value) else "n/a"
            x = left + cw * j
            tip = f"{m1} {a}, {m2} {b}: {text}"
            cls = ' class="light"' if light else ""
            out.append(
                f'<rect x="{x}" y="{y}" width="{cw}" height="{ch}" fill="{fill}">'
                f"<title>{escape(tip)}</title></rect>"
                f'<text x="{x + cw / 2:.0f}" y="{y + ch / 2 + 4:.0f}" text-anchor="middle"'
                f"{cls}>{escape(text)}</text>"
            )
    out.append(
        f'<rect class="frame" x="{left}" y="{top}" width="{cw * len(l2)}" height="{ch * len(l1)}"/>'
    )
    out.append("</svg>")
    return "".join(out)


def _table(head: list[str], rows: list[list[str]], caption: str = "") -> str:
    cap = f"<caption>{escape(caption)}</caption>" if caption else ""
    th = "".join(f'<th scope="col">{h}</th>' for h in head)
    body = "".join("<tr>" + "".join(f"<td>{c}</td>" for c in r) + "</tr>" for r in rows)
    return f"<table>{cap}<thead><tr>{th}</tr></thead><tbody>{body}</tbody></table>"


def cells_section(report: Report) -> str:
    """The whole cell section, or "" when the analysis formed no cell table."""
    cells = report.analysis.cells
    if cells is None:
        return ""
    t = cells.table
    a = report.analysis
    level = round(100 * (1 - a.alpha))
    units = "percentage points" if a.binary_outcome else "outcome units"
    m1, m2 = t.moderators
    values = [abs(v) for c in t.cells for v in (c.estimate, c.pooled_estimate) if math.isfinite(v)]
    scale = max(values, default=0.0)
    arms = list(dict.fromkeys(c.arm for c in t.cells))
    out = [
        f"<h2>Effects by {escape(m1)} x {escape(m2)} cell</h2>",
        "<p>Each arm's effect against control in every cell, raw (that cell's data alone) "
        "and pooled (shrunk toward a model linear in "
        f"{escape(m1)} and {escape(m2)}, more where the cell is small: empirical Bayes "
        "with the between-cell variance estimated by REML and intervals that allow for "
        f"estimating it). Effects in {units}; {cells.n:,} participants with both "
        "moderators.</p>",
    ]
    for arm in arms:
        out.append('<div class="heatmaps">')
        out.append(heat_map(report, cells, arm, "raw", scale))
        out.append(heat_map(report, cells, arm, "pooled", scale))
        out.append("</div>")
    out.append(
        '<p class="legend">Blue: the arm raised the outcome; red: it lowered it; the deeper '
        f"the colour, the larger the effect (full colour at {amount(report, scale)}"
        f"{' points' if a.binary_outcome else ''}). Grey: not estimable. The numbers are "
        "in the table below.</p>"
    )
    rows = []
    for c in t.cells:
        if c.error:
            rows.append(
                [escape(report.label(c.arm)), escape(c.levels[m1]), escape(c.levels[m2]),
                 f"{c.n:,}", escape(c.message), "", "", ""]
            )  # fmt: skip
            continue
        rows.append(
            [
                escape(report.label(c.arm)),
                escape(c.levels[m1]),
                escape(c.levels[m2]),
                f"{c.n:,}",
                amount(report, c.estimate, signed=True),
                amount(report, c.std_error),
                amount(report, c.pooled_estimate, signed=True),
                f"{amount(report, c.pooled_ci_low)} to {amount(report, c.pooled_ci_high)}",
            ]
        )
    out.append(
        _table(
            ["Arm", escape(m1), escape(m2), "n", "Raw effect", "Raw SE", "Pooled effect",
             f"Pooled {level}% interval"],
            rows,
            "Raw and partially pooled cell effects",
        )
    )  # fmt: skip
    out.append(_tests(report, cells))
    out.append(targeting_section(report, cells))
    return "\n".join(out)


def _tests(report: Report, cells: CellAnalysis) -> str:
    t = cells.table
    parts = []
    if t.error:
        parts.append(f"<p>{escape(t.message)}</p>")
    if math.isfinite(t.omnibus_statistic):
        tau = math.sqrt(t.tau2) if math.isfinite(t.tau2) and t.tau2 >= 0 else math.nan
        parts.append(
            "<p>Do the cells differ at all? Wald chi-square "
            f"{t.omnibus_statistic:.2f} on {t.omnibus_df} df, "
            f"{p_text(t.omnibus_p_value)}. Between-cell standard deviation around the "
            f"smooth model: {amount(report, tau)}"
            f"{' points' if report.analysis.binary_outcome else ''} (tau^2 "
            f"{t.tau2:.3g}).</p>"
            if math.isfinite(t.tau2)
            else f"<p>Do the cells differ at all? Wald chi-square {t.omnibus_statistic:.2f} "
            f"on {t.omnibus_df} df, {p_text(t.omnibus_p_value)}.</p>"
        )
    if t.trends:
        binary = report.analysis.binary_outcome
        rows = [
            [
                escape(report.label(tr.arm)),
                escape(tr.moderator),
                f"{(100 if binary else 1) * tr.slope:+.3g}",
                f"{(100 if binary else 1) * tr.ci_low:.3g} to "
                f"{(100 if binary else 1) * tr.ci_high:.3g}",
                fmt_p(tr.p_value),
            ]
            for tr in t.trends
        ]
        parts.append(
            _table(
                ["Arm", "Moderator", "Change in effect per unit", "Interval", "p"],
                rows,
                "Trend tests: is the effect linear in each moderator? (the pooled model's slopes)",
            )
        )
    return "\n".join(parts)


def targeting_section(report: Report, cells: CellAnalysis) -> str:
    """Best arm per cell, the gain from targeting, the calibration check."""
    t = cells.table
    m1, m2 = t.moderators
    out = ["<h3>Who to target: the best arm in each cell</h3>"]
    if cells.best_arms:
        rows = [
            [
                escape(b.levels[m1]),
                escape(b.levels[m2]),
                escape(report.label(b.best)),
                f"{100 * b.probability:.0f}%",
                amount(report, b.effect, signed=True),
            ]
            for b in cells.best_arms
        ]
        out.append(
            _table(
                [escape(m1), escape(m2), "Best arm", "Probability it is best", "Its pooled effect"],
                rows,
                "From the pooled cell effects (control counts as an arm at 0)",
            )
        )
    elif "best_arms" in cells.messages:
        out.append(f"<p>{escape(cells.messages['best_arms'])}</p>")
    g = cells.gain
    level = round(100 * (1 - report.analysis.alpha))
    if g is not None:
        singles = ", ".join(sorted({report.label(s) for s in g.single_best}))
        out.append(
            "<p>Gain from targeting each cell's best arm over giving everyone the single "
            f"best arm ({escape(singles)}): {amount(report, g.estimate, signed=True)}"
            f"{' points' if report.analysis.binary_outcome else ''} ({level}% CI "
            f"{amount(report, g.ci_low)} to {amount(report, g.ci_high)}; "
            f"{p_text(g.p_value)}). Cross-fitted over {g.folds} folds: the participants "
            "who chose each rule never judge it.</p>"
        )
    elif "gain" in cells.messages:
        out.append(f"<p>Gain from targeting: {escape(cells.messages['gain'])}.</p>")
    out.append(
        "<h3>Calibration of the heterogeneity model (exploratory)</h3>"
        "<p>Best linear predictor and sorted group effects (Chernozhukov, Demirer, Duflo "
        "and Fernandez-Val): a loading near 1 says the pooled cells predict how the effect "
        "varies, near 0 that they carry no such information. Exploratory: a hypothesis "
        "for the next campaign, not a finding.</p>"
    )
    if cells.calibration:
        rows = []
        for c in cells.calibration:
            groups = "; ".join(f"{amount(report, q.estimate, signed=True)}" for q in c.groups)
            rows.append(
                [
                    escape(report.label(c.arm)),
                    amount(report, c.average_effect.estimate, signed=True),
                    f"{c.loading.estimate:.2f} ({c.loading.ci_low:.2f} to "
                    f"{c.loading.ci_high:.2f}; {p_text(c.loading.p_value)})",
                    groups,
                    f"{amount(report, c.top_minus_bottom.estimate, signed=True)} "
                    f"({p_text(c.top_minus_bottom.p_value)})",
                    str(c.splits),
                ]
            )
        out.append(
            _table(
                ["Arm", "Average effect", "Heterogeneity loading", "Group effects (lowest "
                 "predicted first)", "Top minus bottom", "Splits"],
                rows,
                "Medians over random half-splits; p-values adjusted for the splitting",
            )
        )  # fmt: skip
    elif "calibration" in cells.messages:
        out.append(f"<p>{escape(cells.messages['calibration'])}.</p>")
    return "\n".join(out)
