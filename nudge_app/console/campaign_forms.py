"""Flask-WTF forms of the campaign editor (settings, an arm, a follow-up step, a new
campaign): they keep what was typed, and each problem the design rules find is put
beside the field it concerns, with its label, in the GOV.UK pattern (`_form.html`).

The rules themselves live in `experiments.design` and speak in design-file paths
(`arms[1].messages.page`); `place_problems` maps each path to the form's field, and a
problem about another part of the design gets a sentence naming that part in words.
"""

from __future__ import annotations

import re

from flask_wtf import FlaskForm
from flask_wtf.file import FileField
from wtforms import (
    BooleanField,
    Field,
    RadioField,
    SelectField,
    SelectMultipleField,
    StringField,
    TextAreaField,
)
from wtforms.fields.choices import SelectChoice
from wtforms.validators import DataRequired

from experiments.design import (
    ACTIVITY_KINDS,
    CHANNELS,
    CORRECTIONS,
    ENROLMENT_MODES,
    LANGUAGES,
    MECHANISM_TAGS,
    OUTCOMES,
    POLICY_DOMAINS,
    RANDOMIZATION_METHODS,
    SECONDARY_OUTCOMES,
    STEP_CONDITIONS,
    STEP_KINDS,
    CampaignDesign,
    Problem,
)
from experiments.languages import LANGUAGE_NAMES

STRATUM_ROWS = 4
CLUSTERS = ("household", "neighbourhood", "cluster")


def options(choices) -> list[SelectChoice]:
    """Choices as WTForms wants them: plain values, or (value, label) pairs."""
    return [SelectChoice(*c) if isinstance(c, tuple) else SelectChoice(c) for c in choices]


def _select(label: str, choices=(), **kw) -> SelectField:
    # The design rules check the value (with a better message than "Not a valid choice").
    return SelectField(label, choices=options(choices), validate_choice=False, **kw)


def _checkboxes(label: str) -> SelectMultipleField:
    return SelectMultipleField(label, choices=[], validate_choice=False)


class SettingsForm(FlaskForm):
    """The campaign, its activity, randomization and analysis plan."""

    name = StringField("Name")
    description = TextAreaField("Description")
    policy_domain = _select("Policy domain", POLICY_DOMAINS)
    enrolment_mode = _select("Enrolment mode", ENROLMENT_MODES)
    # Each language named in itself, as the participant pages' switch names it.
    language = SelectField(
        "Language",
        choices=[
            SelectChoice(code, f"{LANGUAGE_NAMES[code]} ({code})", {"lang": code})
            for code in LANGUAGES
        ],
        validate_choice=False,
    )
    planned_sample_size = StringField("Planned sample size")
    end_date = StringField("End date", description="YYYY-MM-DD")
    activity_name = StringField("Activity name")
    activity_kind = _select(
        "Activity kind",
        [("", "(none)"), *((k, k) for k in ACTIVITY_KINDS)],
        description="what a shared results pack says instead of the name",
    )
    activity_description = TextAreaField("Activity description")
    activity_where = StringField("Where")
    activity_when = StringField("When")
    eligibility = TextAreaField(
        "Eligibility rules",
        description="one per line, all must be met to be randomized, e.g. "
        "individual_coproduction >= 1; compare with =, !=, <, <=, >, >= or in [a, b]; "
        "empty: everyone who answers is randomized. Planned sample size and power count "
        "eligible residents.",
    )
    method = _select("Randomization method", RANDOMIZATION_METHODS)
    seed = StringField("Seed")
    block_multiples = StringField("Block multiples", description="e.g. 1, 2")
    cluster = _select("Randomize clusters", [("", "no (individuals)"), *((k, k) for k in CLUSTERS)])
    saturations = StringField(
        "Saturations",
        description="saturation design: shares of each cluster offered the second arm, "
        "e.g. 0, 0.4, 0.8; empty for none",
    )
    primary_outcome = _select("Primary outcome", OUTCOMES)
    correction = _select("Correction", CORRECTIONS)
    alpha = StringField("Alpha")
    power = StringField("Power")
    baseline_rate = StringField("Expected control rate", description="a proportion, e.g. 0.1")
    minimum_effect = StringField(
        "Smallest effect worth finding", description="a proportion, e.g. 0.03 for 3 points"
    )
    minimum_spillover = StringField(
        "Smallest spillover worth finding", description="saturation designs"
    )
    moderators = _checkboxes("Moderators")
    covariates = _checkboxes("Covariates")
    secondary_outcomes = SelectMultipleField(
        "Secondary outcomes",
        choices=options(SECONDARY_OUTCOMES),
        validate_choice=False,
        description="reported beside the primary and marked secondary; none ticked: every "
        "outcome the data hold",
    )
    # Peer mentoring (the design file's `[mentoring]` table; off: no table).
    mentoring = RadioField(
        "Mentor role",
        choices=options(
            [
                ("no", "No mentor role"),
                ("yes", "Offer a mentor role to participants who meet the rules below"),
            ]
        ),
        default="no",
        validate_choice=False,
    )
    mentor_offer_to = TextAreaField(
        "Offer the mentor role to",
        description="rules on baseline answers, one per line, all must be met, e.g. "
        "self_efficacy >= 4; the same comparisons as eligibility",
    )
    mentor_invite_limit = StringField(
        "Invitations per mentor", description="residents one mentor's link can enrol, 1 to 1000"
    )
    mentor_link_days = StringField(
        "Days a link works", description="counted from the day the mentor agrees, 1 to 730"
    )
    mentor_consent_text = TextAreaField(
        "Mentor consent text",
        description="what a mentor agrees to on their page; empty: the standard text",
    )
    mentor_introductions = StringField(
        "Introductions per mentor",
        description="neighbours on the campaign's list the platform introduces each mentor "
        "to by message, 0 to 100; 0: none",
    )


MENTORING_DEFAULTS = {
    "mentoring": "no",
    "mentor_offer_to": "",
    "mentor_invite_limit": "10",
    "mentor_link_days": "60",
    "mentor_consent_text": "",
    "mentor_introductions": "0",
}


for _i in range(STRATUM_ROWS):
    setattr(SettingsForm, f"stratum_{_i}_moderator", _select(f"Stratum {_i + 1} moderator"))
    setattr(SettingsForm, f"stratum_{_i}_cuts", StringField(f"Stratum {_i + 1} cuts"))
    setattr(SettingsForm, f"stratum_{_i}_labels", StringField(f"Stratum {_i + 1} labels"))


class ArmForm(FlaskForm):
    key = StringField("Key", description="lowercase, e.g. efficacy")
    arm_name = StringField("Name")
    weight = StringField("Weight")
    control = RadioField("Control arm", choices=[], validate_choice=False)
    mechanism_tag = _select(
        "Mechanism tag",
        [("", "(none)"), *((t, t) for t in MECHANISM_TAGS)],
        description="what the message works through; results from different campaigns "
        "are pooled by it",
    )
    mechanism = TextAreaField("Mechanism", description="why this message might work")
    framing = StringField("Framing", description="one sentence, reused by reminders as {framing}")
    page = TextAreaField("Web page text")
    email_subject = StringField("Email subject")
    email_body = TextAreaField("Email body")
    sms = TextAreaField("SMS")


class StepForm(FlaskForm):
    key = StringField("Key")
    kind = _select("Kind", STEP_KINDS, description="a survey step must carry {survey_link}")
    offset_hours = StringField("Hours after enrolment")
    expires_after_hours = StringField("Expires after (hours)")
    channel = _select("Channel", CHANNELS)
    condition = _select("Send when", STEP_CONDITIONS)
    email_subject = StringField("Email subject")
    email_body = TextAreaField("Email body")
    sms = TextAreaField("SMS")


class NewCampaignForm(FlaskForm):
    source = RadioField(
        "Start from",
        choices=options(
            [
                ("form", "Start from the basics"),
                ("catalog", "Start from a catalog design"),
                ("file", "Upload a design file (.toml)"),
            ]
        ),
        default="form",
        validate_choice=False,
    )
    name = StringField("Campaign name")
    policy_domain = _select("Policy domain", POLICY_DOMAINS)
    enrolment_mode = _select(
        "Enrolment mode",
        ENROLMENT_MODES,
        description="list: you import people; survey-first: people answer a baseline first",
    )
    activity_name = StringField("Collective activity")
    activity_where = StringField("Where")
    activity_when = StringField("When")
    catalog = _select("Catalog design")
    design_file = FileField("Design file", description="the same format as nudge campaign validate")


class LaunchForm(FlaskForm):
    confirm = BooleanField(
        "I have checked this list: launch the campaign now. The design freezes and, for a "
        "list campaign, participants are randomized and their first messages go out.",
        validators=[DataRequired("Tick the box to confirm the launch: nothing was launched")],
    )


class CloseForm(FlaskForm):
    confirm = BooleanField(
        "Close the campaign now: no more enrolment and no more messages. This cannot be undone.",
        validators=[DataRequired("Tick the box to confirm: the campaign was not closed")],
    )


class DeleteForm(FlaskForm):
    confirm = BooleanField(
        "Delete this draft, its participants and their details now. This cannot be undone.",
        validators=[DataRequired("Tick the box to confirm: nothing was deleted")],
    )


# --- the form's values from a saved design ----------------------------------------------


def _num(x) -> str:
    if x is None:
        return ""
    return str(int(x)) if float(x).is_integer() else repr(float(x))


def settings_data(d: CampaignDesign) -> dict:
    r, a = d.randomization, d.analysis
    data = {
        "name": d.name,
        "description": d.description,
        "policy_domain": d.policy_domain,
        "enrolment_mode": d.enrolment_mode,
        "language": d.language,
        "planned_sample_size": _num(d.planned_sample_size),
        "end_date": d.end_date or "",
        "activity_name": d.activity.name,
        "activity_kind": d.activity.kind or "",
        "activity_description": d.activity.description,
        "activity_where": d.activity.where,
        "activity_when": d.activity.when,
        "eligibility": "\n".join(d.eligibility.require) if d.eligibility else "",
        "method": r.method,
        "seed": _num(r.seed),
        "block_multiples": ", ".join(_num(m) for m in r.block_multiples),
        "cluster": r.cluster or "",
        "saturations": ", ".join(_num(x) for x in (r.saturations or [])),
        "primary_outcome": a.primary_outcome,
        "correction": a.correction,
        "alpha": _num(a.alpha),
        "power": _num(a.power),
        "baseline_rate": _num(a.baseline_rate),
        "minimum_effect": _num(a.minimum_effect),
        "minimum_spillover": _num(a.minimum_spillover),
        "moderators": list(a.moderators),
        "covariates": list(a.covariates),
        "secondary_outcomes": list(a.secondary_outcomes or []),
        **mentoring_data(d.mentoring),
    }
    for i in range(STRATUM_ROWS):
        s = r.strata[i] if i < len(r.strata) else None
        data[f"stratum_{i}_moderator"] = s.moderator if s else ""
        data[f"stratum_{i}_cuts"] = ", ".join(_num(x) for x in (s.cuts or [])) if s else ""
        data[f"stratum_{i}_labels"] = ", ".join(s.labels or []) if s else ""
    return data


def mentoring_data(m) -> dict:
    """The peer-mentoring fields from a design's `Mentoring` (None: off, with the design
    file's defaults ready for switching it on)."""
    if m is None:
        return dict(MENTORING_DEFAULTS)
    return {
        "mentoring": "yes",
        "mentor_offer_to": "\n".join(m.offer_to),
        "mentor_invite_limit": _num(m.invite_limit),
        "mentor_link_days": _num(m.link_days),
        "mentor_consent_text": m.consent_text,
        "mentor_introductions": _num(m.introductions or 0),
    }


def arm_data(arm) -> dict:
    if arm is None:
        return {"weight": "1", "control": "no"}
    return {
        "key": arm.key,
        "arm_name": arm.name,
        "weight": _num(arm.weight),
        "control": "yes" if arm.control else "no",
        "mechanism_tag": arm.mechanism_tag or "",
        "mechanism": arm.mechanism,
        "framing": arm.framing,
        "page": arm.messages.page,
        "email_subject": arm.messages.email_subject,
        "email_body": arm.messages.email_body,
        "sms": arm.messages.sms,
    }


def control_choices(design: CampaignDesign, arm) -> list[SelectChoice]:
    """The two answers to "Control arm", saying what each does to the current control."""
    current = next((a for a in design.arms if a.control), None)
    if current is None or (arm is not None and current.key == arm.key):
        return options([("yes", "Yes: this arm is the control"), ("no", "No: a message arm")])
    return options(
        [
            (
                "yes",
                f"Yes: make this arm the control instead of {current.name!r} ({current.key}), "
                "which becomes a message arm",
            ),
            ("no", f"No: a message arm ({current.name!r} stays the control)"),
        ]
    )


def step_data(step) -> dict:
    if step is None:
        return {"offset_hours": "72", "expires_after_hours": "72", "channel": "email"}
    return {
        "key": step.key,
        "kind": step.kind,
        "offset_hours": _num(step.offset_hours),
        "expires_after_hours": _num(step.expires_after_hours),
        "channel": step.channel,
        "condition": step.condition,
        "email_subject": step.messages.email_subject,
        "email_body": step.messages.email_body,
        "sms": step.messages.sms,
    }


# --- design problems beside their fields ------------------------------------------------

SETTINGS_PATHS = {
    "campaign.name": "name",
    "campaign.description": "description",
    "campaign.policy_domain": "policy_domain",
    "campaign.enrolment_mode": "enrolment_mode",
    "campaign.language": "language",
    "campaign.planned_sample_size": "planned_sample_size",
    "campaign.end_date": "end_date",
    "activity": "activity_name",
    "activity.name": "activity_name",
    "activity.kind": "activity_kind",
    "eligibility": "eligibility",
    "eligibility.require": "eligibility",
    "activity.description": "activity_description",
    "activity.where": "activity_where",
    "activity.when": "activity_when",
    "randomization.method": "method",
    "randomization.seed": "seed",
    "randomization.block_multiples": "block_multiples",
    "randomization.cluster": "cluster",
    "randomization.saturations": "saturations",
    "randomization.strata": "stratum_0_moderator",
    "analysis.primary_outcome": "primary_outcome",
    "analysis.correction": "correction",
    "analysis.alpha": "alpha",
    "analysis.power": "power",
    "analysis.baseline_rate": "baseline_rate",
    "analysis.minimum_effect": "minimum_effect",
    "analysis.minimum_spillover": "minimum_spillover",
    "analysis.moderators": "moderators",
    "analysis.covariates": "covariates",
    "analysis.secondary_outcomes": "secondary_outcomes",
    "mentoring": "mentoring",
    "mentoring.offer_to": "mentor_offer_to",
    "mentoring.invite_limit": "mentor_invite_limit",
    "mentoring.link_days": "mentor_link_days",
    "mentoring.consent_text": "mentor_consent_text",
    "mentoring.introductions": "mentor_introductions",
}
_ARM_FIELDS = {
    "key": "key",
    "name": "arm_name",
    "weight": "weight",
    "control": "control",
    "mechanism_tag": "mechanism_tag",
    "mechanism": "mechanism",
    "framing": "framing",
    "messages": "page",
    "messages.page": "page",
    "messages.email_subject": "email_subject",
    "messages.email_body": "email_body",
    "messages.sms": "sms",
}
_STEP_FIELDS = {
    "key": "key",
    "kind": "kind",
    "offset_hours": "offset_hours",
    "expires_after_hours": "expires_after_hours",
    "channel": "channel",
    "condition": "condition",
    "messages": "email_body",
    "messages.email_subject": "email_subject",
    "messages.email_body": "email_body",
    "messages.sms": "sms",
}
NEW_CAMPAIGN_PATHS = {
    "campaign.name": "name",
    "campaign.policy_domain": "policy_domain",
    "campaign.enrolment_mode": "enrolment_mode",
    "activity": "activity_name",
    "activity.name": "activity_name",
    "activity.where": "activity_where",
    "activity.when": "activity_when",
    "catalog": "catalog",
    "design_file": "design_file",
}


def settings_paths(data: dict) -> dict[str, str]:
    """SETTINGS_PATHS plus each stratum of the design at the form row it was typed in
    (empty rows are skipped, so strata[1] may be row 3)."""
    paths = dict(SETTINGS_PATHS)
    rows = [i for i in range(STRATUM_ROWS) if (data.get(f"stratum_{i}_moderator") or "").strip()]
    for k, row in enumerate(rows):
        for part in ("moderator", "cuts", "labels"):
            paths[f"randomization.strata[{k}].{part}"] = f"stratum_{row}_{part}"
        paths[f"randomization.strata[{k}]"] = f"stratum_{row}_moderator"
    return paths


def part_paths(table: str, index: int) -> dict[str, str]:
    """An arm's or a step's paths (`arms[2].messages.sms`) to the fields of its form."""
    fields = _ARM_FIELDS if table == "arms" else _STEP_FIELDS
    paths = {f"{table}[{index}].{k}": v for k, v in fields.items()}
    if table == "arms":
        paths["arms"] = "control"  # no control arm, or two
    return paths


_INDEX = re.compile(r"\[\d+\]$")


def _field_name(path: str, paths: dict[str, str]) -> str | None:
    """The field of the longest mapped prefix of `path` (`analysis.moderators[1]` is the
    moderators field; `arms[1].messages.page` the page field)."""
    while path:
        if path in paths:
            return paths[path]
        trimmed = _INDEX.sub("", path)
        path = trimmed if trimmed != path else path.rpartition(".")[0]
    return None


_WORDS = {
    "page": "web page text",
    "email_subject": "email subject",
    "email_body": "email body",
    "sms": "SMS",
    "mechanism_tag": "mechanism tag",
    "offset_hours": "hours after enrolment",
    "expires_after_hours": "expiry",
    "planned_sample_size": "planned sample size",
    "policy_domain": "policy domain",
    "enrolment_mode": "enrolment mode",
    "block_multiples": "block multiples",
    "primary_outcome": "primary outcome",
    "secondary_outcomes": "secondary outcomes",
    "baseline_rate": "expected control rate",
    "minimum_effect": "smallest effect worth finding",
    "retention_days": "retention period",
    "lawful_basis": "lawful basis",
}
_PART = re.compile(r"^(arms|follow_ups)\[(\d+)\](?:\.(.*))?$")


def describe(path: str, tables: dict | None = None) -> str:
    """A design path in an officer's words: `arms[1].messages.page` is "Arm 'message':
    web page text", naming the arm by its key when the design has it."""
    match = _PART.match(path)
    if match:
        table, index, rest = match.group(1), int(match.group(2)), match.group(3) or ""
        noun = "Arm" if table == "arms" else "Follow-up step"
        items = (tables or {}).get(table) or []
        key = (
            items[index].get("key")
            if index < len(items) and isinstance(items[index], dict)
            else None
        )
        who = f"{noun} {key!r}" if key else f"{noun} {index + 1}"
        leaf = rest.rpartition(".")[2]
        return f"{who}: {_WORDS.get(leaf, leaf.replace('_', ' '))}" if leaf else who
    head, _, leaf = path.partition(".")
    leaf = _INDEX.sub("", leaf.rpartition(".")[2] or leaf)
    words = _WORDS.get(leaf, leaf.replace("_", " "))
    head = head.replace("_", " ").capitalize()
    return f"{head}: {words}" if words else head


_DOTTED_PATH = re.compile(r"\b[a-z_]+(?:\[\d+\])?\.[a-z_]+(?:\[\d+\])?\b")


def _labels_for_paths(message: str, form: FlaskForm, paths: dict[str, str]) -> str:
    """A rule's message with each design path it names (`set randomization.cluster`)
    given as the label of the form's field instead (`set "Randomize clusters"`)."""

    def label(match: re.Match) -> str:
        name = _field_name(match.group(0), paths)
        field = getattr(form, name, None) if name else None
        return f'"{field.label.text}"' if field is not None else match.group(0)

    return _DOTTED_PATH.sub(label, message)


def place_problems(
    form: FlaskForm, problems: list[Problem], paths: dict[str, str], tables: dict | None = None
) -> None:
    """Each problem beside its field; the rest in `form.unplaced`, named in words."""
    form.unplaced = []
    for p in problems:
        name = _field_name(p.path, paths)
        field: Field | None = getattr(form, name, None) if name else None
        if field is not None:
            message = _labels_for_paths(p.message, form, paths)
            if message not in field.errors:
                field.errors = [*field.errors, message]
        else:
            where = describe(p.path, tables) if p.path else ""
            code = f" ({p.path})" if p.path and where != p.path else ""
            form.unplaced.append(f"{where}{code}: {p.message}" if where else p.message)


def has_problems(form: FlaskForm) -> bool:
    return bool(form.errors or getattr(form, "unplaced", None))
