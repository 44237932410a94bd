"""Campaigns: stored from a design, read back as a design, and moved through their lifecycle.

The tables (campaign, arm, follow_up_step) are the source of truth; `design_of` rebuilds
the `experiments.design.CampaignDesign` from them so the round trip file -> database ->
file is lossless. Launch freezes the design and records its hash; a frozen campaign's
design can no longer change.
"""

from __future__ import annotations

import re
import secrets
from dataclasses import asdict
from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

from sqlalchemy import select

from experiments.design import (
    Activity,
    AnalysisPlan,
    ArmMessages,
    CampaignDesign,
    DesignError,
    Eligibility,
    FollowUp,
    Mentoring,
    Problem,
    Randomization,
    StepMessages,
    Stratum,
)
from experiments.design import (
    Arm as DesignArm,
)
from nudge_app.errors import DomainError
from nudge_app.extensions import db
from nudge_app.models import Arm, Campaign, Council, FollowUpStep
from nudge_app.services import assignment, audit, outbox


class CampaignError(DomainError):
    """A campaign change that is not allowed; the message says why."""

    http_status = 409
    code = "campaign_refused"


class CampaignLocked(CampaignError):
    """The campaign was launched: its design is frozen."""

    code = "campaign_locked"


class CampaignStateError(CampaignError):
    """The lifecycle step is not possible from the campaign's current status."""

    code = "campaign_state"


def _slugify(text: str) -> str:
    slug = re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")
    return (slug or "campaign")[:56].strip("-")


def _free_slug(council_id: int, wanted: str) -> str:
    taken = set(
        db.session.scalars(
            select(Campaign.slug).where(
                Campaign.council_id == council_id, Campaign.slug.like(f"{wanted}%")
            )
        )
    )
    if wanted not in taken:
        return wanted
    n = 2
    while f"{wanted}-{n}" in taken:
        n += 1
    return f"{wanted}-{n}"


def create_campaign(
    council: Council, design: CampaignDesign, actor: str = "cli", actor_id: int | None = None
) -> Campaign:
    """Store a design as a draft campaign; its slug is the design's or one made from the name.

    A design naming a slug the council already uses gets a numbered variant
    (`street-cleanup-2`), so creating from the same file twice makes two drafts.
    """
    _refuse_past_end_date(design, council)
    slug = _free_slug(council.id, design.slug or _slugify(design.name))
    campaign = Campaign(
        council_id=council.id,
        slug=slug,
        status="draft",
        salt=secrets.token_hex(16),
        open_code=secrets.token_urlsafe(12),
    )
    _apply_design(campaign, design)
    db.session.add(campaign)
    db.session.flush()
    audit.record(
        council_id=council.id,
        actor=actor,
        actor_id=actor_id,
        action="campaign.create",
        object_type="campaign",
        object_id=campaign.id,
        after={"slug": slug, "design": design_of(campaign).to_dict()},
    )
    return campaign


def _apply_design(campaign: Campaign, design: CampaignDesign) -> None:
    campaign.name = design.name
    campaign.description = design.description
    campaign.policy_domain = design.policy_domain
    campaign.enrolment_mode = design.enrolment_mode
    campaign.language = design.language
    campaign.planned_sample_size = design.planned_sample_size
    campaign.end_date = design.end_date
    campaign.retention_days = design.retention_days
    campaign.lawful_basis = design.lawful_basis
    campaign.activity_name = design.activity.name
    campaign.activity_kind = design.activity.kind
    campaign.activity_description = design.activity.description
    campaign.activity_where = design.activity.where
    campaign.activity_when = design.activity.when
    campaign.randomization = asdict(design.randomization)
    campaign.analysis_plan = asdict(design.analysis)
    rules = design.eligibility.require if design.eligibility else []
    campaign.eligibility = list(rules) or None
    campaign.mentoring = asdict(design.mentoring) if design.mentoring else None
    # Keep existing rows where keys match so ids referenced elsewhere stay valid.
    by_key = {arm.key: arm for arm in campaign.arms}
    arms = []
    for position, a in enumerate(design.arms):
        arm = by_key.get(a.key) or Arm(key=a.key)
        arm.name, arm.is_control, arm.weight = a.name, a.control, float(a.weight)
        arm.mechanism, arm.framing, arm.position = a.mechanism, a.framing, position
        arm.mechanism_tag = a.mechanism_tag
        arm.page_template = a.messages.page
        arm.email_subject_template = a.messages.email_subject
        arm.email_body_template = a.messages.email_body
        arm.sms_template = a.messages.sms
        arms.append(arm)
    campaign.arms = arms
    steps_by_key = {s.key: s for s in campaign.follow_up_steps}
    steps = []
    for position, f in enumerate(design.follow_ups):
        step = steps_by_key.get(f.key) or FollowUpStep(key=f.key)
        step.kind, step.offset_hours, step.channel = f.kind, float(f.offset_hours), f.channel
        step.condition, step.expires_after_hours = f.condition, float(f.expires_after_hours)
        step.email_subject_template = f.messages.email_subject
        step.email_body_template = f.messages.email_body
        step.sms_template = f.messages.sms
        step.position = position
        steps.append(step)
    campaign.follow_up_steps = steps


def _number(x: float) -> float | int:
    return int(x) if float(x).is_integer() else x


def design_of(campaign: Campaign) -> CampaignDesign:
    """The campaign's design as plain values, rebuilt from its rows."""
    r = campaign.randomization or {}
    a = campaign.analysis_plan or {}
    return CampaignDesign(
        name=campaign.name,
        slug=campaign.slug,
        description=campaign.description or "",
        policy_domain=campaign.policy_domain,
        enrolment_mode=campaign.enrolment_mode,
        language=campaign.language,
        planned_sample_size=campaign.planned_sample_size,
        end_date=campaign.end_date,
        retention_days=campaign.retention_days if campaign.retention_days is not None else 90,
        lawful_basis=campaign.lawful_basis or "consent",
        activity=Activity(
            name=campaign.activity_name,
            kind=campaign.activity_kind,
            description=campaign.activity_description,
            where=campaign.activity_where,
            when=campaign.activity_when,
        ),
        arms=[
            DesignArm(
                key=arm.key,
                name=arm.name,
                control=arm.is_control,
                weight=_number(arm.weight),
                mechanism=arm.mechanism,
                mechanism_tag=arm.mechanism_tag,
                framing=arm.framing,
                messages=ArmMessages(
                    page=arm.page_template,
                    email_subject=arm.email_subject_template,
                    email_body=arm.email_body_template,
                    sms=arm.sms_template,
                ),
            )
            for arm in campaign.arms
        ],
        randomization=Randomization(
            method=r.get("method", "blocked"),
            seed=r.get("seed", 0),
            block_multiples=list(r.get("block_multiples", [1, 2])),
            strata=[Stratum(**s) for s in r.get("strata", [])],
            cluster=r.get("cluster"),
            saturations=r.get("saturations"),
        ),
        follow_ups=[
            FollowUp(
                key=s.key,
                kind=s.kind,
                offset_hours=_number(s.offset_hours),
                channel=s.channel,
                condition=s.condition,
                expires_after_hours=_number(s.expires_after_hours),
                messages=StepMessages(
                    email_subject=s.email_subject_template,
                    email_body=s.email_body_template,
                    sms=s.sms_template,
                ),
            )
            for s in campaign.follow_up_steps
        ],
        analysis=AnalysisPlan(**a) if a else AnalysisPlan(),
        eligibility=Eligibility(list(campaign.eligibility)) if campaign.eligibility else None,
        mentoring=Mentoring(**campaign.mentoring) if campaign.mentoring else None,
    )


def _in_the_past(end_date: str | None, council: Council | None) -> bool:
    """Whether a campaign's end date (YYYY-MM-DD) is before today in the council's zone."""
    if not end_date:
        return False
    try:
        end = date.fromisoformat(str(end_date))
    except ValueError:
        return False
    zone = ZoneInfo(council.timezone) if council is not None and council.timezone else UTC
    return end < datetime.now(zone).date()


def _refuse_past_end_date(design: CampaignDesign, council: Council | None, before=None) -> None:
    """A new or changed end date must not be in the past: the scheduler would close the
    campaign the moment it launched. (An unchanged one may be: designs of old campaigns.)"""
    if design.end_date and design.end_date != before and _in_the_past(design.end_date, council):
        raise DesignError(
            [
                Problem(
                    "campaign.end_date",
                    f"{design.end_date} is in the past: give a later date, or none",
                )
            ]
        )


def update_design(
    campaign: Campaign, design: CampaignDesign, actor: str = "cli", actor_id: int | None = None
) -> Campaign:
    """Replace a draft's design (the slug stays); refused once the campaign is launched."""
    if campaign.is_frozen:
        raise CampaignLocked(
            f"campaign {campaign.slug!r} was launched on {campaign.launched_at:%Y-%m-%d}: its "
            "design is frozen (arms, templates, randomization, analysis plan)"
        )
    _refuse_past_end_date(design, campaign.council, before=campaign.end_date)
    before = design_of(campaign).to_dict()
    _apply_design(campaign, design)
    db.session.flush()
    audit.record(
        council_id=campaign.council_id,
        actor=actor,
        actor_id=actor_id,
        action="campaign.edit",
        object_type="campaign",
        object_id=campaign.id,
        before=before,
        after=design_of(campaign).to_dict(),
    )
    return campaign


def campaign_by_slug(council_id: int, slug: str) -> Campaign | None:
    return db.session.scalar(
        select(Campaign).where(Campaign.council_id == council_id, Campaign.slug == slug)
    )


def find_campaign(slug: str, council_slug: str | None = None) -> Campaign:
    """A campaign by slug for the CLI; ambiguous across councils unless one is named."""
    query = select(Campaign).where(Campaign.slug == slug)
    if council_slug:
        query = query.join(Council).where(Council.slug == council_slug)
    found = list(db.session.scalars(query))
    if not found:
        raise CampaignError(
            f"no campaign with slug {slug!r}"
            + (f" in council {council_slug!r}" if council_slug else "")
        )
    if len(found) > 1:
        raise CampaignError(f"several councils have a campaign {slug!r}: name one with --council")
    return found[0]


_TRANSITIONS = {
    "launch": ({"draft"}, "running"),
    "pause": ({"running"}, "paused"),
    "resume": ({"paused"}, "running"),
    "close": ({"draft", "running", "paused"}, "closed"),
}


def _transition(campaign: Campaign, step: str, actor: str, actor_id: int | None) -> Campaign:
    allowed, target = _TRANSITIONS[step]
    if campaign.status not in allowed:
        raise CampaignStateError(
            f"cannot {step} campaign {campaign.slug!r}: it is {campaign.status} "
            f"(allowed from: {', '.join(sorted(allowed))})"
        )
    before = {"status": campaign.status}
    campaign.status = target
    now = datetime.now(UTC)
    if step == "launch":
        campaign.launched_at = now
        campaign.design_hash = design_of(campaign).design_hash()
    elif step == "close":
        campaign.closed_at = now
    db.session.flush()
    audit.record(
        council_id=campaign.council_id,
        actor=actor,
        actor_id=actor_id,
        action=f"campaign.{step}",
        object_type="campaign",
        object_id=campaign.id,
        before=before,
        after={"status": target, "design_hash": campaign.design_hash},
    )
    return campaign


def launch_campaign(
    campaign: Campaign, actor: str = "cli", actor_id: int | None = None
) -> Campaign:
    """Freeze the design, record its hash and start the campaign.

    A `list` campaign is randomized in batch now and each participant's first message
    (the arm's nudge) is written to the outbox in the same transaction; a `survey-first`
    campaign sends its neutral invitation and randomizes each person after the baseline.
    """
    _check_launchable(campaign)
    _transition(campaign, "launch", actor, actor_id)
    assignment.on_launch(campaign)
    outbox.on_launch(campaign)
    return campaign


def _check_launchable(campaign: Campaign) -> None:
    problems = launch_problems(campaign)
    if problems:
        raise CampaignStateError(
            f"campaign {campaign.slug!r} cannot be launched: " + "; ".join(problems)
        )


def launch_problems(campaign: Campaign) -> list[str]:
    """What stops a launch: the launch checklist shows them, and launch refuses them."""
    problems = []
    if sum(1 for arm in campaign.arms if arm.is_control) != 1:
        problems.append("exactly one arm must be the control")
    if len(campaign.arms) < 2:
        problems.append("a trial needs at least two arms")
    for arm in campaign.arms:
        if not arm.page_template.strip():
            problems.append(f"arm {arm.key!r} has no web page text")
    if _in_the_past(campaign.end_date, campaign.council):
        problems.append(
            f"its end date {campaign.end_date} has passed: set a later one (or none) first"
        )
    problems += survey_link_problems(campaign)
    problems += eligibility_problems(campaign)
    return problems


def eligibility_problems(campaign: Campaign) -> list[str]:
    """A list campaign is screened and randomized at launch: residents imported without
    an answer its eligibility rules need (rules added after the import) could be neither."""
    if campaign.enrolment_mode != "list" or not campaign.eligibility:
        return []
    from nudge_app.services import screening

    unknown = screening.preview(campaign)["unknown"]
    if not unknown:
        return []
    return [
        f"{unknown:,} imported participant(s) lack an answer the eligibility rules need "
        f"({', '.join(screening.needed(campaign))}): import them again with those answers, "
        "or change the rules"
    ]


def survey_link_problems(campaign: Campaign) -> list[str]:
    """Survey steps whose messages lack {survey_link} (a draft saved before the design
    rules refused them): sent, their outcomes could never arrive."""
    out = []
    for step in campaign.follow_up_steps:
        if step.kind != "survey":
            continue
        for what, text in (("email body", step.email_body_template), ("SMS", step.sms_template)):
            if (text or "").strip() and "{survey_link}" not in text:
                out.append(f"survey step {step.key!r}: its {what} has no {{survey_link}}")
    return out


def delete_draft(campaign: Campaign, actor: str = "cli", actor_id: int | None = None) -> dict:
    """Delete a campaign that was never launched, with its participants and anything
    written for them; a launched campaign is closed instead, never deleted (its
    assignments and outcomes are the trial's record). Returns what was removed."""
    from sqlalchemy import delete, func

    from nudge_app.models import Assignment, OutboundMessage, Participant

    if campaign.status != "draft" or campaign.launched_at is not None:
        raise CampaignStateError(
            f"cannot delete campaign {campaign.slug!r}: it is {campaign.status}; only a "
            "draft that was never launched can be deleted (close it instead)"
        )
    cid, council_id = campaign.id, campaign.council_id
    removed = {
        "slug": campaign.slug,
        "name": campaign.name,
        "participants": db.session.scalar(
            select(func.count(Participant.id)).where(Participant.campaign_id == cid)
        ),
    }
    # The outbox has no foreign keys (see OutboundMessage): its rows go by hand. So do
    # assignments, whose arm is RESTRICT; the rest follows the campaign by ON DELETE CASCADE.
    removed["messages"] = db.session.execute(
        delete(OutboundMessage).where(OutboundMessage.campaign_id == cid)
    ).rowcount
    db.session.execute(delete(Assignment).where(Assignment.campaign_id == cid))
    db.session.execute(delete(Campaign).where(Campaign.id == cid))
    db.session.expunge(campaign)
    audit.record(
        council_id=council_id,
        actor=actor,
        actor_id=actor_id,
        action="campaign.delete",
        object_type="campaign",
        object_id=cid,
        before=removed,
    )
    db.session.flush()
    return removed


def pause_campaign(campaign: Campaign, actor: str = "cli", actor_id: int | None = None) -> Campaign:
    """Stop enrolment and sending; pending messages wait until the campaign resumes."""
    return _transition(campaign, "pause", actor, actor_id)


def resume_campaign(
    campaign: Campaign, actor: str = "cli", actor_id: int | None = None
) -> Campaign:
    return _transition(campaign, "resume", actor, actor_id)


def close_campaign(campaign: Campaign, actor: str = "cli", actor_id: int | None = None) -> Campaign:
    """End the campaign: no more enrolment or messages; the report stays readable."""
    return _transition(campaign, "close", actor, actor_id)


def set_data_protection(
    campaign: Campaign,
    retention_days: int,
    lawful_basis: str,
    actor: str = "cli",
    actor_id: int | None = None,
) -> Campaign:
    """Change the retention period and lawful basis, in any status (they are not part of
    the frozen design). On a launched campaign the consent page's wording changes with
    them, so its next consent version is made now."""
    from experiments.design import LAWFUL_BASES, MAX_RETENTION_DAYS

    if not isinstance(retention_days, int) or not 0 <= retention_days <= MAX_RETENTION_DAYS:
        raise CampaignError(
            f"retention_days: must be a whole number from 0 to {MAX_RETENTION_DAYS}"
        )
    if lawful_basis not in LAWFUL_BASES:
        raise CampaignError(f"lawful_basis: must be one of {', '.join(LAWFUL_BASES)}")
    before = {"retention_days": campaign.retention_days, "lawful_basis": campaign.lawful_basis}
    campaign.retention_days = retention_days
    campaign.lawful_basis = lawful_basis
    db.session.flush()
    after = {"retention_days": retention_days, "lawful_basis": lawful_basis}
    if campaign.is_frozen and before != after:
        from nudge_app.services.consent import current_version

        after["consent_version"] = current_version(campaign).number
    audit.record(
        council_id=campaign.council_id,
        actor=actor,
        actor_id=actor_id,
        action="campaign.data_protection",
        object_type="campaign",
        object_id=campaign.id,
        before=before,
        after=after,
    )
    return campaign
