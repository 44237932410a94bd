"""What a campaign's text messages cost: each SMS filled in as it will be sent, counted
as GOV.UK Notify charges it, per arm and per follow-up step, and the campaign's total.

Placeholders are filled with realistic values, never counted as written: links at their
real length (the configured BASE_URL and a token as long as a participant's), a first
name longer than most, the campaign's own council, activity and framing. A template
counted before filling ("{link}" is 6 characters, a link is over 60) understates the
cost by half.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from types import SimpleNamespace

from sqlalchemy import func, select

from nudge_app.console.common import bp
from nudge_app.extensions import db
from nudge_app.links import participant_links
from nudge_app.models import Assignment, Campaign, Participant
from nudge_app.services.outbox import NEUTRAL_INVITATION
from nudge_app.sms_fragments import SmsLength, sms_length
from nudge_app.templating import TemplateError, render

# Longer than nine in ten first names: a cost estimate should not flatter.
SAMPLE_FIRST_NAME = "Alexandra"
SAMPLE_NEIGHBOURHOOD = "Riverside"
# Any nonce gives a token of the participant's real length (a 256-bit HMAC, base64).
SAMPLE_PERSON = SimpleNamespace(access_nonce="message-cost-sample")


@dataclass(frozen=True)
class MessageCost:
    """One SMS a participant of an arm may get: what it is and its Notify length."""

    label: str
    text: str
    length: SmsLength | None  # None: the template does not render (shown as an error)
    error: str = ""


@dataclass
class ArmCost:
    arm_key: str
    arm_name: str
    arm_sms: MessageCost | None  # the arm's own SMS (sent as the nudge of list campaigns)
    messages: list[MessageCost] = field(default_factory=list)  # what a participant is sent
    participants: int = 0  # expected participants of the arm reachable by SMS

    @property
    def fragments_per_participant(self) -> int:
        return sum(m.length.fragments for m in self.messages if m.length is not None)

    @property
    def fragments(self) -> int:
        return self.participants * self.fragments_per_participant


@dataclass
class CampaignCost:
    arms: list[ArmCost]
    participants: int
    basis: str  # what the participant numbers are
    sample_first_name: str = SAMPLE_FIRST_NAME

    @property
    def fragments(self) -> int:
        return sum(a.fragments for a in self.arms)

    @property
    def has_sms(self) -> bool:
        return any(a.messages for a in self.arms)


def sample_context(campaign: Campaign, arm) -> dict:
    """Placeholder values of realistic length for counting the campaign's messages."""
    context = {
        "first_name": SAMPLE_FIRST_NAME,
        "council": campaign.council.name if campaign.council else "",
        "campaign": campaign.name,
        "activity": campaign.activity_name,
        "activity_where": campaign.activity_where,
        "activity_when": campaign.activity_when,
        "neighbourhood": SAMPLE_NEIGHBOURHOOD,
        "framing": arm.framing if arm is not None else "",
    }
    context.update(participant_links(SAMPLE_PERSON))
    return context


def _cost(label: str, template: str, context: dict) -> MessageCost:
    try:
        text = render(template, context)
    except TemplateError as exc:
        return MessageCost(label, "", None, str(exc))
    return MessageCost(label, text, sms_length(text))


def _arm_cost(campaign: Campaign, arm) -> ArmCost:
    """The arm's SMS and the SMS texts one participant of the arm may get, in order.

    A survey-first campaign invites everyone with the same neutral text and shows the
    arm's message on its page after the baseline: the arm's SMS is not sent there.
    """
    context = sample_context(campaign, arm)
    arm_sms = None
    if (arm.sms_template or "").strip():
        arm_sms = _cost("Nudge", arm.sms_template, context)
    out = []
    if campaign.enrolment_mode == "list":
        if arm_sms is not None:
            out.append(arm_sms)
    else:
        out.append(_cost("Invitation", NEUTRAL_INVITATION["sms"], context))
    for step in campaign.follow_up_steps:
        if not (step.sms_template or "").strip():
            continue
        when = "" if step.channel == "sms" else " (to those without email)"
        out.append(_cost(f"Follow-up {step.key}{when}", step.sms_template, context))
    return ArmCost(arm.key, arm.name, arm_sms, out)


def _reachable_by_arm(campaign: Campaign) -> dict[int, int]:
    """Participants with a mobile number and still in the campaign, by assigned arm."""
    rows = db.session.execute(
        select(Assignment.arm_id, func.count())
        .join(Participant, Participant.id == Assignment.participant_id)
        .where(
            Assignment.campaign_id == campaign.id,
            Participant.phone.is_not(None),
            Participant.opted_out_at.is_(None),
            Participant.erased_at.is_(None),
        )
        .group_by(Assignment.arm_id)
    ).all()
    return {arm_id: n for arm_id, n in rows}


def _split_by_weight(total: int, arms) -> list[int]:
    """`total` shared by the arms' weights, in whole people (largest remainders)."""
    weights = [max(a.weight, 0.0) for a in arms]
    whole = sum(weights) or 1.0
    exact = [total * w / whole for w in weights]
    shares = [int(x) for x in exact]
    order = sorted(range(len(arms)), key=lambda i: exact[i] - shares[i], reverse=True)
    for i in order[: total - sum(shares)]:
        shares[i] += 1
    return shares


def campaign_cost(campaign: Campaign) -> CampaignCost:
    """Each arm's SMS and their fragments, and the campaign's total for its participants.

    The participants are, in order of what is known: those assigned to each arm with a
    mobile number; those imported with one, shared by the arms' weights; the planned
    sample, shared the same way. Each is counted as if every text reached them by SMS,
    an upper bound when some also have an email address.
    """
    arms = list(campaign.arms)
    costs = [_arm_cost(campaign, a) for a in arms]
    assigned = _reachable_by_arm(campaign)
    if assigned:
        for cost, arm in zip(costs, arms, strict=True):
            cost.participants = assigned.get(arm.id, 0)
        total = sum(assigned.values())
        basis = "assigned with a mobile number"
    else:
        imported = db.session.scalar(
            select(func.count(Participant.id)).where(
                Participant.campaign_id == campaign.id,
                Participant.phone.is_not(None),
                Participant.erased_at.is_(None),
            )
        )
        if imported:
            total, basis = imported, "imported with a mobile number"
        else:
            total, basis = campaign.planned_sample_size or 0, "planned"
        for cost, n in zip(costs, _split_by_weight(total, arms), strict=True):
            cost.participants = n
    return CampaignCost(costs, total, basis)


@bp.app_template_global()
def sms_sample_values(campaign: Campaign, arm=None) -> dict:
    """The values the editor's live SMS count fills in (an arm's framing, else the longest)."""
    if arm is None:
        arm = max(campaign.arms, key=lambda a: len(a.framing or ""), default=None)
    return sample_context(campaign, arm)
