"""What the console pages share: the blueprint they register on, who is acting, the
council's own campaign, the design's choice lists, design problems, and CSV cells safe to
open in a spreadsheet."""

from __future__ import annotations

from flask import Blueprint

from experiments import baseline
from experiments.design import (
    ACTIVITY_KINDS,
    CHANNELS,
    CORRECTIONS,
    ENROLMENT_MODES,
    LANGUAGES,
    MECHANISM_TAGS,
    OUTCOMES,
    PLACEHOLDERS,
    POLICY_DOMAINS,
    RANDOMIZATION_METHODS,
    STEP_CONDITIONS,
    STEP_KINDS,
    CampaignDesign,
    DesignError,
    Problem,
)
from nudge_app.auth import council_campaign_or_404, current_staff
from nudge_app.models import Campaign
from nudge_app.services import answers

bp = Blueprint(
    "console",
    __name__,
    template_folder="templates",
    static_folder="static",
    static_url_path="/console-static",
)

EDITORS = ("designer",)  # admins always pass roles_required


def actor() -> tuple[str, int]:
    """The signed-in staff member as the audit log names them, and their id."""
    staff = current_staff()
    return f"user:{staff.id}", staff.id


def sees_contacts() -> bool:
    """Whether the signed-in staff member may see names and contact details."""
    staff = current_staff()
    return staff is not None and staff.role in ("admin", "designer")


def own_campaign(slug: str) -> Campaign:
    """The campaign of the signed-in staff member's council, or 404."""
    return council_campaign_or_404(current_staff().council_id, slug)


def problems_of(exc: Exception) -> list[Problem]:
    """The problems to show on a design form: a DesignError's own, or its message."""
    if isinstance(exc, DesignError):
        return exc.problems
    return [Problem("", str(exc))]


def design_choices() -> dict:
    """The design's allowed values, for the choice lists of the design forms."""
    return {
        "policy_domains": POLICY_DOMAINS,
        "enrolment_modes": ENROLMENT_MODES,
        "languages": LANGUAGES,
        "methods": RANDOMIZATION_METHODS,
        "outcomes": OUTCOMES,
        "corrections": CORRECTIONS,
        "channels": CHANNELS,
        "step_kinds": STEP_KINDS,
        "step_conditions": STEP_CONDITIONS,
        "placeholders": PLACEHOLDERS,
        "mechanism_tags": MECHANISM_TAGS,
        "activity_kinds": ACTIVITY_KINDS,
    }


def baseline_choices(campaign: Campaign, design: CampaignDesign) -> dict:
    """The strata and moderators a campaign's editor offers: the baseline variables it can
    have data for, and any its design already names (so saving never drops one)."""
    offered = [v.name for v in answers.variables_with_data(campaign)]
    offered += [s.moderator for s in design.randomization.strata]
    offered += [*design.analysis.moderators, *design.analysis.covariates]
    offered = list(dict.fromkeys(offered))
    return {
        "strata_offered": [n for n in offered if n in baseline.stratum_names()],
        "moderators_offered": [n for n in offered if n in baseline.moderator_names()],
        "banded": [v.name for v in baseline.variables() if v.bands is not None],
    }


def csv_cell(value) -> str:
    """A CSV cell a spreadsheet shows as text, never runs as a formula."""
    text = "" if value is None else str(value)
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text
