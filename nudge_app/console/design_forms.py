"""Form fields of the campaign editor turned into design tables, checked by parse_design.

Every edit starts from the campaign's current design in the TOML layout, changes the part
the form covers and goes through `experiments.design.parse_design`, so the console, the
design file and `nudge campaign validate` apply the same rules with the same field paths.
The form's own problems (a number that is not one) and the design rules' are reported
together, so one round shows every problem.
"""

from __future__ import annotations

import math
import secrets
import tomllib
from pathlib import Path

from experiments.design import (
    CampaignDesign,
    DesignError,
    Problem,
    design_to_toml,
    parse_design,
)

# Form numbers beyond this are typing accidents or attacks, never a real setting.
MAX_FORM_NUMBER = 1e15
CATALOG = Path(__file__).resolve().parents[2] / "experiments" / "catalog"


def design_tables(design: CampaignDesign) -> dict:
    """The design in the TOML file's layout (campaign, activity, arms, ...)."""
    return tomllib.loads(design_to_toml(design))


def toml_tables(raw: bytes) -> dict | None:
    """A design file's tables as far as TOML reads them (None if it does not)."""
    try:
        return tomllib.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, tomllib.TOMLDecodeError):
        return None


def check(tables: dict, problems: list[Problem]) -> CampaignDesign:
    """The edited design, or a DesignError with the form's problems and the rules' (a path
    the form already flagged is not flagged again by the rules)."""
    try:
        design = parse_design(tables)
    except DesignError as exc:
        flagged = {p.path for p in problems}
        raise DesignError(
            [*problems, *(p for p in exc.problems if p.path not in flagged)]
        ) from None
    if problems:
        raise DesignError(problems)
    return design


def _text(form, name: str) -> str:
    return (form.get(name) or "").replace("\r\n", "\n")


def _finite(text: str) -> float:
    """A number typed in a form: refuses nan, inf and anything past 1e15 (ValueError)."""
    value = float(text)
    if not math.isfinite(value) or abs(value) > MAX_FORM_NUMBER:
        raise ValueError(text)
    return value


def _number(form, name: str, problems: list[Problem], path: str, integer: bool = False):
    raw = (form.get(name) or "").strip()
    if not raw:
        return None
    try:
        value = _finite(raw)
    except ValueError:
        problems.append(Problem(path, "must be a finite number (digits, like 12 or 0.5)"))
        return None
    if integer:
        if not value.is_integer():
            problems.append(Problem(path, "must be a whole number"))
            return None
        return int(value)
    return int(value) if value.is_integer() else value


def _numbers(raw: str, path: str, problems: list[Problem]) -> list[float] | None:
    raw = (raw or "").strip()
    if not raw:
        return None
    out = []
    for part in raw.split(","):
        try:
            value = _finite(part.strip())
        except ValueError:
            problems.append(Problem(path, f"{part.strip()[:20]!r} is not a finite number"))
            return None
        out.append(int(value) if value.is_integer() else value)
    return out


def apply_settings(tables: dict, form, problems: list[Problem]) -> dict:
    """Campaign, activity, randomization and analysis fields from the settings form (a
    mapping of field names to values); a field that cannot be read adds to `problems`."""
    c = tables.setdefault("campaign", {})
    c["name"] = _text(form, "name").strip()
    c["description"] = _text(form, "description")
    c["policy_domain"] = form.get("policy_domain") or ""
    c["enrolment_mode"] = form.get("enrolment_mode") or ""
    c["language"] = form.get("language") or "en"
    planned = _number(form, "planned_sample_size", problems, "campaign.planned_sample_size", True)
    if planned is None:
        c.pop("planned_sample_size", None)
    else:
        c["planned_sample_size"] = planned
    end = (form.get("end_date") or "").strip()
    if end:
        c["end_date"] = end
    else:
        c.pop("end_date", None)
    tables["activity"] = {
        "name": _text(form, "activity_name").strip(),
        "description": _text(form, "activity_description"),
        "where": _text(form, "activity_where"),
        "when": _text(form, "activity_when"),
    }
    if form.get("activity_kind"):
        tables["activity"]["kind"] = form.get("activity_kind")
    # Eligibility rules, one per line (checked by the design rules' grammar).
    rules = [line.strip() for line in _text(form, "eligibility").split("\n") if line.strip()]
    if rules:
        tables["eligibility"] = {"require": rules}
    else:
        tables.pop("eligibility", None)
    r = tables.setdefault("randomization", {})
    r["method"] = form.get("method") or "blocked"
    seed = _number(form, "seed", problems, "randomization.seed", True)
    r["seed"] = seed if seed is not None else 0
    multiples = _numbers(
        (form.get("block_multiples") or ""), "randomization.block_multiples", problems
    )
    r["block_multiples"] = [int(m) for m in multiples] if multiples else [1, 2]
    cluster = form.get("cluster") or ""
    if cluster:
        r["cluster"] = cluster
    else:
        r.pop("cluster", None)
    saturations = _numbers(form.get("saturations") or "", "randomization.saturations", problems)
    if saturations:
        r["saturations"] = saturations
    else:
        r.pop("saturations", None)
    strata = []
    for i in range(4):
        moderator = (form.get(f"stratum_{i}_moderator") or "").strip()
        if not moderator:
            continue
        stratum: dict = {"moderator": moderator}
        path = f"randomization.strata[{len(strata)}]"
        flagged = len(problems)
        cuts = _numbers((form.get(f"stratum_{i}_cuts") or ""), f"{path}.cuts", problems)
        if cuts is not None:
            stratum["cuts"] = cuts
        labels = [x.strip() for x in (form.get(f"stratum_{i}_labels") or "").split(",")]
        labels = [x for x in labels if x]
        if labels and len(problems) == flagged:  # labels of unreadable cuts wait for them
            stratum["labels"] = labels
        strata.append(stratum)
    r["strata"] = strata
    a = tables.setdefault("analysis", {})
    a["primary_outcome"] = form.get("primary_outcome") or ""
    a["moderators"] = list(form.get("moderators") or [])
    a["covariates"] = list(form.get("covariates") or [])
    secondary = list(form.get("secondary_outcomes") or [])
    if secondary:
        a["secondary_outcomes"] = secondary
    else:  # none ticked: every outcome the data hold
        a.pop("secondary_outcomes", None)
    a["correction"] = form.get("correction") or "holm"
    for name in ("alpha", "power", "baseline_rate", "minimum_effect", "minimum_spillover"):
        value = _number(form, name, problems, f"analysis.{name}")
        if value is not None:
            a[name] = value
        else:
            a.pop(name, None)
    apply_mentoring(tables, form, problems)
    return tables


def apply_mentoring(tables: dict, form, problems: list[Problem]) -> None:
    """The `[mentoring]` table from the peer-mentoring fields: "yes" writes it (the rules
    one per line, checked by the design rules' grammar and the baseline registry), any
    other answer removes it. An empty number field takes the design file's default.
    Introductions of 0 (none) are left out, unless the saved design wrote 0: a design
    saved unchanged keeps its hash."""
    before = tables.pop("mentoring", None)
    if form.get("mentoring") != "yes":
        return
    m: dict = {
        "offer_to": [
            line.strip() for line in _text(form, "mentor_offer_to").split("\n") if line.strip()
        ],
    }
    for field, key in (("mentor_invite_limit", "invite_limit"), ("mentor_link_days", "link_days")):
        value = _number(form, field, problems, f"mentoring.{key}", integer=True)
        if value is not None:
            m[key] = value
    m["consent_text"] = _text(form, "mentor_consent_text")
    introductions = _number(
        form, "mentor_introductions", problems, "mentoring.introductions", integer=True
    )
    if introductions or (introductions == 0 and (before or {}).get("introductions") == 0):
        m["introductions"] = introductions
    tables["mentoring"] = m


def eligibility_help(enrolment_mode: str | None = None) -> list[str]:
    """What each baseline variable a rule may compare takes, for the editor's hint: for
    a survey-first campaign only those its baseline page asks (the design rules refuse
    the others)."""
    from experiments import baseline

    out = []
    for v in baseline.variables():
        if enrolment_mode == "survey-first" and not v.survey:
            continue
        if not v.survey and not v.imported:
            continue
        if v.value_type == "category":
            values = ", ".join(v.categories) if v.categories else "any text"
            out.append(f"{v.name} (=, != or in [...]: {values})")
        else:
            lo, hi = v.value_range or (0, 0)
            what = "how many ticked" if v.kind == "choices" else "a number"
            out.append(f"{v.name} ({what}, {lo:g} to {hi:g})")
    return out


def apply_arm(tables: dict, index: int | None, form, problems: list[Problem]) -> dict:
    """One arm's fields (index None: a new arm at the end).

    "control" is "yes" or "no". Yes on a message arm moves the control flag here: the
    form's answer says so in words, so the move is never silent. No on the only control
    arm is refused (exactly one arm is the control; it is chosen on the arm that takes it).
    """
    arms = tables.setdefault("arms", [])
    path = f"arms[{len(arms) if index is None else index}]"
    weight = _number(form, "weight", problems, f"{path}.weight")
    arm = {
        "key": (form.get("key") or "").strip(),
        "name": _text(form, "arm_name").strip(),
        "control": form.get("control") == "yes",
        "weight": weight if weight is not None else 1,
        "mechanism": _text(form, "mechanism"),
        **({"mechanism_tag": form.get("mechanism_tag")} if form.get("mechanism_tag") else {}),
        "framing": _text(form, "framing"),
        "messages": {
            "page": _text(form, "page"),
            "email_subject": _text(form, "email_subject"),
            "email_body": _text(form, "email_body"),
            "sms": _text(form, "sms"),
        },
    }
    was_control = index is not None and bool(arms[index].get("control"))
    others = [a for i, a in enumerate(arms) if i != index and a.get("control")]
    if arm["control"]:
        for other in others:
            other["control"] = False
            if other.get("mechanism_tag") == "control":
                other.pop("mechanism_tag")  # a message arm cannot keep the control's tag
    elif was_control and not others:
        arm["control"] = True  # unchanged: the problem below says how to move it
        problems.append(
            Problem(
                f"{path}.control",
                "this is the only control arm and a trial needs one: to change the "
                "control, open the arm that should be the control and choose Yes there",
            )
        )
    if index is None:
        arms.append(arm)
    else:
        arms[index] = arm
    return tables


def apply_step(tables: dict, index: int | None, form, problems: list[Problem]) -> dict:
    steps = tables.setdefault("follow_ups", [])
    path = f"follow_ups[{len(steps) if index is None else index}]"
    offset = _number(form, "offset_hours", problems, f"{path}.offset_hours")
    expires = _number(form, "expires_after_hours", problems, f"{path}.expires_after_hours")
    step = {
        "key": (form.get("key") or "").strip(),
        "kind": (form.get("kind") or ""),
        "offset_hours": offset if offset is not None else 0,
        "channel": (form.get("channel") or "email"),
        "condition": (form.get("condition") or "always"),
        "expires_after_hours": expires if expires is not None else 72,
        "messages": {
            "email_subject": _text(form, "email_subject"),
            "email_body": _text(form, "email_body"),
            "sms": _text(form, "sms"),
        },
    }
    if index is None:
        steps.append(step)
    else:
        steps[index] = step
    return tables


def starter_design(form) -> dict:
    """A new draft: the officer's basics, a control and one message arm to edit."""
    return {
        "campaign": {
            "name": _text(form, "name").strip(),
            "policy_domain": (form.get("policy_domain") or ""),
            "enrolment_mode": (form.get("enrolment_mode") or ""),
            "language": "en",
        },
        "activity": {
            "name": _text(form, "activity_name").strip(),
            "where": _text(form, "activity_where"),
            "when": _text(form, "activity_when"),
        },
        "arms": [
            {
                "key": "control",
                "name": "Usual council invitation",
                "control": True,
                "weight": 1,
                "messages": {
                    "page": "Dear {first_name},\n\n{council} invites you to the {activity}, "
                    "{activity_when}, at {activity_where}.",
                    "email_subject": "{activity}: you are welcome to join",
                    "email_body": "Dear {first_name},\n\n{council} invites you to the "
                    "{activity}: {link}\n\nStop these messages: {opt_out_link}",
                    "sms": "{council}: the {activity}. Details: {link} Stop: {opt_out_link}",
                },
            },
            {
                "key": "message",
                "name": "New message",
                "weight": 1,
                "messages": {
                    "page": "Dear {first_name},\n\nYour neighbours in {neighbourhood} are "
                    "joining the {activity}. Join them {activity_when} at {activity_where}.",
                    "email_subject": "Join your neighbours: {activity}",
                    "email_body": "Dear {first_name},\n\nYour neighbours are joining the "
                    "{activity}: {link}\n\nStop these messages: {opt_out_link}",
                    "sms": "{council}: join your neighbours at the {activity}: {link} "
                    "Stop: {opt_out_link}",
                },
            },
        ],
        # A fresh seed per campaign, recorded in the design and frozen at launch.
        "randomization": {"method": "blocked", "seed": secrets.randbelow(2**31)},
        "analysis": {"primary_outcome": "joined", "moderators": ["age", "self_efficacy"]},
    }


def catalog_designs() -> list[str]:
    return sorted(p.stem for p in CATALOG.glob("*.toml"))


def catalog_text(name: str) -> str | None:
    if name not in catalog_designs():
        return None
    return (CATALOG / f"{name}.toml").read_text(encoding="utf-8")
