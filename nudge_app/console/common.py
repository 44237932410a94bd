"""What the console pages share: who is acting, the council's own campaign, the design's
choice lists, design problems, and CSV cells safe to open in a spreadsheet."""

from __future__ import annotations

from experiments.design import (
    CHANNELS,
    CORRECTIONS,
    ENROLMENT_MODES,
    LANGUAGES,
    OUTCOMES,
    PLACEHOLDERS,
    POLICY_DOMAINS,
    PRE_TREATMENT,
    RANDOMIZATION_METHODS,
    STEP_CONDITIONS,
    STEP_KINDS,
    DesignError,
    Problem,
)
from nudge_app.auth import council_campaign_or_404, current_staff
from nudge_app.models import Campaign

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
        "pre_treatment": PRE_TREATMENT,
        "corrections": CORRECTIONS,
        "channels": CHANNELS,
        "step_kinds": STEP_KINDS,
        "step_conditions": STEP_CONDITIONS,
        "placeholders": PLACEHOLDERS,
    }


def csv_cell(value) -> str:
    """A CSV cell a spreadsheet shows as text, never runs as a formula."""
    text = "" if value is None else str(value)
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text
