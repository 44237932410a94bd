"""A meta-analysis forest plot as inline SVG: each campaign's effect with its interval
(the square's area by its random-effects weight), then the pooled effect as a diamond
spanning its interval and the prediction interval for a new campaign as a dashed line.

No script and no style attribute: the page styles it by class (a strict
Content-Security-Policy admits neither inline script nor inline style); the axis, the
zero line and the ticks are `experiments.forest_axis`, shared with the report's plot.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from html import escape
from typing import Literal

from experiments.analysis.dist import norm_isf
from experiments.evidence.meta import MetaAnalysis
from experiments.forest_axis import ForestAxis, svg_open

RowKind = Literal["study", "pooled", "prediction", "heading"]


@dataclass(frozen=True)
class ForestRow:
    label: str
    estimate: float
    low: float
    high: float
    kind: RowKind = "study"
    weight: float = 0.0  # share of the random-effects weight (studies)


def rows_for_pool(
    title: str,
    labels: Sequence[str],
    estimates: Sequence[float],
    std_errors: Sequence[float],
    result: MetaAnalysis,
) -> list[ForestRow]:
    """A heading, each effect (normal interval at the pool's level), the pooled effect and,
    when there is one, the prediction interval."""
    z = norm_isf(result.alpha / 2)
    out = [ForestRow(title, math.nan, math.nan, math.nan, "heading")]
    weights = list(result.weights) or [1.0] * len(estimates)
    for label, y, s, w in zip(labels, estimates, std_errors, weights, strict=False):
        out.append(ForestRow(label, y, y - z * s, y + z * s, "study", w))
    out.append(
        ForestRow(
            f"Pooled ({result.k} effect{'s' if result.k != 1 else ''})",
            result.estimate,
            result.ci_low,
            result.ci_high,
            "pooled",
        )
    )
    if math.isfinite(result.prediction_low):
        out.append(
            ForestRow(
                "Prediction for a new campaign",
                result.estimate,
                result.prediction_low,
                result.prediction_high,
                "prediction",
            )
        )
    return out


def forest_svg(
    rows: Sequence[ForestRow], *, scale: float = 1.0, unit: str = "", label: str = ""
) -> str:
    """The plot; `scale` multiplies every value for display (100: percentage points)."""
    values = [v * scale for r in rows if r.kind != "heading" for v in (r.low, r.high)]
    values = [v for v in values if math.isfinite(v)] + [0.0]
    label_w, plot_w, value_w, row_h, top = 300, 420, 190, 22, 30
    width = label_w + plot_w + value_w
    height = top + row_h * len(rows) + 36
    axis = ForestAxis.spanning(values, left=label_w, width=plot_w, scale=scale)
    x = axis.x
    aria = label or "Forest plot of effects and their pooled estimate"
    out = [
        svg_open("forest-plot", aria, width, height),
        f'<text x="{label_w}" y="16">Effect{f" ({escape(unit)})" if unit else ""}</text>',
        f'<text x="{label_w + plot_w + 10}" y="16">Estimate (interval)</text>',
        axis.zero_line(top - 6, top + row_h * len(rows)),
    ]
    max_w = max((r.weight for r in rows if r.kind == "study"), default=1.0) or 1.0
    for i, r in enumerate(rows):
        y = top + row_h * i + row_h / 2
        if r.kind == "heading":
            out.append(f'<text class="heading" x="4" y="{y + 4:.1f}">{escape(r.label)}</text>')
            continue
        text = f"{r.estimate * scale:+.1f} ({r.low * scale:.1f} to {r.high * scale:.1f})"
        out.append(f'<text x="16" y="{y + 4:.1f}">{escape(r.label)}</text>')
        out.append(f'<text x="{label_w + plot_w + 10}" y="{y + 4:.1f}">{escape(text)}</text>')
        if r.kind == "study":
            side = 4 + 6 * math.sqrt(max(r.weight, 0.0) / max_w)
            out.append(
                f'<line class="ci" x1="{x(r.low):.1f}" y1="{y:.1f}" x2="{x(r.high):.1f}" '
                f'y2="{y:.1f}"/><rect class="pt" x="{x(r.estimate) - side / 2:.1f}" '
                f'y="{y - side / 2:.1f}" width="{side:.1f}" height="{side:.1f}">'
                f"<title>{escape(r.label)}: {escape(text)}</title></rect>"
            )
        elif r.kind == "pooled":
            points = (
                f"{x(r.low):.1f},{y:.1f} {x(r.estimate):.1f},{y - 7:.1f} "
                f"{x(r.high):.1f},{y:.1f} {x(r.estimate):.1f},{y + 7:.1f}"
            )
            out.append(
                f'<polygon class="pooled" points="{points}">'
                f"<title>{escape(r.label)}: {escape(text)}</title></polygon>"
            )
        else:
            out.append(
                f'<line class="prediction" x1="{x(r.low):.1f}" y1="{y:.1f}" '
                f'x2="{x(r.high):.1f}" y2="{y:.1f}"><title>{escape(r.label)}: '
                f"{escape(text)}</title></line>"
            )
    out += axis.axis(top + row_h * len(rows) + 8, label_dy=18)
    out.append("</svg>")
    return "".join(out)
