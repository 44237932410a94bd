"""The report's referral panel (campaigns with a mentor role): residents who enrolled
through a mentor's invitation link against the comparison arm's other members, with the
interval, the counts, and the reminder that who accepts an invitation is self-selected."""

from __future__ import annotations

from html import escape
from typing import TYPE_CHECKING

from experiments.report.sentences import amount

if TYPE_CHECKING:
    from experiments.report.model import Report


def _mean(report: Report, x) -> str:
    if x is None:
        return "&ndash;"
    return f"{100 * x:.1f}%" if report.analysis.binary_outcome else f"{x:.3g}"


def referrals_section(report: Report) -> str:
    r = report.referrals
    if r is None:
        return ""
    level = round(100 * (1 - report.analysis.alpha))
    comparison = escape(report.label(r["comparison"]))
    if r["estimate"] is None:
        difference = "&ndash;"
    elif r["ci_low"] is None:
        difference = amount(report, r["estimate"], True)
    else:
        difference = (
            f"{amount(report, r['estimate'], True)} ({amount(report, r['ci_low'], True)} to "
            f"{amount(report, r['ci_high'], True)})"
        )
    units = "percentage points" if report.analysis.binary_outcome else "outcome units"
    rows = [
        ("Residents invited by a mentor", f"{r['n_referred']:,}", _mean(report, r["mean_referred"])),
        (f"Comparison: {comparison}", f"{r['n_comparison']:,}", _mean(report, r["mean_comparison"])),
    ]  # fmt: skip
    parts = [
        '<h2 id="referrals">Referral chains (peer mentoring)</h2>',
        f"<p>Residents who joined through a mentor's invitation link ({r['mentors']:,} "
        f"mentor(s)) against the members of the comparison arm ({comparison}) who came in "
        f"otherwise. OLS with CR2 {level}% intervals clustered by mentor and by randomized "
        "cluster, Bell-McCaffrey degrees of freedom.</p>",
        "<table><thead><tr><th>Group</th><th>People</th><th>Mean</th></tr></thead><tbody>"
        + "".join(f"<tr><td>{a}</td><td>{b}</td><td>{c}</td></tr>" for a, b, c in rows)
        + "</tbody></table>",
        f"<p>Difference ({units}): <strong>{difference}</strong>.</p>",
        f"<p><small>{escape(r['note'])}</small></p>",
    ]
    if r.get("message"):
        parts.append(f"<p><small>{escape(r['message'])}</small></p>")
    return "\n".join(parts)
