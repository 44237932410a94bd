"""Results packs: the de-identified JSON in which a council shares its closed campaigns'
effects, and in which it reads another council's.

A pack holds campaigns with no council, no names, no texts and no day: each campaign's
policy domain, activity kind, start and close month, the moderator bands, and per arm its
mechanism tag, outcome, effect against control (difference in means, outcome units) with
its standard error, the number analysed and counts by age band and self-efficacy band.
Counts under 10 are suppressed (null), and so are the next smallest counts of the same
arm and moderator until the suppressed ones add up to 10 or more, so that no suppressed
count can be recovered from the arm's total. The schema is
`experiments/evidence/results-pack.schema.json`; `experiments/evidence/README.md` says
what each field means.

`build_pack` writes a pack from plain values; `read_pack` checks every field of a pack
(unknown fields too, so nothing unexpected is ever imported) and returns it typed, or
raises `PackError` listing every problem with its path: one bad campaign refuses the
whole pack.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from experiments.bands import BandSpec
from experiments.design import ACTIVITY_KINDS, MECHANISM_TAGS, POLICY_DOMAINS

SCHEMA = "nudge-results-pack"
SCHEMA_VERSION = "1.0"
MIN_COUNT = 10  # smaller counts are suppressed; smaller arms are not shared
MISSING = "missing"  # the band of participants without a value
MODERATORS = ("age", "self_efficacy")
MONTH = re.compile(r"^(19|20)\d\d-(0[1-9]|1[0-2])$")
# Another council may ask a follow-up question this one does not: any `<variable>_followup`.
OUTCOME = re.compile(r"^(exposed|joined|participated|[a-z][a-z0-9_]{0,39}_followup)$")


class PackError(ValueError):
    """A pack that cannot be written or read; `problems` lists each with its path."""

    def __init__(self, problems: list[str]):
        self.problems = problems
        shown = "; ".join(problems[:5])
        more = f" (and {len(problems) - 5} more)" if len(problems) > 5 else ""
        super().__init__(f"results pack refused: {shown}{more}")


@dataclass(frozen=True)
class PackArm:
    mechanism: str
    control: bool
    outcome: str
    effect: float | None  # None for the control arm
    std_error: float | None
    n: int
    population: dict[str, dict[str, int | None]]  # moderator -> band -> count (None: suppressed)


@dataclass(frozen=True)
class PackCampaign:
    policy_domain: str
    activity_kind: str | None
    started: str  # YYYY-MM
    closed: str
    bands: dict[str, list[str]]  # moderator -> band labels, in order
    arms: tuple[PackArm, ...]


@dataclass(frozen=True)
class ResultsPack:
    exported: str
    campaigns: tuple[PackCampaign, ...]

    def effects(self) -> list[dict[str, Any]]:
        """One row per arm against control, ready for `meta.pool_by`: mechanism, outcome,
        effect, std_error, n, policy domain, activity kind, closed month."""
        return [
            {
                "mechanism": arm.mechanism,
                "outcome": arm.outcome,
                "effect": arm.effect,
                "std_error": arm.std_error,
                "n": arm.n,
                "policy_domain": c.policy_domain,
                "activity_kind": c.activity_kind,
                "closed": c.closed,
            }
            for c in self.campaigns
            for arm in c.arms
            if not arm.control
        ]


# --- writing -------------------------------------------------------------------------------


def population_counts(values: Sequence, spec: BandSpec) -> dict[str, int]:
    """Participants per band of `spec` (and `missing`), before suppression."""
    counts = {label: 0 for label in spec.levels or []}
    for level in spec.assign(list(values)).tolist():
        key = MISSING if level is None else level
        counts[key] = counts.get(key, 0) + 1
    return counts


def suppress(counts: Mapping[str, int]) -> dict[str, int | None]:
    """Counts under MIN_COUNT become None, then the next smallest too until the suppressed
    counts add up to MIN_COUNT or more (zero counts are shown: they reveal no one)."""
    out: dict[str, int | None] = dict(counts)
    hidden = [k for k, v in counts.items() if 0 < v < MIN_COUNT]
    for k in hidden:
        out[k] = None
    total = sum(counts[k] for k in hidden)
    shown = sorted((v, k) for k, v in counts.items() if v > 0 and k not in hidden)
    while hidden and total < MIN_COUNT and shown:
        v, k = shown.pop(0)
        out[k] = None
        hidden.append(k)
        total += v
    return out


def month(value: Any) -> str:
    """'YYYY-MM' of a date, datetime or ISO text: packs never say the day."""
    text = value.isoformat() if hasattr(value, "isoformat") else str(value)
    return text[:7]


def build_pack(campaigns: Sequence[Mapping[str, Any]], exported: Any) -> dict:
    """A pack (plain JSON values) from campaigns given as mappings with policy_domain,
    activity_kind, started, closed (dates or ISO text), bands ({moderator: BandSpec}) and
    arms: [{mechanism, control, outcome, effect, std_error, n, population: {moderator:
    {band: count}}}] with raw counts. Counts are suppressed here; the result is checked
    with `read_pack` before it is returned, so a pack that leaves is one that can come in."""
    out = []
    for c in campaigns:
        bands = {m: list(spec.levels or []) for m, spec in c["bands"].items()}
        arms = []
        for a in c["arms"]:
            population = {m: suppress(counts) for m, counts in a["population"].items()}
            arms.append(
                {
                    "mechanism": a["mechanism"],
                    "control": bool(a["control"]),
                    "outcome": a["outcome"],
                    "effect": None if a["control"] else _number(a["effect"]),
                    "std_error": None if a["control"] else _number(a["std_error"]),
                    "n": int(a["n"]),
                    "population": population,
                }
            )
        out.append(
            {
                "policy_domain": c["policy_domain"],
                "activity_kind": c.get("activity_kind"),
                "started": month(c["started"]),
                "closed": month(c["closed"]),
                "bands": bands,
                "arms": arms,
            }
        )
    pack = {
        "schema": SCHEMA,
        "schema_version": SCHEMA_VERSION,
        "exported": month(exported),
        "campaigns": out,
    }
    read_pack(pack)
    return pack


def _number(x: Any) -> float | None:
    return float(x) if x is not None and math.isfinite(float(x)) else None


# --- reading -------------------------------------------------------------------------------


class _Checker:
    def __init__(self) -> None:
        self.problems: list[str] = []

    def fail(self, path: str, message: str) -> None:
        self.problems.append(f"{path}: {message}")

    def keys(self, obj: Any, path: str, required: tuple[str, ...], optional=()) -> bool:
        if not isinstance(obj, dict):
            self.fail(path, "must be an object")
            return False
        for k in required:
            if k not in obj:
                self.fail(path, f"missing field {k!r}")
        for k in obj:
            if k not in required and k not in optional:
                self.fail(
                    f"{path}.{k}", "unknown field (nothing but the schema's fields is imported)"
                )
        return all(k in obj for k in required)

    def choice(self, value: Any, path: str, choices: Sequence[str], nullable=False) -> None:
        if value is None and nullable:
            return
        if value not in choices:
            self.fail(path, f"{value!r} is not one of {', '.join(choices)}")

    def month(self, value: Any, path: str) -> None:
        if not isinstance(value, str) or not MONTH.match(value):
            self.fail(path, f"{value!r} is not a month written YYYY-MM")

    def count(self, value: Any, path: str, minimum: int, nullable=False) -> None:
        if value is None and nullable:
            return
        if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
            self.fail(path, f"{value!r} must be a whole number of at least {minimum}")


def read_pack(source: str | bytes | Mapping) -> ResultsPack:
    """A checked, typed pack from JSON text or parsed JSON; PackError lists every problem."""
    if isinstance(source, str | bytes):
        try:
            data = json.loads(source)
        except (ValueError, UnicodeDecodeError) as exc:
            raise PackError([f"not JSON: {exc}"]) from None
    else:
        data = source
    check = _Checker()
    if not check.keys(data, "pack", ("schema", "schema_version", "exported", "campaigns")):
        raise PackError(check.problems)
    if data["schema"] != SCHEMA:
        check.fail("schema", f"{data['schema']!r} is not {SCHEMA!r}: not a results pack")
    if data["schema_version"] != SCHEMA_VERSION:
        check.fail(
            "schema_version",
            f"{data['schema_version']!r} is not supported: this platform reads version "
            f"{SCHEMA_VERSION}",
        )
    if check.problems:  # another kind of file: its fields would only add noise
        raise PackError(check.problems)
    check.month(data["exported"], "exported")
    campaigns = data["campaigns"]
    if not isinstance(campaigns, list) or not campaigns:
        check.fail("campaigns", "must be a list of at least one campaign")
        raise PackError(check.problems)
    typed = [_campaign(check, c, f"campaigns[{i}]") for i, c in enumerate(campaigns)]
    if check.problems:
        raise PackError(check.problems)
    return ResultsPack(data["exported"], tuple(c for c in typed if c is not None))


def _campaign(check: _Checker, c: Any, path: str) -> PackCampaign | None:
    fields = ("policy_domain", "activity_kind", "started", "closed", "bands", "arms")
    if not check.keys(c, path, fields):
        return None
    check.choice(c["policy_domain"], f"{path}.policy_domain", POLICY_DOMAINS)
    check.choice(c["activity_kind"], f"{path}.activity_kind", ACTIVITY_KINDS, nullable=True)
    check.month(c["started"], f"{path}.started")
    check.month(c["closed"], f"{path}.closed")
    if (
        isinstance(c["started"], str)
        and isinstance(c["closed"], str)
        and c["closed"] < c["started"]
    ):
        check.fail(f"{path}.closed", f"{c['closed']} is before the start {c['started']}")
    bands: dict[str, list[str]] = {}
    if check.keys(c["bands"], f"{path}.bands", (), MODERATORS):
        for m, labels in c["bands"].items():
            ok = (
                isinstance(labels, list)
                and labels
                and all(isinstance(x, str) and x for x in labels)
            )
            if not ok or len(set(labels)) != len(labels) or MISSING in labels:
                check.fail(f"{path}.bands.{m}", "must be a list of distinct band labels")
            else:
                bands[m] = labels
    arms = c["arms"]
    if not isinstance(arms, list) or len(arms) < 2:
        check.fail(f"{path}.arms", "must list the control and at least one other arm")
        return None
    typed = [_arm(check, a, f"{path}.arms[{i}]", bands) for i, a in enumerate(arms)]
    controls = sum(1 for a in arms if isinstance(a, dict) and a.get("control") is True)
    if controls != 1:
        check.fail(f"{path}.arms", f"{controls} control arms: exactly one is needed")
    if any(a is None for a in typed):
        return None
    return PackCampaign(
        c["policy_domain"], c["activity_kind"], c["started"], c["closed"], bands, tuple(typed)
    )


def _arm(check: _Checker, a: Any, path: str, bands: dict[str, list[str]]) -> PackArm | None:
    fields = ("mechanism", "control", "outcome", "effect", "std_error", "n", "population")
    if not check.keys(a, path, fields):
        return None
    before = len(check.problems)
    if not isinstance(a["control"], bool):
        check.fail(f"{path}.control", "must be true or false")
    check.choice(a["mechanism"], f"{path}.mechanism", MECHANISM_TAGS)
    if (a["mechanism"] == "control") != (a["control"] is True):
        check.fail(f"{path}.mechanism", "the control arm, and only it, has mechanism 'control'")
    if not isinstance(a["outcome"], str) or not OUTCOME.match(a["outcome"]):
        check.fail(
            f"{path}.outcome",
            f"{a['outcome']!r} is not exposed, joined, participated or <variable>_followup",
        )
    check.count(a["n"], f"{path}.n", MIN_COUNT)
    if a["control"] is True:
        for k in ("effect", "std_error"):
            if a[k] is not None:
                check.fail(f"{path}.{k}", "must be null for the control arm")
    else:
        effect, se = a["effect"], a["std_error"]
        if not _finite(effect):
            check.fail(f"{path}.effect", f"{effect!r} must be a finite number")
        if not _finite(se) or se <= 0:
            check.fail(f"{path}.std_error", f"{se!r} must be a positive number")
    population = a["population"]
    if check.keys(population, f"{path}.population", (), tuple(bands)):
        for m, counts in population.items():
            where = f"{path}.population.{m}"
            if m not in bands or not check.keys(counts, where, (), (*bands[m], MISSING)):
                continue
            for band, n in counts.items():
                if n != 0:  # an empty band reveals no one
                    check.count(n, f"{where}.{band}", MIN_COUNT, nullable=True)
    if len(check.problems) > before:
        return None
    return PackArm(
        a["mechanism"], a["control"], a["outcome"], a["effect"], a["std_error"], a["n"], population
    )


def _finite(x: Any) -> bool:
    return isinstance(x, int | float) and not isinstance(x, bool) and math.isfinite(x)
