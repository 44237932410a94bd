"""API routes: campaigns, arms, participant import, enrolment and assignment, events,
monitoring figures and reports. Thin: authenticate, find the council's campaign, call one
service function, answer JSON. The request commits (or rolls back) in `nudge_app.boundary`;
a service's domain error becomes its JSON error in `nudge_app.app`.
"""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime

from flask import Blueprint, Response, g, jsonify, request
from sqlalchemy import select

from nudge_app.api.auth import ApiError, api_actor, council_campaign, error, token_required
from nudge_app.api.openapi import openapi_document
from nudge_app.extensions import db
from nudge_app.links import personal_link
from nudge_app.models import Assignment, Campaign, Participant
from nudge_app.services import campaigns as campaign_service
from nudge_app.services import enrolment, screening
from nudge_app.services.assignment import assign
from nudge_app.services.monitoring import campaign_monitoring
from nudge_app.services.outbox import on_assigned
from nudge_app.services.participants_import import (
    COLUMNS,
    REF_RE,
    check_one,
    import_csv,
)
from nudge_app.services.reporting import campaign_report

bp = Blueprint("api", __name__)

EVENT_KINDS = ("exposure", "click", "join")
MAX_JSON_BYTES = 64 * 1024
MAX_JSON_DEPTH = 8


@bp.errorhandler(ApiError)
def _api_error(exc: ApiError):
    return exc.get_response()


@bp.get("/openapi.json")
def openapi():
    return jsonify(openapi_document())


def _campaign_json(c: Campaign, full: bool = False) -> dict:
    data = {
        "slug": c.slug,
        "name": c.name,
        "status": c.status,
        "policy_domain": c.policy_domain,
        "enrolment_mode": c.enrolment_mode,
        "activity": c.activity_name,
        "planned_sample_size": c.planned_sample_size,
        "design_hash": c.design_hash,
        "launched_at": c.launched_at.isoformat() if c.launched_at else None,
        "closed_at": c.closed_at.isoformat() if c.closed_at else None,
    }
    if full:
        data["description"] = c.description or ""
        data["arms"] = [_arm_json(a) for a in c.arms]
        data["design"] = campaign_service.design_of(c).to_dict()
    return data


def _arm_json(arm) -> dict:
    return {
        "key": arm.key,
        "name": arm.name,
        "control": arm.is_control,
        "weight": arm.weight,
        "framing": arm.framing,
    }


@bp.get("/campaigns")
@token_required
def campaigns():
    rows = db.session.scalars(
        select(Campaign).where(Campaign.council_id == g.api_council.id).order_by(Campaign.id)
    )
    return jsonify({"campaigns": [_campaign_json(c) for c in rows]})


@bp.get("/campaigns/<slug>")
@token_required
def campaign(slug: str):
    return jsonify(_campaign_json(council_campaign(slug), full=True))


@bp.get("/campaigns/<slug>/arms")
@token_required
def arms(slug: str):
    c = council_campaign(slug)
    return jsonify({"arms": [_arm_json(a) for a in c.arms]})


@bp.post("/campaigns/<slug>/participants")
@token_required
def import_participants(slug: str):
    """A CSV body (text/csv) imported whole or not at all."""
    c = council_campaign(slug)
    result = import_csv(c, request.get_data(cache=False), actor=api_actor())
    return jsonify(
        {
            "imported": result.imported,
            "randomized": result.randomized,
            "messages": result.messages,
            "suppressed": result.suppressed,
            "screened_out": result.screened_out,
        }
    ), 201


def _refuse_constant(name: str):
    raise ValueError(f"{name} is not a JSON number")


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"{text} is out of range")
    return value


def _json_body() -> dict:
    """The body as a JSON object of at most MAX_JSON_DEPTH levels, with finite numbers only
    (Python's parser takes NaN, Infinity, 1e999 and any depth; a client gets a 400)."""
    if request.content_length is not None and request.content_length > MAX_JSON_BYTES:
        raise error(413, "too_large", f"The JSON body is larger than {MAX_JSON_BYTES} bytes.")
    if not request.is_json:
        raise error(400, "bad_request", "Send a JSON object with Content-Type: application/json.")
    raw = request.get_data(cache=True)[: MAX_JSON_BYTES + 1]
    if len(raw) > MAX_JSON_BYTES:
        raise error(413, "too_large", f"The JSON body is larger than {MAX_JSON_BYTES} bytes.")
    if _nesting(raw) > MAX_JSON_DEPTH:
        raise error(400, "bad_request", f"The JSON body nests deeper than {MAX_JSON_DEPTH} levels.")
    try:
        data = json.loads(
            raw.decode("utf-8"), parse_constant=_refuse_constant, parse_float=_finite_float
        )
    except UnicodeDecodeError:
        raise error(400, "bad_request", "The JSON body is not valid UTF-8 text.") from None
    except ValueError as exc:
        raise error(400, "bad_request", f"The JSON body is not valid JSON: {exc}") from None
    if not isinstance(data, dict):
        raise error(400, "bad_request", "Send a JSON object with Content-Type: application/json.")
    try:
        json.dumps(data, ensure_ascii=False).encode("utf-8")
    except (UnicodeEncodeError, ValueError):
        raise error(400, "bad_request", "The JSON body is not valid UTF-8 text.") from None
    return data


def _nesting(raw: bytes) -> int:
    """How deep brackets nest, outside strings (before parsing, which recurses)."""
    if raw.count(b"[") + raw.count(b"{") <= MAX_JSON_DEPTH:
        return 0  # cannot nest deeper than the brackets it has
    depth = deepest = 0
    in_string = escaped = False
    for byte in raw:
        if in_string:
            if escaped:
                escaped = False
            elif byte == 0x5C:  # backslash
                escaped = True
            elif byte == 0x22:  # quote
                in_string = False
        elif byte == 0x22:
            in_string = True
        elif byte in (0x5B, 0x7B):  # [ {
            depth += 1
            deepest = max(deepest, depth)
        elif byte in (0x5D, 0x7D):
            depth -= 1
    return deepest


def _participant_by_ref(c: Campaign, ref) -> Participant:
    if not isinstance(ref, str) or not ref:
        raise error(400, "bad_request", "external_ref is required (text).")
    if not REF_RE.match(ref):
        raise error(404, "not_found", "No participant with this external_ref.")
    p = db.session.scalar(
        select(Participant).where(Participant.campaign_id == c.id, Participant.external_ref == ref)
    )
    if p is None:
        raise error(404, "not_found", f"No participant {ref!r} in campaign {c.slug!r}.")
    return p


def _assignment_json(p: Participant, a: Assignment | None, c: Campaign) -> dict:
    arms = {arm.id: arm.key for arm in c.arms}
    # This person's screening only: whether they are eligible and, if not, the rule
    # they did not meet (None while not screened yet).
    eligible = None if p.screened_at is None else p.screened_out_rule is None
    return {
        "participant_id": p.id,
        "external_ref": p.external_ref,
        "consent_status": p.consent_status,
        "eligible": eligible,
        "failed_rule": p.screened_out_rule,
        "arm": arms.get(a.arm_id) if a else None,
        "stratum": a.stratum if a else None,
        "probability": a.probability if a else None,
        "assigned_at": a.assigned_at.isoformat() if a else None,
        "link": personal_link(p.access_nonce),
    }


# The fields of one enrolment are the participant CSV columns.
ENROL_FIELDS = COLUMNS


@bp.post("/campaigns/<slug>/enrolments")
@token_required
def enrol(slug: str):
    """Enrol one person (idempotent by external_ref) and randomize them if consented."""
    c = council_campaign(slug)
    body = _json_body()
    unknown = [k for k in body if k not in ENROL_FIELDS and k != "consent"]
    if unknown:
        raise error(
            422,
            "invalid_participant",
            f"unknown field(s): {', '.join(unknown)}",
            {"fields": {k: "unknown field" for k in unknown}},
        )
    consent = body.get("consent", False)
    if not isinstance(consent, bool):
        raise error(
            422,
            "invalid_participant",
            "consent must be true or false",
            {"fields": {"consent": "must be true or false"}},
        )
    cells = {}
    for key in ENROL_FIELDS:
        value = body.get(key)
        if value is None:
            cells[key] = ""
        elif isinstance(value, bool) or not isinstance(value, str | int | float):
            raise error(
                422,
                "invalid_participant",
                f"{key} must be text or a number",
                {"fields": {key: "must be text or a number"}},
            )
        else:
            cells[key] = str(value)
    if c.status != "running":
        raise error(
            409, "campaign_not_running", f"Campaign {c.slug!r} is {c.status}: it enrols nobody now."
        )
    existing = (
        db.session.scalar(
            select(Participant).where(
                Participant.campaign_id == c.id, Participant.external_ref == cells["external_ref"]
            )
        )
        if cells["external_ref"]
        else None
    )
    status = 200
    if existing is None:
        values, problems = check_one(cells, c)
        if problems:
            raise error(
                422,
                "invalid_participant",
                "; ".join(f"{p.column}: {p.message}" for p in problems),
                {"fields": {p.column: p.message for p in problems}},
            )
        from nudge_app.services.suppression import is_suppressed

        if is_suppressed(c.council, values.get("email"), values.get("phone")):
            raise error(
                409,
                "suppressed",
                "This contact is on the council's suppression list (they opted out, "
                "withdrew or were erased): nobody was enrolled and no arm was assigned.",
            )
        existing = enrolment.new_participant(c, **values)
        status = 201
    p = existing
    if consent and p.consent_status != "given":
        from nudge_app.services.consent import current_version

        p.consent_status = "given"
        p.consented_at = datetime.now(UTC)
        p.consent_basis = p.consent_basis or c.lawful_basis
        p.consent_version_id = current_version(c).id
    assignment = db.session.scalar(select(Assignment).where(Assignment.participant_id == p.id))
    if assignment is None and p.consent_status == "given" and p.opted_out_at is None:
        # Eligibility before randomization, on the answers this enrolment carried.
        if screening.screen(p, c).eligible:
            assignment = assign(p)
            if c.enrolment_mode == "survey-first":
                on_assigned(p)
    return jsonify(_assignment_json(p, assignment, c)), status


@bp.get("/campaigns/<slug>/assignments/<ref>")
@token_required
def assignment(slug: str, ref: str):
    c = council_campaign(slug)
    p = _participant_by_ref(c, ref)
    a = db.session.scalar(select(Assignment).where(Assignment.participant_id == p.id))
    return jsonify(_assignment_json(p, a, c))


@bp.post("/campaigns/<slug>/events")
@token_required
def events(slug: str):
    """Record what a participant did in the council's own system (idempotent)."""
    c = council_campaign(slug)
    body = _json_body()
    kind = body.get("kind")
    if kind not in EVENT_KINDS:
        raise error(
            422,
            "invalid_event",
            f"kind must be one of {', '.join(EVENT_KINDS)}",
            {"fields": {"kind": "unknown kind"}},
        )
    if c.status != "running":
        raise error(409, "campaign_not_running", f"Campaign {c.slug!r} is {c.status}.")
    p = _participant_by_ref(c, body.get("external_ref"))
    a = db.session.scalar(select(Assignment).where(Assignment.participant_id == p.id))
    if a is None:
        raise error(409, "not_assigned", "The participant has no arm yet: enrol them first.")
    if kind == "click":
        key = body.get("idempotency_key")
        if not isinstance(key, str) or not 1 <= len(key) <= 100:
            raise error(
                422,
                "invalid_event",
                "a click needs an idempotency_key (1-100 characters)",
                {"fields": {"idempotency_key": "required for clicks"}},
            )
        created = enrolment.record_event(
            c.id, p.id, "click", f"api:{c.id}:click:{key}", {"arm_id": a.arm_id}
        )
    else:
        if kind == "join":
            enrolment.once(p, "exposure", {"arm_id": a.arm_id})
        created = enrolment.once(p, kind, {"arm_id": a.arm_id, "via": "api"})
    return jsonify({"recorded": bool(created), "kind": kind, "external_ref": p.external_ref}), (
        201 if created else 200
    )


@bp.get("/campaigns/<slug>/monitoring")
@token_required
def monitoring(slug: str):
    return jsonify(campaign_monitoring(council_campaign(slug)).to_dict())


@bp.get("/campaigns/<slug>/report")
@token_required
def report(slug: str):
    result = campaign_report(council_campaign(slug))
    return Response(result.to_json(), 200, mimetype="application/json")
