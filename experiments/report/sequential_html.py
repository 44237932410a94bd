"""The report's always-valid monitoring section: each arm's effect over time with its
confidence sequence drawn as a band (inline SVG, no script: the page keeps a strict CSP),
the looks in a table, and, for a campaign, whether the fixed-horizon result is final yet.
"""

from __future__ import annotations

import math
from html import escape
from typing import TYPE_CHECKING

from experiments.report.sentences import p_text

if TYPE_CHECKING:
    from experiments.analysis.sequential import SequentialArm
    from experiments.report.model import Report

CSS = """
.cs text{font-size:11px;fill:#1b1b1b}
.cs .band{fill:#1d70b8;fill-opacity:.18;stroke:none}
.cs .est{fill:none;stroke:#1d70b8;stroke-width:2}
.cs .zero{stroke:#555;stroke-dasharray:4 3}.cs .axis{stroke:#999}
.stage{border-left:5px solid #1d70b8;background:#eef4fa;padding:.5rem 1rem;margin:1rem 0}
.stage.final{border-left-color:#00703c;background:#edf7f1}
"""

WIDTH, HEIGHT, LEFT, RIGHT, TOP, BOTTOM = 420, 200, 56, 12, 14, 34


def stage_notice(report: Report) -> str:
    """For a campaign: whether the fixed-horizon estimates are the final analysis yet
    (the planned sample reached, or the campaign closed), and which intervals are safe to
    look at repeatedly meanwhile."""
    c = report.campaign
    if not c:
        return ""
    n = report.analysis.n_rows
    planned = c.get("planned_sample_size")
    closed = c.get("status") == "closed"
    if closed or (planned and n >= planned):
        why = "the campaign is closed" if closed else f"the planned sample ({planned:,}) is reached"
        return (
            '<div class="stage final"><p><strong>Final analysis</strong>: '
            f"{escape(why)}, so the fixed-horizon effects and p-values below are the "
            "campaign's result.</p></div>"
        )
    of = f" of the planned {planned:,}" if planned else " (no planned sample size)"
    return (
        '<div class="stage"><p><strong>Interim look</strong>: '
        f"{n:,} participants randomized{escape(of)}. The fixed-horizon intervals and "
        "p-values below are valid once, at the planned sample: they become the final "
        "analysis when it is reached or the campaign is closed, and looking at them "
        "repeatedly before then inflates false positives. <strong>Safe to look at "
        "repeatedly</strong>: the always-valid intervals (confidence sequences) under "
        "&ldquo;Effect over time&rdquo;, which hold at every look at once.</p></div>"
    )


def sequential_section(report: Report) -> str:
    """Effect over time: a chart and a table per arm (nothing without `--sequential`)."""
    a = report.analysis
    if not a.sequential:
        return ""
    info = a.design.sequential or {}
    level = round(100 * (1 - a.alpha))
    scale = 100.0 if a.binary_outcome else 1.0
    units = "percentage points" if a.binary_outcome else "outcome units"
    out = [
        "<h2>Effect over time (always valid)</h2>",
        f"<p>Each arm's effect against control at every look (one per value of "
        f"<code>{escape(str(info.get('column', '')))}</code>, cumulative), with its {level}% "
        "confidence sequence: an interval that holds at every look at once, so it may be "
        "looked at as often as one likes and acted on whenever it excludes zero "
        "(asymptotic confidence sequences, Waudby-Smith et al. 2023; the estimate at each "
        f"look is the report's {escape(str(info.get('estimator', '')))} estimator; tightest "
        f"near {_count(info.get('tuned_for'))} units). The always-valid p-value never "
        f"rises from one look to the next. Estimates in {units}.</p>",
    ]
    for arm in a.sequential:
        out.append(f"<h3>{escape(report.label(arm.arm))}</h3>")
        out.append(_chart(report, arm, scale))
        last = arm.looks[-1] if arm.looks else None
        if last is not None and math.isfinite(last.estimate):
            verdict = (
                "excludes zero: the effect is established at this level, however often "
                "the report was looked at"
                if last.ci_low > 0 or last.ci_high < 0
                else "includes zero"
            )
            out.append(
                f"<p>Latest look ({escape(str(last.through))}, {last.n:,} units): "
                f"{_num(last.estimate * scale)} ({_num(last.ci_low * scale)} to "
                f"{_num(last.ci_high * scale)}), always-valid {escape(p_text(last.p_value))}; the "
                f"interval {verdict}.</p>"
            )
        out.append(_table(arm, scale))
    return "\n".join(out)


def _count(x) -> str:
    return f"{int(x):,}" if isinstance(x, int | float) and math.isfinite(x) else "the final"


def _num(x: float) -> str:
    return "&ndash;" if not math.isfinite(x) else f"{x:+.3g}"


def _table(arm: SequentialArm, scale: float) -> str:
    rows = "".join(
        f"<tr><td>{escape(str(x.through))}</td><td>{x.n:,}</td><td>{_num(x.estimate * scale)}"
        f"</td><td>{_num(x.ci_low * scale)}</td><td>{_num(x.ci_high * scale)}</td>"
        f"<td>{escape(p_text(x.p_value))}</td></tr>"
        for x in arm.looks
    )
    return (
        f"<details><summary>All {len(arm.looks)} looks</summary><table><thead><tr>"
        "<th>Through</th><th>Units</th><th>Estimate</th><th>Low</th><th>High</th>"
        f"<th>Always-valid p</th></tr></thead><tbody>{rows}</tbody></table></details>"
    )


def _chart(report: Report, arm: SequentialArm, scale: float) -> str:
    looks = [x for x in arm.looks if math.isfinite(x.ci_low) and math.isfinite(x.ci_high)]
    label = escape(report.label(arm.arm))
    if not looks:
        return "<p>Too few participants yet for an interval.</p>"
    lo = min(min(x.ci_low for x in looks), 0.0) * scale
    hi = max(max(x.ci_high for x in looks), 0.0) * scale
    pad = (hi - lo) * 0.05 or 1.0
    lo, hi = lo - pad, hi + pad
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
    count = len(looks)

    def x(i: int) -> float:
        return LEFT + (plot_w * i / (count - 1) if count > 1 else plot_w / 2)

    def y(v: float) -> float:
        return TOP + plot_h * (hi - v) / (hi - lo)

    upper = " ".join(f"{x(i):.1f},{y(v.ci_high * scale):.1f}" for i, v in enumerate(looks))
    lower = " ".join(
        f"{x(i):.1f},{y(v.ci_low * scale):.1f}" for i, v in reversed(list(enumerate(looks)))
    )
    line = " ".join(f"{x(i):.1f},{y(v.estimate * scale):.1f}" for i, v in enumerate(looks))
    z = y(0.0)
    parts = [
        f'<svg class="cs" role="img" viewBox="0 0 {WIDTH} {HEIGHT}" width="{WIDTH}" '
        f'height="{HEIGHT}" aria-label="Effect of {label} over time with its always-valid '
        'confidence band">',
        f"<title>Effect of {label} over time with its always-valid confidence band</title>",
        f'<polygon class="band" points="{upper} {lower}"/>',
        f'<line class="zero" x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{z:.1f}" y2="{z:.1f}"/>',
        f'<polyline class="est" points="{line}"/>',
        f'<line class="axis" x1="{LEFT}" x2="{LEFT}" y1="{TOP}" y2="{TOP + plot_h}"/>',
        f'<text x="{LEFT - 4}" y="{y(hi - pad) + 4:.1f}" text-anchor="end">{_num(hi - pad)}</text>',
        f'<text x="{LEFT - 4}" y="{z + 4:.1f}" text-anchor="end">0</text>',
        f'<text x="{LEFT - 4}" y="{y(lo + pad) + 4:.1f}" text-anchor="end">{_num(lo + pad)}</text>',
        f'<text x="{LEFT}" y="{HEIGHT - 8}">{escape(str(looks[0].through))}</text>',
        f'<text x="{WIDTH - RIGHT}" y="{HEIGHT - 8}" text-anchor="end">'
        f"{escape(str(looks[-1].through))}</text>",
        "</svg>",
    ]
    return "".join(parts)
