"""The report's spillover panel for a randomized saturation design: the outcome by
saturation for offered and not-offered members (inline SVG, presentation attributes only,
so a strict Content-Security-Policy holds) and the table of direct, spillover and total
effects against pure-control clusters with their intervals."""

from __future__ import annotations

import math
from html import escape
from typing import TYPE_CHECKING

from experiments.report.sentences import amount

if TYPE_CHECKING:
    from experiments.report.model import Report

CSS = """
.spill text{font-size:12px;fill:#0b0c0c}.spill .axis{stroke:#505a5f}
.spill .treated{stroke:#1d70b8;fill:#1d70b8}.spill .untreated{stroke:#d4351c;fill:#d4351c}
"""
W, H, LEFT, RIGHT, TOP, BOTTOM = 420, 240, 56, 20, 16, 40


def _interval(report: Report, est, lo, hi) -> str:
    if est is None:
        return "&ndash;"
    ci = "" if lo is None else f" ({amount(report, lo, True)} to {amount(report, hi, True)})"
    return f"{amount(report, est, True)}{ci}"


def plot_svg(rows: list[dict]) -> str:
    """Outcome mean by saturation: not offered (pure control at 0) and offered."""
    untreated = [(0.0, rows[0]["mean_pure_control"])] + [
        (r["saturation"], r["mean_untreated"]) for r in rows
    ]
    treated = [(r["saturation"], r["mean_treated"]) for r in rows]
    values = [v for _, v in untreated + treated if v is not None and math.isfinite(v)]
    if not values:
        return ""
    lo, hi = min(0.0, min(values)), max(values) * 1.1 or 1.0

    def x(s: float) -> float:
        return LEFT + s * (W - LEFT - RIGHT)

    def y(v: float) -> float:
        return TOP + (1 - (v - lo) / (hi - lo)) * (H - TOP - BOTTOM)

    out = [
        f'<svg class="spill" role="img" viewBox="0 0 {W} {H}" width="{W}" height="{H}" '
        'aria-labelledby="spill-title"><title id="spill-title">Outcome by saturation, '
        "offered (blue) and not offered (red) members</title>",
        f'<line class="axis" x1="{LEFT}" y1="{H - BOTTOM}" x2="{W - RIGHT}" y2="{H - BOTTOM}"/>',
        f'<line class="axis" x1="{LEFT}" y1="{TOP}" x2="{LEFT}" y2="{H - BOTTOM}"/>',
    ]
    for s in sorted({0.0, *(r["saturation"] for r in rows)}):
        out.append(f'<text x="{x(s):.1f}" y="{H - BOTTOM + 16}" text-anchor="middle">{s:g}</text>')
    out.append(
        f'<text x="{(LEFT + W - RIGHT) / 2:.1f}" y="{H - 4}" text-anchor="middle">saturation</text>'
    )
    for v in (lo, (lo + hi) / 2, hi):
        out.append(f'<text x="{LEFT - 6}" y="{y(v) + 4:.1f}" text-anchor="end">{v:.2f}</text>')
    for cls, points in (("untreated", untreated), ("treated", treated)):
        pts = [(x(s), y(v)) for s, v in points if v is not None and math.isfinite(v)]
        if len(pts) > 1:
            path = " ".join(f"{a:.1f},{b:.1f}" for a, b in pts)
            out.append(f'<polyline class="{cls}" fill="none" stroke-width="2" points="{path}"/>')
        for a, b in pts:
            out.append(f'<circle class="{cls}" cx="{a:.1f}" cy="{b:.1f}" r="4"/>')
    out.append("</svg>")
    return "".join(out)


def _interval_text(rows: list[dict], level: int) -> str:
    """How the intervals were formed (each row says so in `interval_method`)."""
    if rows and rows[0].get("interval_method") == "randomization_inference":
        return (
            f"{level}% intervals by randomization inference: the saturations were re-drawn "
            "over the clusters, and the members offered the arm within each cluster, as the "
            f"randomizer draws them ({rows[0]['randomization_draws']:,} draws, seed "
            f"{rows[0]['randomization_seed']}), and the cluster-robust (CR2) t statistic "
            "inverted under a constant effect. With a few clusters of unequal sizes at each "
            "saturation, t intervals with Bell-McCaffrey degrees of freedom are too short."
        )
    return f"CR2 cluster-robust {level}% intervals and Bell-McCaffrey degrees of freedom."


def spillover_section(report: Report) -> str:
    a = report.analysis
    if not getattr(a, "saturation", None):
        return ""
    rows = [s.to_dict() for s in a.spillover]
    level = round(100 * (1 - a.alpha))
    parts = [
        "<h2>Spillover (randomized saturation design)</h2>",
        "<p>Each effect compares members of clusters at a saturation with members of "
        "pure-control clusters (saturation 0): <em>direct</em> for members offered the arm, "
        "<em>spillover</em> for members not offered it, <em>total</em> for all members. "
        "Estimates by OLS (Baird et al. 2018); " + _interval_text(rows, level) + "</p>",
    ]
    if rows:
        parts.append(plot_svg(rows))
    head = [
        "Arm",
        "Saturation",
        "Direct",
        "Spillover",
        "Total",
        "Offered / not offered / pure control",
    ]
    body = []
    for r in rows:
        body.append(
            "<tr>"
            + "".join(
                f"<td>{c}</td>"
                for c in (
                    escape(report.label(r["arm"])),
                    f"{r['saturation']:g}",
                    _interval(report, r["direct"], r["direct_ci_low"], r["direct_ci_high"]),
                    _interval(
                        report, r["spillover"], r["spillover_ci_low"], r["spillover_ci_high"]
                    ),
                    _interval(report, r["total"], r["total_ci_low"], r["total_ci_high"]),
                    f"{r['n_treated']:,} / {r['n_untreated']:,} / {r['n_pure_control']:,}",
                )
            )
            + "</tr>"
        )
    parts.append(
        "<table><thead><tr>"
        + "".join(f"<th>{h}</th>" for h in head)
        + "</tr></thead><tbody>"
        + "".join(body)
        + "</tbody></table>"
    )
    return "\n".join(parts)
