"""Campaign design files: the TOML a council writes, checked field by field, as plain values.

A design holds everything frozen at launch: the collective activity, the arms and their
message texts, the enrolment mode, the randomization (strata and bands), the follow-up
steps and the pre-registered analysis plan. `parse_design` returns either a
`CampaignDesign` or the full list of problems, each with its field path
(`arms[2].weight: must be greater than 0`). `design_to_toml` writes the canonical form
back; parsing that text gives the same design (the round trip is lossless).

Hostile input gets the same treatment as a typo: numbers must be finite and in range,
arm weights must form an allocation the randomizer can run, and nesting deeper than
MAX_DEPTH is refused, each naming its field path, never an exception from deep inside.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
import string
import tomllib
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

import tomli_w

from experiments import baseline, eligibility
from experiments.bands import BandSpec, default_band_labels
from experiments.languages import LANGUAGES

PolicyDomain = Literal["community-safety", "environment", "health", "other"]
EnrolmentMode = Literal["list", "survey-first"]
RandomizationMethod = Literal["blocked", "simple", "complete"]
Channel = Literal["email", "sms"]
StepKind = Literal["reminder", "survey"]
StepCondition = Literal["always", "not-joined", "not-surveyed"]
Correction = Literal["holm", "bh", "none"]

POLICY_DOMAINS = ("community-safety", "environment", "health", "other")
ENROLMENT_MODES = ("list", "survey-first")
RANDOMIZATION_METHODS = ("blocked", "simple", "complete")
CHANNELS = ("email", "sms")
STEP_KINDS = ("reminder", "survey")
STEP_CONDITIONS = ("always", "not-joined", "not-surveyed")
CORRECTIONS = ("holm", "bh", "none")
# What an arm's message works through, one of DOMAIN.md's avenues: results from different
# campaigns and councils are pooled by this tag (the free-text `mechanism` says more).
MECHANISM_TAGS = ("control", "inform-consult", "self-efficacy", "peer", "age-tailored", "other")
# The kind of collective activity: what a de-identified results pack says instead of its name.
ACTIVITY_KINDS = (
    "neighbourhood-watch",
    "clean-up",
    "support-group",
    "residents-panel",
    "volunteering",
    "other",
)

# Verified attendance: came at least once in the follow-up window, how many sessions, and
# still coming after 8 weeks (nudge_app.services.attendance).
ATTENDANCE_OUTCOMES = ("attended", "sessions_attended", "attended_repeat")
# Baseline characteristics measured before randomization (experiments.baseline declares
# each, and whether it may form strata or moderate the analysis).
PRE_TREATMENT = baseline.Names(lambda: tuple(v.name for v in baseline.variables()))
# Measured after the message: outcomes only. Using one as a moderator biases the estimate.
# A baseline question asked again at follow-up is one of them (`self_efficacy_followup`).
# Verified attendance (the organiser's check-ins) comes after them.
OUTCOMES = baseline.Names(
    lambda: (
        "exposed",
        "joined",
        "participated",
        *baseline.follow_up_outcomes(),
        *ATTENDANCE_OUTCOMES,
    )
)
POST_TREATMENT = baseline.Names(lambda: (*OUTCOMES, "surveyed"))
# The outcomes a report analyses, by the name its `outcomes` entries carry: name ->
# (the analysis frame's column, the baseline value that is its natural Lin covariate).
# A follow-up answer is named after the baseline question it repeats.
REPORT_OUTCOMES: dict[str, tuple[str, str | None]] = {
    "joined": ("joined", None),
    "attended": ("attended", None),
    "sessions_attended": ("sessions_attended", None),
    "attended_repeat": ("attended_repeat", None),
    "individual_coproduction": ("individual_coproduction_followup", "individual_coproduction"),
    "collective_coproduction": ("collective_coproduction_followup", "collective_coproduction"),
    "participated": ("participated", None),
    "self_efficacy_followup": ("self_efficacy_followup", "self_efficacy"),
}
SECONDARY_OUTCOMES = tuple(REPORT_OUTCOMES)

# Placeholders a template may use; anything else is refused when the design is saved.
PLACEHOLDERS = (
    "first_name",
    "council",
    "campaign",
    "activity",
    "activity_where",
    "activity_when",
    "neighbourhood",
    "framing",
    "link",
    "survey_link",
    "opt_out_link",
)
ARM_MESSAGE_FIELDS = ("page", "email_subject", "email_body", "sms")
STEP_MESSAGE_FIELDS = ("email_subject", "email_body", "sms")
SLUG_RE = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,62}[a-z0-9])?$")
KEY_RE = re.compile(r"^[a-z0-9][a-z0-9_-]{0,39}$")
MAX_BAND_LABEL = 40
# An assignment keeps its stratum's name in 200 characters (nudge_app's models say so too).
MAX_STRATUM_LABEL = 200
# Tables and arrays inside each other: a real design goes 4 deep (arms[0].messages.page).
MAX_DEPTH = 8
MAX_PLANNED_SAMPLE = 10_000_000
MAX_RETENTION_DAYS = 3650
# UK GDPR Article 6 bases a council campaign may rest on, and how the page names them.
LAWFUL_BASES = {
    "consent": "Consent (Article 6(1)(a))",
    "public-task": "Public task (Article 6(1)(e))",
}
# Settings of the data-protection lifecycle: editable on a live campaign, so they are
# not part of the frozen design's hash.
DATA_PROTECTION_FIELDS = ("retention_days", "lawful_basis")


@dataclass(frozen=True)
class Problem:
    """One thing wrong with a design file, at a field path."""

    path: str
    message: str

    def __str__(self) -> str:
        return f"{self.path}: {self.message}" if self.path else self.message


class DesignError(ValueError):
    """A design file with problems; `problems` lists every one."""

    def __init__(self, problems: list[Problem]):
        self.problems = problems
        super().__init__("\n".join(str(p) for p in problems))


@dataclass
class Activity:
    name: str
    kind: str | None = None  # one of ACTIVITY_KINDS
    description: str = ""
    where: str = ""
    when: str = ""


@dataclass
class ArmMessages:
    page: str = ""
    email_subject: str = ""
    email_body: str = ""
    sms: str = ""


@dataclass
class Arm:
    key: str
    name: str
    control: bool = False
    weight: float = 1.0
    mechanism: str = ""
    mechanism_tag: str | None = None  # one of MECHANISM_TAGS
    framing: str = ""
    messages: ArmMessages = field(default_factory=ArmMessages)


@dataclass
class Stratum:
    """A moderator used for blocking: banded by `cuts` (numeric) or level by level."""

    moderator: str
    cuts: list[float] | None = None
    labels: list[str] | None = None


@dataclass
class Randomization:
    method: RandomizationMethod = "blocked"
    seed: int = 0
    block_multiples: list[int] = field(default_factory=lambda: [1, 2])
    strata: list[Stratum] = field(default_factory=list)
    cluster: str | None = None
    # A randomized saturation design (Baird et al. 2018): the share of each cluster's
    # members offered the treatment arm, one per cluster, e.g. [0, 0.4, 0.8]. None (the
    # default) is left out of the canonical form, so other designs keep their hash.
    saturations: list[float] | None = None


@dataclass
class StepMessages:
    email_subject: str = ""
    email_body: str = ""
    sms: str = ""


@dataclass
class FollowUp:
    key: str
    kind: StepKind
    offset_hours: float
    channel: Channel = "email"
    condition: StepCondition = "always"
    expires_after_hours: float = 72.0
    messages: StepMessages = field(default_factory=StepMessages)


@dataclass
class AnalysisPlan:
    primary_outcome: str = "joined"
    moderators: list[str] = field(default_factory=list)
    covariates: list[str] = field(default_factory=list)
    alpha: float = 0.05
    correction: Correction = "holm"
    power: float = 0.8
    baseline_rate: float = 0.1
    minimum_effect: float = 0.03
    # Re-randomizations for randomization-inference p-values in the final analysis
    # (`nudge report`). None (the default) is left out of the canonical form, so designs
    # written before this field keep their hash.
    randomization_inference: int | None = None
    # Saturation designs: the smallest spillover on untreated members worth detecting
    # (power by simulation); None is left out of the canonical form.
    minimum_spillover: float | None = None
    # The secondary outcomes the report analyses beside the primary, in order (names of
    # REPORT_OUTCOMES). None (absent or empty) is left out of the canonical form: the
    # report then analyses every outcome the data hold.
    secondary_outcomes: list[str] | None = None


@dataclass
class Eligibility:
    """Whom the campaign is for: rules on baseline answers (`experiments.eligibility`),
    all of which a resident must meet to be randomized; the rest are screened out."""

    require: list[str] = field(default_factory=list)

    def rules(self) -> list[eligibility.Rule]:
        return [eligibility.parse_rule(text) for text in self.require]


@dataclass
class Mentoring:
    """Peer mentoring: participants whose baseline answers meet every rule of `offer_to`
    (the eligibility grammar, e.g. `self_efficacy >= 4`) are offered the mentor role after
    they join; a mentor's invitation link enrols at most `invite_limit` residents and
    works for `link_days` days after the mentor agrees. `consent_text` is the mentor's
    own consent text (empty: the standard one). `introductions`, where the council
    chooses, is how many neighbours (residents of the mentor's neighbourhood on the
    campaign's list) the platform may introduce each mentor to by message on their
    behalf (None or 0: none; None is left out of the canonical form)."""

    offer_to: list[str] = field(default_factory=list)
    invite_limit: int = 10
    link_days: int = 60
    consent_text: str = ""
    introductions: int | None = None

    def rules(self) -> list[eligibility.Rule]:
        return [eligibility.parse_rule(text) for text in self.offer_to]


@dataclass
class CampaignDesign:
    name: str
    policy_domain: PolicyDomain
    enrolment_mode: EnrolmentMode
    activity: Activity
    arms: list[Arm]
    randomization: Randomization
    analysis: AnalysisPlan
    follow_ups: list[FollowUp] = field(default_factory=list)
    slug: str | None = None
    description: str = ""
    language: str = "en"
    planned_sample_size: int | None = None
    end_date: str | None = None
    # Days names and contact details are kept after the campaign closes (0: erased at the
    # first retention run after closing); the lawful basis (a key of LAWFUL_BASES).
    retention_days: int = 90
    lawful_basis: str = "consent"
    # None (no `[eligibility]` table, or no rules) is left out of the canonical form, so
    # designs written before eligibility existed keep their hash.
    eligibility: Eligibility | None = None
    # None (no `[mentoring]` table) is left out of the canonical form.
    mentoring: Mentoring | None = None

    @property
    def control(self) -> Arm:
        return next(arm for arm in self.arms if arm.control)

    def eligibility_rules(self) -> list[eligibility.Rule]:
        """The checked eligibility rules (empty: everyone who answers is eligible)."""
        return self.eligibility.rules() if self.eligibility else []

    def to_dict(self) -> dict[str, Any]:
        """The canonical plain-value form (what `design_to_toml` writes)."""
        return _drop_none(asdict(self))

    def design_hash(self) -> str:
        """SHA-256 of the canonical form: recorded at launch so any later change shows.
        The data-protection settings are left out: they may change after launch."""
        frozen = {k: v for k, v in self.to_dict().items() if k not in DATA_PROTECTION_FIELDS}
        text = json.dumps(frozen, sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(text.encode()).hexdigest()


def _drop_none(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _drop_none(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_drop_none(v) for v in value]
    return value


def template_placeholders(text: str) -> list[str]:
    """The `{names}` a template uses (raises ValueError for a malformed brace)."""
    names = []
    for _, name, spec, conv in string.Formatter().parse(text):
        if name is None:
            continue
        if name == "" or not name.isidentifier() or spec or conv:
            raise ValueError(
                f"malformed placeholder {{{name}}}: use plain names like {{first_name}}"
            )
        names.append(name)
    return names


class _Reader:
    """Reads typed fields out of nested TOML tables, collecting problems with their paths."""

    def __init__(self) -> None:
        self.problems: list[Problem] = []

    def problem(self, path: str, message: str) -> None:
        self.problems.append(Problem(path, message))

    def table(self, data: dict, key: str, path: str, required: bool = True) -> dict:
        value = data.get(key)
        if value is None:
            if required:
                self.problem(_join(path, key), "is required")
            return {}
        if not isinstance(value, dict):
            self.problem(_join(path, key), "must be a table")
            return {}
        return value

    def text(
        self,
        data: dict,
        key: str,
        path: str,
        required: bool = False,
        default: str = "",
        max_len: int = 10_000,
    ) -> str:
        value = data.get(key)
        where = _join(path, key)
        if value is None:
            if required:
                self.problem(where, "is required")
            return default
        if not isinstance(value, str):
            self.problem(where, "must be text")
            return default
        if required and not value.strip():
            self.problem(where, "must not be empty")
        if len(value) > max_len:
            self.problem(where, f"must be at most {max_len} characters")
        return value

    def choice(
        self, data: dict, key: str, path: str, choices: tuple[str, ...], default: str | None = None
    ) -> str:
        value = data.get(key, default)
        where = _join(path, key)
        if value is None:
            self.problem(where, f"is required (one of {', '.join(choices)})")
            return choices[0]
        if value not in choices:
            self.problem(where, f"unknown value {value!r}: must be one of {', '.join(choices)}")
            return choices[0]
        return value

    def optional_choice(
        self, data: dict, key: str, path: str, choices: tuple[str, ...]
    ) -> str | None:
        """One of `choices`, or None when the key is absent."""
        return None if data.get(key) is None else self.choice(data, key, path, choices)

    def number(
        self,
        data: dict,
        key: str,
        path: str,
        default: float | None = None,
        minimum: float | None = None,
        exclusive_min: bool = False,
        maximum: float | None = None,
        integer: bool = False,
    ) -> Any:
        value = data.get(key, default)
        where = _join(path, key)
        if value is None:
            self.problem(where, "is required")
            return 0
        fallback = default if default is not None else (minimum or 0)
        if isinstance(value, bool) or not isinstance(value, int | float):
            self.problem(where, "must be a number")
            return fallback
        if isinstance(value, float) and not math.isfinite(value):
            self.problem(where, "must be a finite number (not nan or inf)")
            return fallback
        if isinstance(value, int) and abs(value) > 2**63 - 1:
            self.problem(where, f"is out of range: must be at most {_num(maximum or 2**63 - 1)}")
            return fallback
        if integer and not (isinstance(value, int) or float(value).is_integer()):
            self.problem(where, "must be a whole number")
        if minimum is not None:
            if exclusive_min and value <= minimum:
                self.problem(where, f"must be greater than {_num(minimum)}")
            elif not exclusive_min and value < minimum:
                self.problem(where, f"must be at least {_num(minimum)}")
        if maximum is not None and value > maximum:
            self.problem(where, f"must be at most {_num(maximum)}")
        return int(value) if integer and isinstance(value, int | float) else value

    def boolean(self, data: dict, key: str, path: str, default: bool = False) -> bool:
        value = data.get(key, default)
        if not isinstance(value, bool):
            self.problem(_join(path, key), "must be true or false")
            return default
        return value

    def array(self, data: dict, key: str, path: str, required: bool = False) -> list:
        value = data.get(key)
        if value is None:
            if required:
                self.problem(_join(path, key), "is required")
            return []
        if not isinstance(value, list):
            self.problem(_join(path, key), "must be a list")
            return []
        return value

    def unknown_keys(self, data: dict, path: str, known: tuple[str, ...]) -> None:
        for key in data:
            if key not in known:
                self.problem(
                    _join(path, key), f"unknown field (expected one of {', '.join(known)})"
                )

    def template(self, text: str, where: str) -> None:
        try:
            names = template_placeholders(text)
        except ValueError as exc:
            self.problem(where, str(exc))
            return
        for name in names:
            if name not in PLACEHOLDERS:
                self.problem(
                    where,
                    f"unknown placeholder {{{name}}}: allowed are "
                    + ", ".join("{" + p + "}" for p in PLACEHOLDERS),
                )

    def stop_link(self, messages, path: str) -> None:
        """Every email and SMS carries the way to stop: the consent page promises it."""
        for f in ("email_body", "sms"):
            text = getattr(messages, f)
            if text.strip() and "{opt_out_link}" not in text:
                self.problem(
                    f"{path}.{f}",
                    "must include {opt_out_link}: every message tells people how to stop",
                )


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def _num(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else f"{x:g}"


def load_design(path: str) -> CampaignDesign:
    """Read and check a design file; raises DesignError listing every problem."""
    try:
        with open(path, "rb") as fh:
            raw = fh.read()
    except OSError as exc:
        raise DesignError([Problem("", f"cannot read {path}: {exc.strerror or exc}")]) from None
    return parse_design(raw)


def parse_design(source: str | bytes | dict) -> CampaignDesign:
    """Check a design given as TOML text (or an already parsed table)."""
    if isinstance(source, dict):
        data = source
    else:
        if isinstance(source, bytes):
            try:
                source = source.decode("utf-8")
            except UnicodeDecodeError:
                raise DesignError([Problem("", "the file is not UTF-8 text")]) from None
        if not source.strip():
            raise DesignError(
                [
                    Problem(
                        "",
                        "the file is empty: a design needs [campaign], "
                        "[activity], [[arms]] and [analysis]",
                    )
                ]
            )
        try:
            data = tomllib.loads(source)
        except tomllib.TOMLDecodeError as exc:
            raise DesignError([Problem("", f"not valid TOML: {exc}")]) from None
        except RecursionError:
            raise DesignError(
                [Problem("", f"nested too deeply: at most {MAX_DEPTH} levels of tables and arrays")]
            ) from None
    too_deep = _too_deep(data, "", 0)
    if too_deep is not None:
        raise DesignError(
            [
                Problem(
                    too_deep, f"nested too deeply: at most {MAX_DEPTH} levels of tables and arrays"
                )
            ]
        )
    r = _Reader()
    design = _read_design(r, data)
    if r.problems:
        raise DesignError(r.problems)
    return design


def _too_deep(value: Any, path: str, depth: int) -> str | None:
    """The path of the first value nested deeper than MAX_DEPTH, or None."""
    if depth > MAX_DEPTH:
        return path or "(top)"
    if isinstance(value, dict):
        items = ((_join(path, str(k)), v) for k, v in value.items())
    elif isinstance(value, list):
        items = ((f"{path}[{i}]", v) for i, v in enumerate(value))
    else:
        return None
    for where, item in items:
        found = _too_deep(item, where, depth + 1)
        if found is not None:
            return found
    return None


# The design file's sections, in the order officers read them and `design_to_toml` writes them.
TOP_KEYS = (
    "campaign",
    "activity",
    "eligibility",
    "arms",
    "randomization",
    "follow_ups",
    "analysis",
    "mentoring",
)


def _read_design(r: _Reader, data: dict) -> CampaignDesign:
    r.unknown_keys(data, "", TOP_KEYS)
    c = r.table(data, "campaign", "")
    r.unknown_keys(
        c,
        "campaign",
        (
            "name",
            "slug",
            "description",
            "policy_domain",
            "enrolment_mode",
            "language",
            "planned_sample_size",
            "end_date",
            *DATA_PROTECTION_FIELDS,
        ),
    )
    name = r.text(c, "name", "campaign", required=True, max_len=200)
    slug = c.get("slug")
    if slug is not None and (not isinstance(slug, str) or not SLUG_RE.match(slug)):
        r.problem("campaign.slug", "must be lowercase letters, digits and hyphens (at most 64)")
        slug = None
    description = r.text(c, "description", "campaign")
    policy_domain = r.choice(c, "policy_domain", "campaign", POLICY_DOMAINS)
    enrolment_mode = r.choice(c, "enrolment_mode", "campaign", ENROLMENT_MODES)
    language = r.choice(c, "language", "campaign", LANGUAGES, default="en")
    planned = None
    if "planned_sample_size" in c:
        planned = r.number(
            c,
            "planned_sample_size",
            "campaign",
            minimum=2,
            maximum=MAX_PLANNED_SAMPLE,
            integer=True,
        )
    retention_days = r.number(
        c,
        "retention_days",
        "campaign",
        default=90,
        minimum=0,
        maximum=MAX_RETENTION_DAYS,
        integer=True,
    )
    lawful_basis = r.choice(c, "lawful_basis", "campaign", tuple(LAWFUL_BASES), default="consent")
    end_date = None
    if "end_date" in c:
        end_date = c["end_date"]
        if hasattr(end_date, "isoformat"):
            end_date = end_date.isoformat()
        elif not isinstance(end_date, str) or not re.match(r"^\d{4}-\d{2}-\d{2}$", end_date):
            r.problem("campaign.end_date", "must be a date like 2027-03-31")
            end_date = None

    a = r.table(data, "activity", "")
    r.unknown_keys(a, "activity", ("name", "kind", "description", "where", "when"))
    activity = Activity(
        name=r.text(a, "name", "activity", required=True, max_len=200),
        kind=r.optional_choice(a, "kind", "activity", ACTIVITY_KINDS),
        description=r.text(a, "description", "activity"),
        where=r.text(a, "where", "activity", max_len=500),
        when=r.text(a, "when", "activity", max_len=500),
    )

    rules = _read_eligibility(r, data, enrolment_mode)
    arms = _read_arms(r, data)
    randomization = _read_randomization(r, data, len(arms))
    follow_ups = _read_follow_ups(r, data)
    analysis = _read_analysis(r, data)
    mentoring = _read_mentoring(r, data, enrolment_mode)
    return CampaignDesign(
        eligibility=rules,
        mentoring=mentoring,
        name=name,
        slug=slug,
        description=description,
        policy_domain=policy_domain,
        enrolment_mode=enrolment_mode,
        language=language,
        planned_sample_size=planned,
        end_date=end_date,
        retention_days=retention_days,
        lawful_basis=lawful_basis,
        activity=activity,
        arms=arms,
        randomization=randomization,
        follow_ups=follow_ups,
        analysis=analysis,
    )


def _read_mentoring(r: _Reader, data: dict, enrolment_mode: str) -> Mentoring | None:
    """`[mentoring]`: whom to offer the mentor role (rules on baseline answers, checked as
    eligibility's are), the invitations per mentor and the days a link works; no table:
    no mentoring."""
    if "mentoring" not in data:
        return None
    t = r.table(data, "mentoring", "", required=False)
    path = "mentoring"
    r.unknown_keys(
        t, path, ("offer_to", "invite_limit", "link_days", "consent_text", "introductions")
    )
    texts = r.array(t, "offer_to", path)
    rules, problems = eligibility.parse_rules(texts)
    for i, error in problems:
        r.problem(f"{path}.offer_to[{i}]", str(error))
    for i, rule in rules:
        if reason := _unrecorded(rule, enrolment_mode):
            r.problem(f"{path}.offer_to[{i}]", str(eligibility.RuleError(rule.text, reason)))
    if not texts:
        r.problem(f"{path}.offer_to", 'give at least one rule, e.g. "self_efficacy >= 4"')
    return Mentoring(
        offer_to=[rule.text for _, rule in rules],
        invite_limit=r.number(
            t, "invite_limit", path, default=10, minimum=1, maximum=1000, integer=True
        ),
        link_days=r.number(t, "link_days", path, default=60, minimum=1, maximum=730, integer=True),
        consent_text=r.text(t, "consent_text", path, max_len=5000),
        introductions=(
            r.number(t, "introductions", path, default=0, minimum=0, maximum=100, integer=True)
            if "introductions" in t
            else None
        ),
    )


def _read_eligibility(r: _Reader, data: dict, enrolment_mode: str) -> Eligibility | None:
    """`[eligibility] require = [...]`: each rule parsed by the grammar and type-checked
    against the baseline registry; a problem quotes the rule. No rules: None."""
    t = r.table(data, "eligibility", "", required=False)
    path = "eligibility"
    r.unknown_keys(t, path, ("require",))
    texts = r.array(t, "require", path)
    rules, problems = eligibility.parse_rules(texts)
    for i, error in problems:
        r.problem(f"{path}.require[{i}]", str(error))
    for i, rule in rules:
        if reason := _unrecorded(rule, enrolment_mode):
            r.problem(f"{path}.require[{i}]", str(eligibility.RuleError(rule.text, reason)))
    if not texts:
        return None
    return Eligibility([t.strip() if isinstance(t, str) else t for t in texts])


def _unrecorded(rule: eligibility.Rule, enrolment_mode: str) -> str | None:
    """Why a campaign of this enrolment mode can never know the variable a rule reads
    (the baseline registry's survey and import flags), or None if it can."""
    variable = baseline.get(rule.variable)
    if enrolment_mode == "survey-first" and not variable.survey:
        return (
            f"{rule.variable} is not asked on the baseline page, so a survey-first "
            "campaign cannot know it (only a list campaign's import carries it)"
        )
    if not variable.survey and not variable.imported:
        return f"nothing records {rule.variable}"
    return None


def _read_arms(r: _Reader, data: dict) -> list[Arm]:
    raw = r.array(data, "arms", "", required=True)
    arms: list[Arm] = []
    seen: dict[str, int] = {}
    for i, item in enumerate(raw):
        path = f"arms[{i}]"
        if not isinstance(item, dict):
            r.problem(path, "must be a table ([[arms]])")
            continue
        r.unknown_keys(
            item,
            path,
            (
                "key",
                "name",
                "control",
                "weight",
                "mechanism",
                "mechanism_tag",
                "framing",
                "messages",
            ),
        )
        key = r.text(item, "key", path, required=True, max_len=40)
        if key and not KEY_RE.match(key):
            r.problem(f"{path}.key", "must be lowercase letters, digits, '-' or '_' (at most 40)")
        if key in seen:
            r.problem(f"{path}.key", f"duplicate arm key {key!r} (also arms[{seen[key]}])")
        seen.setdefault(key, i)
        m = r.table(item, "messages", path)
        r.unknown_keys(m, f"{path}.messages", ARM_MESSAGE_FIELDS)
        messages = ArmMessages(**{f: r.text(m, f, f"{path}.messages") for f in ARM_MESSAGE_FIELDS})
        if m and not messages.page.strip():
            r.problem(f"{path}.messages.page", "is required: the web page participants see")
        for f in ARM_MESSAGE_FIELDS:
            r.template(getattr(messages, f), f"{path}.messages.{f}")
        r.stop_link(messages, f"{path}.messages")
        arm = Arm(
            key=key,
            name=r.text(item, "name", path, required=True, max_len=200),
            control=r.boolean(item, "control", path),
            weight=r.number(
                item, "weight", path, default=1, minimum=0, exclusive_min=True, maximum=1000
            ),
            mechanism=r.text(item, "mechanism", path),
            mechanism_tag=r.optional_choice(item, "mechanism_tag", path, MECHANISM_TAGS),
            framing=r.text(item, "framing", path, max_len=500),
            messages=messages,
        )
        if arm.control and arm.mechanism_tag not in (None, "control"):
            r.problem(f"{path}.mechanism_tag", "the control arm's tag is 'control'")
        if not arm.control and arm.mechanism_tag == "control":
            r.problem(f"{path}.mechanism_tag", "only the control arm is tagged 'control'")
        r.template(arm.framing, f"{path}.framing")
        arms.append(arm)
    if raw and len(arms) < 2:
        r.problem("arms", "a trial needs at least two arms (one control and one message)")
    _check_allocation(r, arms)
    controls = [i for i, arm in enumerate(arms) if arm.control]
    if arms and not controls:
        r.problem("arms", "no control arm: mark exactly one arm with control = true")
    elif len(controls) > 1:
        r.problem(
            "arms",
            "two or more control arms ("
            + ", ".join(f"arms[{i}]" for i in controls)
            + "): exactly one is allowed",
        )
    return arms


def _check_allocation(r: _Reader, arms: list[Arm]) -> None:
    """The weights must reduce to a whole-number ratio the randomizer can run: 0.999
    against 1 (a block of 1,999) or 1e-300 (zero at three decimals) cannot."""
    from experiments.randomization import RandomizationError, integer_ratio

    weights = [arm.weight for arm in arms]
    if len(weights) < 2 or any(
        isinstance(w, bool) or not isinstance(w, int | float) or not 0 < w <= 1000 for w in weights
    ):
        return  # each bad weight already has its own problem
    try:
        integer_ratio(weights)
    except RandomizationError as exc:
        # Name the arm whose weight needs the finest fraction: the one to simplify.
        worst = max(range(len(arms)), key=lambda i: _fraction_denominator(weights[i]))
        r.problem(
            f"arms[{worst}].weight",
            f"{_num(weights[worst])} cannot form an allocation with the other arms' weights: "
            f"{exc}. Weights are read to three decimals; use simple ones like 1, 2 or 0.5",
        )


def _fraction_denominator(weight: float) -> int:
    from fractions import Fraction

    fraction = Fraction(weight).limit_denominator(1000)
    return fraction.denominator if fraction > 0 else 10**9


def _read_randomization(r: _Reader, data: dict, n_arms: int) -> Randomization:
    t = r.table(data, "randomization", "", required=False)
    path = "randomization"
    r.unknown_keys(
        t, path, ("method", "seed", "block_multiples", "strata", "cluster", "saturations")
    )
    method = r.choice(t, "method", path, RANDOMIZATION_METHODS, default="blocked")
    seed = r.number(t, "seed", path, default=0, minimum=0, maximum=2**63 - 1, integer=True)
    multiples = r.array(t, "block_multiples", path) or [1, 2]
    for i, m in enumerate(multiples):
        if isinstance(m, bool) or not isinstance(m, int) or m < 1 or m > 20:
            r.problem(f"{path}.block_multiples[{i}]", "must be a whole number from 1 to 20")
    cluster = t.get("cluster")
    if cluster is not None and cluster not in ("household", "neighbourhood", "cluster"):
        r.problem(f"{path}.cluster", "unknown cluster: must be household, neighbourhood or cluster")
        cluster = None
    strata: list[Stratum] = []
    raw = t.get("strata")
    if raw is None:
        strata = default_strata()
    elif not isinstance(raw, list):
        r.problem(f"{path}.strata", "must be a list of tables ([[randomization.strata]])")
    else:
        seen = set()
        for i, item in enumerate(raw):
            spath = f"{path}.strata[{i}]"
            if not isinstance(item, dict):
                r.problem(spath, "must be a table")
                continue
            r.unknown_keys(item, spath, ("moderator", "cuts", "labels"))
            strata.append(_read_stratum(r, item, spath, seen))
    longest = longest_stratum_label(strata)
    if longest > MAX_STRATUM_LABEL:
        r.problem(
            f"{path}.strata",
            f"the longest stratum name these strata make is {longest} characters, over the "
            f"{MAX_STRATUM_LABEL} a stratum is kept in: use fewer strata or shorter band labels",
        )
    return Randomization(
        method=method,
        seed=seed,
        block_multiples=[int(m) for m in multiples if isinstance(m, int)],
        strata=strata,
        cluster=cluster,
        saturations=_read_saturations(r, t, path, cluster, n_arms),
    )


def _read_saturations(
    r: _Reader, t: dict, path: str, cluster: str | None, n_arms: int
) -> list[float] | None:
    """`saturations = [0, 0.4, 0.8]`: shares in [0, 1], at least two, 0 among them (the
    pure-control clusters), with a cluster and exactly two arms."""
    if "saturations" not in t:
        return None
    where = f"{path}.saturations"
    raw = t["saturations"]
    if not isinstance(raw, list):
        r.problem(where, "must be a list of shares, e.g. [0, 0.4, 0.8]")
        return None
    out: list[float] = []
    for i, v in enumerate(raw):
        if isinstance(v, bool) or not isinstance(v, int | float) or not math.isfinite(v):
            r.problem(f"{where}[{i}]", "must be a number between 0 and 1")
        elif not 0 <= v <= 1:
            r.problem(f"{where}[{i}]", f"{_num(v)} is outside [0, 1]: give a share (40% is 0.4)")
        elif round(float(v), 6) in out:
            r.problem(f"{where}[{i}]", f"{_num(v)} is listed twice")
        else:
            out.append(round(float(v), 6))
    if len(raw) < 2:
        r.problem(where, "give at least two saturations, e.g. [0, 0.4, 0.8]")
    elif 0 not in out and len(out) == len(raw):
        r.problem(where, "must include 0: spillover is measured against pure-control clusters")
    if cluster is None:
        r.problem(where, "a saturation design randomizes clusters: set randomization.cluster")
    if n_arms != 2:
        r.problem(
            where, f"a saturation design has two arms (control and one offered), not {n_arms}"
        )
    return out


def default_strata() -> list[Stratum]:
    """The strata of a design that names none: the core baseline variables' bands."""
    return [
        Stratum(
            v.bands.column,
            list(v.bands.cuts) if v.bands.cuts else None,
            list(v.bands.labels) if v.bands.labels else None,
        )
        for v in baseline.core_variables()
        if v.bands is not None
    ]


def longest_stratum_label(strata: list[Stratum]) -> int:
    """The length of the longest stratum name (`age=18-34|self_efficacy=low`) the strata
    can make, every level counted, missing ('NA') included: what an assignment keeps."""
    parts = []
    for s in strata:
        if s.cuts:
            levels = list(s.labels) if s.labels else default_band_labels(s.cuts)
        else:
            levels = [str(level) for level in _level_values(s.moderator)]
        widest = max([len("NA"), *(len(level) for level in levels)])
        parts.append(len(s.moderator) + 1 + widest)
    return sum(parts) + max(len(parts) - 1, 0)


def _level_values(name: str) -> list:
    """The values a moderator used level by level can take: its options, the labels of its
    declared bands, or (an integer) its widest bound."""
    variable = _variable(name)
    if variable is None:
        return []
    if variable.options:
        return [o.value for o in variable.options]
    if variable.bands is not None:
        return list(variable.bands.levels or [])
    return [v for v in (variable.minimum, variable.maximum) if v is not None]


def moderator_bands(design: CampaignDesign, name: str) -> BandSpec:
    """How a moderator is cut into subgroups: by the design's own strata cut points, else
    by the variable's declared bands, else level by level."""
    for s in design.randomization.strata:
        if s.moderator == name and s.cuts:
            return BandSpec(name, tuple(s.cuts), tuple(s.labels) if s.labels else None)
    variable = _variable(name)
    if variable is not None and variable.bands is not None:
        return variable.bands
    return BandSpec(name)


def _variable(name: str) -> baseline.BaselineVariable | None:
    return next((v for v in baseline.variables() if v.name == name), None)


def _read_stratum(r: _Reader, item: dict, path: str, seen: set) -> Stratum:
    moderator = item.get("moderator")
    allowed = baseline.stratum_names()
    if moderator is None:
        r.problem(f"{path}.moderator", f"is required (one of {', '.join(allowed)})")
        moderator = ""
    elif moderator in POST_TREATMENT:
        r.problem(
            f"{path}.moderator",
            f"{moderator!r} is measured after the message: strata must be baseline characteristics",
        )
    elif not isinstance(moderator, str) or moderator not in allowed:
        r.problem(
            f"{path}.moderator",
            f"unknown value {moderator!r}: must be one of {', '.join(allowed)}",
        )
        moderator = ""
    if moderator and moderator in seen:
        r.problem(f"{path}.moderator", f"{moderator!r} is used twice")
    seen.add(moderator)
    cuts = None
    if "cuts" in item:
        raw = r.array(item, "cuts", path)
        if not raw or any(
            isinstance(c, bool) or not isinstance(c, int | float) or not math.isfinite(c)
            for c in raw
        ):
            r.problem(f"{path}.cuts", "must be a non-empty list of finite numbers")
        elif any(abs(c) > 1e9 for c in raw):
            r.problem(f"{path}.cuts", "must be between -1e9 and 1e9")
        elif list(raw) != sorted(set(raw)):
            r.problem(f"{path}.cuts", "must be strictly increasing")
        else:
            cuts = [float(c) for c in raw]
    labels = None
    if "labels" in item:
        raw = r.array(item, "labels", path)
        if any(not isinstance(x, str) or not x or len(x) > MAX_BAND_LABEL for x in raw):
            r.problem(f"{path}.labels", f"must be non-empty texts of at most {MAX_BAND_LABEL}")
        elif cuts is None:
            r.problem(f"{path}.labels", "labels name the bands between cuts: give cuts too")
        elif len(raw) != len(cuts) + 1:
            r.problem(
                f"{path}.labels",
                f"{len(cuts)} cuts make {len(cuts) + 1} bands, "
                f"so give {len(cuts) + 1} labels (got {len(raw)})",
            )
        elif len(set(raw)) != len(raw):
            r.problem(f"{path}.labels", "labels must differ from each other")
        else:
            labels = list(raw)
    variable = _variable(moderator)
    if variable is not None and variable.bands is not None and "cuts" not in item:
        example = ", ".join(_num(c) for c in variable.bands.cuts or ())
        r.problem(
            f"{path}.cuts", f"{moderator} is numeric: give cut points, e.g. cuts = [{example}]"
        )
    return Stratum(moderator=moderator, cuts=cuts, labels=labels)


def _read_follow_ups(r: _Reader, data: dict) -> list[FollowUp]:
    raw = r.array(data, "follow_ups", "")
    steps: list[FollowUp] = []
    seen: dict[str, int] = {}
    for i, item in enumerate(raw):
        path = f"follow_ups[{i}]"
        if not isinstance(item, dict):
            r.problem(path, "must be a table ([[follow_ups]])")
            continue
        r.unknown_keys(
            item,
            path,
            (
                "key",
                "kind",
                "offset_hours",
                "channel",
                "condition",
                "expires_after_hours",
                "messages",
            ),
        )
        key = r.text(item, "key", path, required=True, max_len=40)
        if key and not KEY_RE.match(key):
            r.problem(f"{path}.key", "must be lowercase letters, digits, '-' or '_' (at most 40)")
        if key in seen:
            r.problem(
                f"{path}.key", f"duplicate follow-up key {key!r} (also follow_ups[{seen[key]}])"
            )
        seen.setdefault(key, i)
        kind = r.choice(item, "kind", path, STEP_KINDS)
        offset = r.number(item, "offset_hours", path, minimum=0, maximum=24 * 366)
        channel = r.choice(item, "channel", path, CHANNELS, default="email")
        condition = r.choice(item, "condition", path, STEP_CONDITIONS, default="always")
        expires = r.number(
            item, "expires_after_hours", path, default=72, minimum=1, maximum=24 * 60
        )
        m = r.table(item, "messages", path)
        r.unknown_keys(m, f"{path}.messages", STEP_MESSAGE_FIELDS)
        messages = StepMessages(
            **{f: r.text(m, f, f"{path}.messages") for f in STEP_MESSAGE_FIELDS}
        )
        for f in STEP_MESSAGE_FIELDS:
            r.template(getattr(messages, f), f"{path}.messages.{f}")
        r.stop_link(messages, f"{path}.messages")
        if channel == "email" and m and not (messages.email_subject and messages.email_body):
            r.problem(f"{path}.messages", "an email step needs email_subject and email_body")
        if channel == "sms" and m and not messages.sms:
            r.problem(f"{path}.messages.sms", "an SMS step needs its sms text")
        if kind == "survey":
            _check_survey_link(r, key, messages, path)
        steps.append(
            FollowUp(
                key=key,
                kind=kind,
                offset_hours=offset,
                channel=channel,
                condition=condition,
                expires_after_hours=expires,
                messages=messages,
            )
        )
    return steps


def _check_survey_link(r: _Reader, key: str, messages: StepMessages, path: str) -> None:
    """A survey step's messages carry the survey's link: without it no answer can arrive,
    and the outcome it was sent for is missing for everyone (`{link}` is the nudge page)."""
    for f in ("email_body", "sms"):
        text = getattr(messages, f)
        if text.strip() and "{survey_link}" not in text:
            r.problem(
                f"{path}.messages.{f}",
                f"survey step {key!r} must include {{survey_link}}: without the survey's "
                "link no answer can arrive",
            )


def _read_analysis(r: _Reader, data: dict) -> AnalysisPlan:
    t = r.table(data, "analysis", "")
    path = "analysis"
    r.unknown_keys(
        t,
        path,
        (
            "primary_outcome",
            "moderators",
            "covariates",
            "alpha",
            "correction",
            "power",
            "baseline_rate",
            "minimum_effect",
            "randomization_inference",
            "minimum_spillover",
            "secondary_outcomes",
        ),
    )
    outcome = r.choice(t, "primary_outcome", path, OUTCOMES)
    secondary = _read_secondary(r, t, path, outcome)
    draws = None
    if "randomization_inference" in t:
        draws = r.number(
            t, "randomization_inference", path, minimum=1, maximum=100_000, integer=True
        )
    moderators = _read_names(r, t, "moderators", path, "moderator")
    covariates = _read_names(r, t, "covariates", path, "covariate")
    return AnalysisPlan(
        primary_outcome=outcome,
        moderators=moderators,
        covariates=covariates,
        alpha=r.number(t, "alpha", path, default=0.05, minimum=0, exclusive_min=True, maximum=0.5),
        correction=r.choice(t, "correction", path, CORRECTIONS, default="holm"),
        power=r.number(t, "power", path, default=0.8, minimum=0.5, maximum=0.99),
        baseline_rate=r.number(
            t, "baseline_rate", path, default=0.1, minimum=0, exclusive_min=True, maximum=0.99
        ),
        minimum_effect=r.number(
            t, "minimum_effect", path, default=0.03, minimum=0, exclusive_min=True, maximum=1
        ),
        randomization_inference=draws,
        minimum_spillover=(
            r.number(t, "minimum_spillover", path, minimum=0, exclusive_min=True, maximum=1)
            if "minimum_spillover" in t
            else None
        ),
        secondary_outcomes=secondary or None,
    )


def outcome_column(name: str) -> str:
    """The analysis frame's column of an outcome named by the plan."""
    return REPORT_OUTCOMES[name][0] if name in REPORT_OUTCOMES else name


def _read_secondary(r: _Reader, t: dict, path: str, primary: str) -> list[str]:
    """The secondary outcomes: known report names, none twice, none the primary."""
    out: list[str] = []
    for i, name in enumerate(r.array(t, "secondary_outcomes", path)):
        where = f"{path}.secondary_outcomes[{i}]"
        if name not in SECONDARY_OUTCOMES:
            r.problem(
                where,
                f"unknown secondary outcome {name!r}: must be one of "
                + ", ".join(SECONDARY_OUTCOMES),
            )
        elif outcome_column(name) == outcome_column(primary):
            r.problem(where, f"{name!r} is the primary outcome: a secondary one must differ")
        elif name in out:
            r.problem(where, f"{name!r} is listed twice")
        else:
            out.append(name)
    return out


def _read_names(r: _Reader, t: dict, key: str, path: str, what: str) -> list[str]:
    names = r.array(t, key, path)
    out = []
    for i, name in enumerate(names):
        where = f"{path}.{key}[{i}]"
        if name in POST_TREATMENT:
            r.problem(
                where,
                f"{name!r} is measured after the message, so it cannot be a {what} "
                "(a post-treatment variable biases the estimate)",
            )
        elif name not in (allowed := baseline.moderator_names()):
            r.problem(where, f"unknown {what} {name!r}: must be one of {', '.join(allowed)}")
        elif name in out:
            r.problem(where, f"{name!r} is listed twice")
        else:
            out.append(name)
    return out


def design_to_toml(design: CampaignDesign) -> str:
    """The canonical TOML text of a design; `parse_design` of it gives the design back."""
    return tomli_w.dumps(_toml_ready(design.to_dict()), multiline_strings=True)


def _toml_ready(d: dict) -> dict:
    top = {
        "campaign": {
            k: d[k]
            for k in (
                "name",
                "slug",
                "description",
                "policy_domain",
                "enrolment_mode",
                "language",
                "planned_sample_size",
                "end_date",
                *DATA_PROTECTION_FIELDS,
            )
            if k in d
        },
        "activity": d["activity"],
        "eligibility": d.get("eligibility"),
        "arms": d["arms"],
        "randomization": d["randomization"],
        "follow_ups": d["follow_ups"],
        "analysis": d["analysis"],
        "mentoring": d.get("mentoring"),
    }
    if not top["mentoring"]:
        del top["mentoring"]
    if not top["follow_ups"]:
        del top["follow_ups"]
    if not top["eligibility"]:
        del top["eligibility"]
    # tomli_w writes sections in dict order: the officer-facing order of the file.
    return {k: top[k] for k in TOP_KEYS if k in top}
