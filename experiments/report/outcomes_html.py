"""The report's outcome sections in HTML: every analysed outcome with its role (primary or
secondary), collective and individual co-production side by side per arm with the
substitution reading and the joint interval, self-reported against verified
participation, the mediation diagram (inline SVG, colours as presentation attributes so a
strict Content-Security-Policy needs no inline style), Lee bounds with the
response-weighted estimate and the reading the data support, and the complier effect
beside the intention-to-treat effect."""

from __future__ import annotations

import math
from html import escape
from typing import TYPE_CHECKING

from experiments.analysis.compliance import LABEL as CACE_LABEL
from experiments.analysis.mediation import ASSUMPTION
from experiments.p_values import fmt_p, p_text

if TYPE_CHECKING:
    from experiments.report.model import Report

CSS = """
.role{display:inline-block;padding:0 .4rem;border-radius:.5rem;font-size:.8rem;font-weight:600}
.role.primary{background:#0b0c0c;color:#fff}.role.secondary{background:#e8e8e8;color:#0b0c0c}
.panel{display:grid;grid-template-columns:repeat(auto-fit,minmax(15rem,1fr));gap:1rem;margin:.5rem 0}
.panel>div{border:1px solid #b1b4b6;padding:.6rem .9rem}
.panel .big{font-size:1.5rem;font-weight:700;margin:.2rem 0}
.reading{border-left:5px solid #1d70b8;background:#f0f6fb;padding:.4rem .9rem;margin:.4rem 0 1.4rem}
.flag{color:#942514;font-weight:700}
.mediation text{font-size:13px;fill:#0b0c0c}.mediation .box{fill:#f3f2f1;stroke:#505a5f}
.mediation .arrow{stroke:#1d70b8;stroke-width:2;fill:none}
.mediation .direct{stroke:#505a5f;stroke-dasharray:5 4}
"""


def _n(x: float | None, digits: int = 3) -> str:
    if x is None or not isinstance(x, int | float) or not math.isfinite(x):
        return "&ndash;"
    return f"{x:.{digits}g}" if abs(x) >= 1e-3 or x == 0 else f"{x:.2e}"


def _signed(x: float | None) -> str:
    text = _n(x)
    return ("+" + text) if x is not None and math.isfinite(x) and x > 0 else text


def _table(head: list[str], rows: list[list[str]], caption: str = "") -> str:
    cap = f"<caption>{escape(caption)}</caption>" if caption else ""
    th = "".join(f'<th scope="col">{h}</th>' for h in head)
    body = "".join("<tr>" + "".join(f"<td>{c}</td>" for c in r) + "</tr>" for r in rows)
    return f"<table>{cap}<thead><tr>{th}</tr></thead><tbody>{body}</tbody></table>"


def outcomes_section(report: Report) -> str:
    f = report.further
    if f is None:
        return ""
    level = round(100 * (1 - f.alpha))
    out = [
        f"<h2>All outcomes ({level}% intervals)</h2>",
        "<p>The primary outcome's effects are adjusted across arms as the analysis plan "
        "says (its p-values alone carry confirmatory claims); secondary outcomes are "
        "adjusted together by Benjamini-Hochberg and are exploratory.</p>",
    ]
    rows = []
    for o in f.outcomes:
        role = f'<span class="role {o.role}">{o.role}</span>'
        for e in o.effects:
            rows.append(
                [
                    f"<code>{escape(o.outcome)}</code>",
                    role,
                    escape(report.label(e.arm)),
                    _signed(e.estimate),
                    f"{_n(e.ci_low)} to {_n(e.ci_high)}",
                    fmt_p(e.p_value),
                    fmt_p(e.p_adjusted),
                    f"{e.n_treatment + e.n_control:,}",
                ]
            )
    out.append(
        _table(["Outcome", "Role", "Arm", "Effect", "Interval", "p", "adjusted p", "n"], rows)
    )
    out += [_coproduction(report), _reporting(report), _cace(report), _mediation(report)]
    out.append(_survey(report))
    if f.notes:
        out.append("<h3>Analyses not run</h3><ul>")
        out += [f"<li>{escape(n)}</li>" for n in f.notes]
        out.append("</ul>")
    return "\n".join(x for x in out if x)


def _coproduction(report: Report) -> str:
    f = report.further
    if not f.coproduction:
        return ""
    level = round(100 * (1 - f.alpha))
    out = [
        '<h2 id="coproduction">Collective and individual co-production, side by side</h2>',
        "<p>Each arm's effect on collective co-production (follow-up self-report) and on "
        "individual co-production (activities done at follow-up), each adjusted for its "
        f"baseline value. The joint interval holds for both effects at once ({level}%).</p>",
    ]
    for c in f.coproduction:
        p = c.effects
        joint = _joint(c, f.alpha)
        out.append(f"<h3>{escape(report.label(p.arm))}</h3>")
        out.append('<div class="panel">')
        for title, name, e in (
            ("Collective co-production", p.first, p.first_effect),
            ("Individual co-production", p.second, p.second_effect),
        ):
            low, high = joint[name]
            out.append(
                f"<div><h4>{title}</h4>"
                f'<p class="big">{_signed(e.estimate)}</p>'
                f"<p>{level}% interval {_n(e.ci_low)} to {_n(e.ci_high)}<br>"
                f"joint interval {_n(low)} to {_n(high)}</p></div>"
            )
        out.append("</div>")
        d = p.difference
        out.append(
            f'<p class="reading">{escape(c.reading[:1].upper() + c.reading[1:])}. '
            f"Difference (collective minus individual) {_signed(d.estimate)}, interval "
            f"{_n(d.ci_low)} to {_n(d.ci_high)}; both effects zero: "
            f"{escape(p_text(p.joint_p_value))}.</p>"
        )
    return "\n".join(out)


def _joint(c, alpha: float) -> dict:
    from experiments.analysis.further import joint_interval

    return joint_interval(c, alpha)


def _reporting(report: Report) -> str:
    f = report.further
    if not f.reporting:
        return ""
    rows = []
    for r in f.reporting:
        p = r.effects
        rows.append(
            [
                escape(report.label(p.arm)),
                _signed(p.first_effect.estimate),
                _signed(p.second_effect.estimate),
                _signed(p.difference.estimate),
                fmt_p(p.difference.p_value),
                (
                    '<span class="flag">possible reporting bias</span>'
                    if r.flagged
                    else "no sign of reporting bias"
                ),
            ]
        )
    return (
        "<h2>Self-reported against verified participation</h2>"
        "<p>The same respondents' effect on saying they took part and on being checked in "
        "by the organiser; a difference means the message may have changed the reporting "
        "rather than the behaviour: trust the verified measure.</p>"
        + _table(
            ["Arm", "Self-reported", "Verified", "Difference", "p", "Reading"],
            rows,
        )
    )


def _cace(report: Report) -> str:
    f = report.further
    if not f.cace:
        return ""
    itt = {e.arm: e for e in report.analysis.effects}
    rows = []
    for c in f.cace:
        e = itt.get(c.arm)
        rows.append(
            [
                escape(report.label(c.arm)),
                "intention to treat",
                _signed(e.estimate) if e else "&ndash;",
                f"{_n(e.ci_low)} to {_n(e.ci_high)}" if e else "",
                "",
            ]
        )
        rows.append(
            [
                "",
                "complier average causal effect",
                _signed(c.effect.estimate),
                f"{_n(c.effect.ci_low)} to {_n(c.effect.ci_high)}",
                f"{100 * c.compliance:.0f}% saw the message",
            ]
        )
    return (
        "<h2>Effect of seeing the message</h2>"
        f"<p>{escape(CACE_LABEL[:1].upper() + CACE_LABEL[1:])}.</p>"
        + _table(["Arm", "Estimand", "Effect", "Interval", "Exposure"], rows)
    )


def mediation_svg(m, label: str) -> str:
    """Arm -> mediator -> outcome, with the direct path below: the effect on the mediator,
    the mediated (ACME) and direct (ADE) effects on the arrows."""
    w, h = 640, 210
    box = (
        '<rect class="box" x="{x}" y="{y}" width="170" height="46" rx="6"/>'
        '<text x="{tx}" y="{ty}" text-anchor="middle">{t}</text>'
    )

    def place(x, y, text):
        return box.format(x=x, y=y, tx=x + 85, ty=y + 28, t=escape(text))

    acme = f"mediated {_signed(m.acme)} ({_n(m.acme_ci_low)} to {_n(m.acme_ci_high)})"
    return (
        f'<svg class="mediation" role="img" width="{w}" height="{h}" viewBox="0 0 {w} {h}" '
        f'aria-labelledby="med-{escape(m.arm)}">'
        f'<title id="med-{escape(m.arm)}">Mediation of the effect of {escape(label)} on '
        f"{escape(m.outcome)} through {escape(m.mediator)}: {escape(acme)}, direct "
        f"{_n(m.ade)}</title>"
        '<defs><marker id="head" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7" '
        'markerHeight="7" orient="auto"><path d="M0 0L10 5L0 10z" fill="#1d70b8"/></marker>'
        "</defs>"
        + place(10, 120, label)
        + place(235, 10, m.mediator)
        + place(460, 120, m.outcome)
        + '<path class="arrow" d="M95 120L250 58" marker-end="url(#head)"/>'
        + '<path class="arrow" d="M390 58L545 120" marker-end="url(#head)"/>'
        + '<path class="arrow direct" d="M180 143L458 143" marker-end="url(#head)"/>'
        + f'<text x="70" y="80">on mediator {_signed(m.effect_on_mediator)}</text>'
        + f'<text x="400" y="80">{escape(acme)}</text>'
        + f'<text x="320" y="170" text-anchor="middle">direct {_signed(m.ade)} '
        f"({_n(m.ade_ci_low)} to {_n(m.ade_ci_high)})</text>"
        + f'<text x="320" y="198" text-anchor="middle">proportion mediated '
        f"{_n(m.proportion_mediated, 2)}; vanishes at rho = {_n(m.rho_at_zero, 2)}</text>"
        "</svg>"
    )


def _mediation(report: Report) -> str:
    f = report.further
    if not f.mediation:
        return ""
    out = [
        '<h2 id="mediation">Mediation through follow-up self-efficacy</h2>',
        "<p>Causal mediation analysis (Imai, Keele and Tingley 2010): how much of each "
        "arm's effect runs through the mediator. <strong>Exploratory</strong>, outside the "
        f"confirmatory family; it rests on {escape(ASSUMPTION.split(';')[0])}. "
        + (
            "Respondents are weighted by the inverse probability of answering the follow-up. "
            if f.mediation_weighted
            else ""
        )
        + "rho is the correlation of unmeasured causes of mediator and outcome at which the "
        "mediated effect would be zero: the smaller, the more fragile.</p>",
    ]
    rows = []
    for m in f.mediation:
        out.append(mediation_svg(m, report.label(m.arm)))
        rows.append(
            [
                escape(report.label(m.arm)),
                _signed(m.acme),
                f"{_n(m.acme_ci_low)} to {_n(m.acme_ci_high)}",
                _signed(m.ade),
                _signed(m.total),
                _n(m.proportion_mediated, 2),
                _n(m.rho_at_zero, 2),
            ]
        )
    out.append(
        _table(
            [
                "Arm",
                "Mediated (ACME)",
                "Interval",
                "Direct (ADE)",
                "Total",
                "Proportion mediated",
                "rho at zero",
            ],
            rows,
        )
    )
    return "\n".join(out)


def _survey(report: Report) -> str:
    f = report.further
    if not f.bounds:
        return ""
    weighted = {(w.outcome, w.arm): w for w in f.weighted}
    rows = []
    for b in f.bounds:
        w = weighted.get((b.outcome, b.arm))
        rows.append(
            [
                f"<code>{escape(b.outcome)}</code>",
                escape(report.label(b.arm)),
                f"{100 * b.response_arm:.0f}% / {100 * b.response_control:.0f}%",
                _signed(b.respondents_only),
                f"{_n(b.lower)} to {_n(b.upper)}",
                (
                    f"{_signed(w.estimate.estimate)} ({_n(w.estimate.ci_low)} to "
                    f"{_n(w.estimate.ci_high)})"
                    if w
                    else "&ndash;"
                ),
            ]
        )
    out = [
        "<h2>Survey outcomes and who answered</h2>",
        "<p>Lee (2009) bounds assume only that the message moved answering one way; the "
        "response-weighted estimate assumes that, within each arm, answering depends only "
        "on what was recorded for everyone.</p>",
        _table(
            [
                "Outcome",
                "Arm",
                "Answered (arm / control)",
                "Respondents only",
                "Lee bounds",
                "Response-weighted",
            ],
            rows,
        ),
    ]
    out += [f'<p class="reading">{escape(r.reading)}</p>' for r in f.readings]
    return "\n".join(out)
