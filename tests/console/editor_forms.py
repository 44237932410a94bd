"""The campaign editor's settings form as a test posts it: a valid age-blocked design
that each test changes where its point lies."""

from __future__ import annotations

SETTINGS = {
    "name": "Street clean-up",
    "policy_domain": "environment",
    "enrolment_mode": "survey-first",
    "language": "en",
    "planned_sample_size": "2000",
    "activity_name": "Clean-up",
    "method": "blocked",
    "seed": "7",
    "block_multiples": "1, 2",
    "stratum_0_moderator": "age",
    "stratum_0_cuts": "35, 55",
    "primary_outcome": "joined",
    "moderators": ["age"],
    "correction": "holm",
    "alpha": "0.05",
    "power": "0.8",
    "baseline_rate": "0.1",
    "minimum_effect": "0.03",
}


def settings_form(token: str, **changes) -> dict:
    """SETTINGS with the CSRF token and `changes` (a field changed to None is left out)."""
    data = {"csrf_token": token, **SETTINGS, **changes}
    return {k: v for k, v in data.items() if v is not None}
