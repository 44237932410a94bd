"""A council's evidence library: the results of its own closed campaigns and of the packs
it imported from other councils, the de-identified results pack it exports, and the
pooled effects by mechanism that the "What has worked" page, `nudge power
--prior-from-evidence` and a new campaign's report read.

A council sees only its own library (its campaigns and its imports): every query here
filters by council. Importing checks the whole pack first (`experiments.evidence.pack.
read_pack`) and imports nothing when any field is wrong; importing the same pack twice is
refused. Export and import are audit-logged. Services flush; the caller commits.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from sqlalchemy import select

from experiments.evidence.meta import POOLED_FIELDS, MetaAnalysis, random_effects
from experiments.evidence.pack import MIN_COUNT, PackError, build_pack, read_pack
from nudge_app.errors import DomainError
from nudge_app.extensions import db
from nudge_app.models import Council, EvidenceArm, EvidenceCampaign, EvidenceImport
from nudge_app.services import audit

MAX_PACK_BYTES = 5 * 1024 * 1024


class EvidencePackRefused(DomainError):
    """A results pack that cannot be imported; `details` lists every problem by path."""

    http_status = 422
    code = "pack_refused"


class NothingToExport(DomainError):
    http_status = 409
    code = "nothing_to_export"


# --- reading the library -------------------------------------------------------------------


def library(council_id: int) -> list[EvidenceCampaign]:
    """The council's library: its own closed campaigns, then imported ones, oldest first."""
    return list(
        db.session.scalars(
            select(EvidenceCampaign)
            .where(EvidenceCampaign.council_id == council_id)
            .order_by(EvidenceCampaign.source.desc(), EvidenceCampaign.closed, EvidenceCampaign.id)
        )
    )


def imports(council_id: int) -> list[EvidenceImport]:
    return list(
        db.session.scalars(
            select(EvidenceImport)
            .where(EvidenceImport.council_id == council_id)
            .order_by(EvidenceImport.imported_at.desc())
        )
    )


@dataclass(frozen=True)
class LibraryEffect:
    """One arm's effect in the library, as the forest plot and the pooling read it."""

    entry_id: int
    source: str  # own | imported
    campaign_label: str  # "own campaign, closed 2026-03" / "imported, closed 2025-11"
    mechanism: str
    outcome: str
    effect: float
    std_error: float
    n: int
    campaign_id: int | None


@dataclass
class MechanismPool:
    """The pooled effect of one mechanism on one outcome, and the effects it pools."""

    outcome: str
    mechanism: str
    effects: list[LibraryEffect]
    result: MetaAnalysis

    @property
    def campaigns(self) -> int:
        return len({e.entry_id for e in self.effects})

    def to_dict(self) -> dict:
        return {
            "outcome": self.outcome,
            "mechanism": self.mechanism,
            "campaigns": self.campaigns,
            **{k: self.result.to_dict()[k] for k in (*POOLED_FIELDS, "message")},
        }


def library_effects(council_id: int, exclude_campaign_id: int | None = None) -> list[LibraryEffect]:
    """Every non-control arm with an estimate in the council's library (optionally
    leaving out one campaign, e.g. the one whose report reads the evidence)."""
    out = []
    for entry in library(council_id):
        if exclude_campaign_id is not None and entry.campaign_id == exclude_campaign_id:
            continue
        label = (
            f"own campaign #{entry.id}, closed {entry.closed}"
            if entry.source == "own"
            else f"imported #{entry.id}, closed {entry.closed}"
        )
        for arm in entry.arms:
            if arm.control or arm.effect is None or not arm.std_error:
                continue
            if not (math.isfinite(arm.effect) and math.isfinite(arm.std_error)):
                continue
            out.append(
                LibraryEffect(
                    entry.id,
                    entry.source,
                    label,
                    arm.mechanism,
                    arm.outcome,
                    arm.effect,
                    arm.std_error,
                    arm.n,
                    entry.campaign_id,
                )
            )
    return out


def pool_by_mechanism(effects: Iterable[LibraryEffect], alpha: float = 0.05) -> list[MechanismPool]:
    """REML random-effects pools with Hartung-Knapp-Sidik-Jonkman intervals, one per
    (outcome, mechanism): effects on different outcomes are never pooled together."""
    groups: dict[tuple[str, str], list[LibraryEffect]] = {}
    for e in effects:
        groups.setdefault((e.outcome, e.mechanism), []).append(e)
    out = []
    for (outcome, mechanism), rows in sorted(groups.items()):
        result = random_effects(
            [r.effect for r in rows], [r.std_error for r in rows], method="reml", alpha=alpha
        )
        out.append(MechanismPool(outcome, mechanism, rows, result))
    return out


def pooled(council_id: int, exclude_campaign_id: int | None = None) -> list[MechanismPool]:
    return pool_by_mechanism(library_effects(council_id, exclude_campaign_id))


def pool_for(
    council_id: int, outcome: str, mechanism: str, exclude_campaign_id: int | None = None
) -> MechanismPool | None:
    """The pool of one mechanism on one outcome, or None when the library has no effect."""
    effects = [
        e
        for e in library_effects(council_id, exclude_campaign_id)
        if e.outcome == outcome and e.mechanism == mechanism
    ]
    pools = pool_by_mechanism(effects)
    return pools[0] if pools else None


# --- storing --------------------------------------------------------------------------------


def add_entry(
    council_id: int,
    *,
    source: str,
    policy_domain: str,
    activity_kind: str | None,
    started: str,
    closed: str,
    bands: dict[str, list[str]],
    arms: list[dict],
    campaign_id: int | None = None,
    evidence_import_id: int | None = None,
) -> EvidenceCampaign:
    entry = EvidenceCampaign(
        council_id=council_id,
        source=source,
        campaign_id=campaign_id,
        evidence_import_id=evidence_import_id,
        policy_domain=policy_domain,
        activity_kind=activity_kind,
        started=started,
        closed=closed,
        bands=bands,
    )
    entry.arms = [
        EvidenceArm(
            position=i,
            mechanism=a["mechanism"],
            control=bool(a["control"]),
            outcome=a["outcome"],
            effect=a["effect"],
            std_error=a["std_error"],
            n=int(a["n"]),
            population=a["population"],
        )
        for i, a in enumerate(arms)
    ]
    db.session.add(entry)
    db.session.flush()
    return entry


# --- the results pack -----------------------------------------------------------------------


def _shareable_arms(entry: EvidenceCampaign) -> list[dict] | None:
    """The entry's arms as a pack carries them, or None when it cannot be shared (no
    control of 10 or more, or no other arm with an estimate and 10 or more)."""
    control = [a for a in entry.arms if a.control and a.n >= MIN_COUNT]
    others = [
        a
        for a in entry.arms
        if not a.control
        and a.n >= MIN_COUNT
        and a.effect is not None
        and a.std_error is not None
        and math.isfinite(a.effect)
        and math.isfinite(a.std_error)
        and a.std_error > 0
    ]
    if len(control) != 1 or not others:
        return None
    return [_arm_record(a) for a in control + others]


def _arm_record(a) -> dict:
    """An arm as the library stores it and a results pack carries it."""
    return {
        "mechanism": a.mechanism,
        "control": a.control,
        "outcome": a.outcome,
        "effect": a.effect,
        "std_error": a.std_error,
        "n": a.n,
        "population": a.population,
    }


def export_pack(council: Council, actor: str, actor_id: int | None = None) -> dict:
    """The council's own closed campaigns as a results pack (imported evidence is another
    council's to share, never re-exported). Audit-logged."""
    campaigns = []
    for entry in library(council.id):
        if entry.source != "own":
            continue
        arms = _shareable_arms(entry)
        if arms is None:
            continue
        campaigns.append(
            {
                "policy_domain": entry.policy_domain,
                "activity_kind": entry.activity_kind,
                "started": entry.started,
                "closed": entry.closed,
                "bands": {m: _Labels(labels) for m, labels in entry.bands.items()},
                "arms": arms,
            }
        )
    if not campaigns:
        raise NothingToExport(
            "the library holds no closed campaign of this council with results to share "
            "(a campaign is recorded when it closes with at least 10 participants per arm)"
        )
    pack = build_pack(campaigns, datetime.now(UTC))
    audit.record(
        council_id=council.id,
        actor=actor,
        actor_id=actor_id,
        action="evidence.export",
        object_type="results_pack",
        after={"campaigns": len(campaigns), "exported": pack["exported"]},
    )
    return pack


@dataclass(frozen=True)
class _Labels:
    """What `build_pack` reads from a band spec: its labels (suppression has been done
    when the entry was recorded, and build_pack suppresses again, which changes nothing)."""

    labels: list[str] = field(default_factory=list)

    @property
    def levels(self) -> list[str]:
        return list(self.labels)


def pack_digest(data: dict) -> str:
    return hashlib.sha256(
        json.dumps(data, sort_keys=True, separators=(",", ":")).encode()
    ).hexdigest()


def import_pack(
    council: Council,
    source: str | bytes,
    *,
    label: str,
    actor: str,
    actor_id: int | None = None,
) -> EvidenceImport:
    """Check and import another council's pack into this council's library: all of it,
    or nothing (EvidencePackRefused lists every problem by its path). Audit-logged."""
    if len(source) > MAX_PACK_BYTES:
        raise EvidencePackRefused(
            f"the pack is {len(source):,} bytes: the largest accepted is {MAX_PACK_BYTES:,}"
        )
    try:
        pack = read_pack(source)
    except PackError as exc:
        raise EvidencePackRefused(str(exc), details=exc.problems) from None
    data = json.loads(source)
    digest = pack_digest(data)
    already = db.session.scalar(
        select(EvidenceImport).where(
            EvidenceImport.council_id == council.id, EvidenceImport.digest == digest
        )
    )
    if already is not None:
        raise EvidencePackRefused(
            f"this pack was already imported on {already.imported_at:%Y-%m-%d} "
            f"({already.label or 'no name'}): nothing was imported again"
        )
    record = EvidenceImport(
        council_id=council.id,
        digest=digest,
        exported=pack.exported,
        label=label[:200],
        actor=actor,
    )
    db.session.add(record)
    db.session.flush()
    for c in pack.campaigns:
        add_entry(
            council.id,
            source="imported",
            policy_domain=c.policy_domain,
            activity_kind=c.activity_kind,
            started=c.started,
            closed=c.closed,
            bands=c.bands,
            arms=[_arm_record(a) for a in c.arms],
            evidence_import_id=record.id,
        )
    audit.record(
        council_id=council.id,
        actor=actor,
        actor_id=actor_id,
        action="evidence.import",
        object_type="evidence_import",
        object_id=record.id,
        after={"campaigns": len(pack.campaigns), "exported": pack.exported, "label": label[:200]},
    )
    return record
