"""`nudge power FILE --prior-from-evidence`: the assurance of each message arm from the
council's evidence library (experiments.evidence.assurance), beside the simulated power.
Reads the database only for the library; the simulation itself needs none."""

from __future__ import annotations

import click


def evidence_assurance(design, result, council_slug: str | None) -> list:
    """One ArmAssurance per message arm of `design`, at the arm sizes of `result` (the
    power diagnosis)."""
    from experiments.evidence.assurance import arm_assurance
    from experiments.power import _per_test_alpha
    from nudge_app.cli.common import app_context

    plan = design.analysis
    control = next(a for a in design.arms if a.control)
    others = [a for a in design.arms if not a.control]
    alpha = _per_test_alpha(plan.alpha, len(others), plan.correction)
    binary = plan.primary_outcome != "self_efficacy_followup"
    rows = []
    with app_context(commit=True):
        from nudge_app.services import evidence_library, evidence_record

        council = _council(council_slug)
        evidence_record.record_closed(council.id)
        for arm in others:
            pool = (
                evidence_library.pool_for(council.id, plan.primary_outcome, arm.mechanism_tag)
                if arm.mechanism_tag
                else None
            )
            rows.append(
                arm_assurance(
                    arm.key,
                    arm.mechanism_tag,
                    plan.primary_outcome,
                    pool.result if pool else None,
                    pool.campaigns if pool else 0,
                    binary=binary,
                    baseline_rate=plan.baseline_rate,
                    n_treatment=int(result.n_per_arm.get(arm.key, 0)),
                    n_control=int(result.n_per_arm.get(control.key, 0)),
                    alpha_per_test=alpha,
                    mde=float(result.mde.get(arm.key, float("nan"))),
                )
            )
    return rows


def _council(slug: str | None):
    from sqlalchemy import select

    from nudge_app.cli.common import council_or_fail
    from nudge_app.extensions import db
    from nudge_app.models import Council

    if slug:
        return council_or_fail(slug)
    councils = list(db.session.scalars(select(Council).limit(2)))
    if len(councils) == 1:
        return councils[0]
    raise click.ClickException(
        "--prior-from-evidence reads a council's evidence library: name it with --council SLUG"
        if councils
        else "--prior-from-evidence: there is no council (and so no evidence library) yet"
    )
