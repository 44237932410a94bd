"""Recording closed campaigns in their council's evidence library: per arm the effect on
the primary outcome against control with its standard error (the campaign report's
headline estimator), the mechanism tag, the number analysed, and the counts of the
analysed by age band and self-efficacy band.

`record_closed(council_id)` records every closed campaign of the council not yet in the
library; a campaign too thin for a report is left out (and tried again next time). Every
reader of the library (the "What has worked" page, export, `nudge evidence`, `nudge power
--prior-from-evidence`) calls it first, so the library follows the campaigns' closing
without the closing itself (a request, the scheduler) waiting for an analysis.
"""

from __future__ import annotations

import math

from sqlalchemy import select

from experiments.design import moderator_bands
from experiments.evidence.pack import month, population_counts
from nudge_app.extensions import db
from nudge_app.models import Campaign, EvidenceCampaign
from nudge_app.services import evidence_library, reporting
from nudge_app.services.campaigns import design_of

MODERATORS = ("age", "self_efficacy")


def record_campaign(campaign: Campaign) -> EvidenceCampaign | None:
    """The campaign's library entry (made now if missing); None while it has no report."""
    entry = db.session.scalar(
        select(EvidenceCampaign).where(EvidenceCampaign.campaign_id == campaign.id)
    )
    if entry is not None:
        return entry
    try:
        report = reporting.campaign_report(campaign)
    except reporting.ReportNotReady:
        return None
    design = design_of(campaign)
    analysis = report.analysis
    frame = reporting.analysis_frame(campaign)
    frame = frame[frame[analysis.outcome].notna()]
    specs = {m: moderator_bands(design, m) for m in MODERATORS}
    effects = {e.arm: e for e in analysis.effects}
    tags = {a.key: a.mechanism_tag for a in campaign.arms}
    arms = []
    for a in design.arms:
        rows = frame[frame["arm"] == a.key]
        control = a.key == design.control.key
        e = effects.get(a.key)
        estimate = None if control or e is None else _finite(e.estimate)
        std_error = None if control or e is None else _finite(e.std_error)
        arms.append(
            {
                "mechanism": "control" if control else (tags.get(a.key) or "other"),
                "control": control,
                "outcome": analysis.outcome,
                "effect": estimate,
                "std_error": std_error if estimate is not None else None,
                "n": len(rows),
                "population": {
                    m: population_counts(rows[m].tolist(), spec) for m, spec in specs.items()
                },
            }
        )
    return evidence_library.add_entry(
        campaign.council_id,
        source="own",
        campaign_id=campaign.id,
        policy_domain=campaign.policy_domain,
        activity_kind=campaign.activity_kind,
        started=month(campaign.launched_at or campaign.created_at),
        closed=month(campaign.closed_at or campaign.launched_at or campaign.created_at),
        bands={m: list(spec.levels or []) for m, spec in specs.items()},
        arms=arms,
    )


def record_closed(council_id: int | None = None) -> int:
    """Record every closed campaign (of one council, or all) missing from the library;
    returns how many were recorded."""
    recorded = select(EvidenceCampaign.campaign_id).where(EvidenceCampaign.campaign_id.is_not(None))
    query = select(Campaign).where(Campaign.status == "closed", Campaign.id.not_in(recorded))
    if council_id is not None:
        query = query.where(Campaign.council_id == council_id)
    count = 0
    for campaign in db.session.scalars(query.order_by(Campaign.id)).all():
        if record_campaign(campaign) is not None:
            count += 1
    return count


def _finite(x: float) -> float | None:
    return float(x) if x is not None and math.isfinite(x) else None
