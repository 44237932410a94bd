"""The OpenAPI 3 document of /api/v1: every route with its auth and error responses."""

from __future__ import annotations

from typing import Any

from nudge_app.services.participants_import import COLUMNS

NULLABLE_STRING = {"type": "string", "nullable": True}
NULLABLE_INT = {"type": "integer", "nullable": True}


def _error(description: str) -> dict:
    return {
        "description": description,
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
    }


def _ok(schema_ref: str, description: str) -> dict:
    return {
        "description": description,
        "content": {"application/json": {"schema": {"$ref": f"#/components/schemas/{schema_ref}"}}},
    }


SLUG = {
    "name": "slug",
    "in": "path",
    "required": True,
    "description": "The campaign's slug (unique within the council).",
    "schema": {"type": "string"},
}
UNAUTHORIZED = {"$ref": "#/components/responses/Unauthorized"}
NOT_FOUND = {"$ref": "#/components/responses/NotFound"}


def _op(summary: str, responses: dict, **extra: Any) -> dict:
    op = {
        "summary": summary,
        "security": [{"bearerAuth": []}],
        "responses": {**responses, "401": UNAUTHORIZED},
    }
    op.update(extra)
    return op


def openapi_document() -> dict:
    campaign_summary = {
        "type": "object",
        "required": ["slug", "name", "status", "enrolment_mode"],
        "properties": {
            "slug": {"type": "string"},
            "name": {"type": "string"},
            "status": {"type": "string", "enum": ["draft", "running", "paused", "closed"]},
            "policy_domain": {"type": "string"},
            "enrolment_mode": {"type": "string", "enum": ["list", "survey-first"]},
            "activity": {"type": "string"},
            "planned_sample_size": NULLABLE_INT,
            "design_hash": NULLABLE_STRING,
            "launched_at": {"type": "string", "format": "date-time", "nullable": True},
            "closed_at": {"type": "string", "format": "date-time", "nullable": True},
        },
    }
    arm = {
        "type": "object",
        "required": ["key", "name", "control", "weight"],
        "properties": {
            "key": {"type": "string"},
            "name": {"type": "string"},
            "control": {"type": "boolean"},
            "weight": {"type": "number"},
            "framing": {"type": "string"},
        },
    }
    campaign = {
        "allOf": [
            {"$ref": "#/components/schemas/CampaignSummary"},
            {
                "type": "object",
                "required": ["arms", "design"],
                "properties": {
                    "description": {"type": "string"},
                    "arms": {"type": "array", "items": {"$ref": "#/components/schemas/Arm"}},
                    "design": {
                        "type": "object",
                        "description": "The campaign design (the design file's values).",
                    },
                },
            },
        ]
    }
    assignment = {
        "type": "object",
        "required": ["participant_id", "external_ref", "arm", "link"],
        "properties": {
            "participant_id": {"type": "integer"},
            "external_ref": NULLABLE_STRING,
            "consent_status": {"type": "string", "enum": ["pending", "given", "refused"]},
            "eligible": {
                "type": "boolean",
                "nullable": True,
                "description": "whether the campaign's eligibility rules admit this person "
                "(null until screened, at consent); false: never randomized, no message",
            },
            "failed_rule": {
                **NULLABLE_STRING,
                "description": "the eligibility rule this person did not meet (when not eligible)",
            },
            "arm": {
                **NULLABLE_STRING,
                "description": "null until randomized (after consent), and for the ineligible",
            },
            "stratum": NULLABLE_STRING,
            "probability": {"type": "number", "nullable": True},
            "assigned_at": {"type": "string", "format": "date-time", "nullable": True},
            "link": {"type": "string", "description": "The participant's personal page."},
        },
    }
    text_or_number = {"oneOf": [{"type": "string"}, {"type": "number"}], "nullable": True}
    enrolment = {
        "type": "object",
        "required": ["external_ref"],
        "additionalProperties": False,
        "properties": {
            **{name: text_or_number for name in COLUMNS},
            "external_ref": {"type": "string"},
            "consent": {
                "type": "boolean",
                "description": "true when the person consented in your system: randomize now",
            },
        },
    }
    counts = {"type": "object", "additionalProperties": {"type": "integer"}}
    monitoring = {
        "type": "object",
        "required": ["campaign", "status", "participants", "assigned", "by_arm", "srm", "messages"],
        "properties": {
            "campaign": {"type": "string"},
            "status": {"type": "string"},
            "participants": {"type": "integer"},
            "assigned": {"type": "integer"},
            "arms": {"type": "array", "items": {"type": "string"}},
            "by_arm": counts,
            "by_day": {"type": "array", "items": {"type": "object"}},
            "by_stratum": {"type": "object", "additionalProperties": counts},
            "srm": {
                "type": "object",
                "required": ["status", "message"],
                "properties": {
                    "status": {"type": "string", "enum": ["ok", "mismatch", "not_enough_data"]},
                    "p_value": {"type": "number", "nullable": True},
                    "message": {"type": "string"},
                    "observed": counts,
                    "expected": {"type": "object", "additionalProperties": {"type": "number"}},
                },
            },
            "messages": counts,
            "messages_by_status": counts,
            "joins_by_arm": counts,
            "planned_sample_size": {
                "type": "integer",
                "nullable": True,
                "description": "the report's fixed-horizon effects are final once this many "
                "are randomized or the campaign is closed",
            },
            "screening": {
                "type": "object",
                "description": "eligibility screening so far: residents assessed, eligible, "
                "screened out (by the first rule not met) and the share screened out",
                "properties": {
                    "assessed": {"type": "integer"},
                    "eligible": {"type": "integer"},
                    "screened_out": {"type": "integer"},
                    "by_rule": counts,
                    "rate": {"type": "number", "nullable": True},
                    "rules": {"type": "array", "items": {"type": "string"}},
                },
            },
        },
    }
    json_body = {"application/json": {"schema": None}}
    enrol_body = dict(json_body)
    enrol_body["application/json"] = {"schema": {"$ref": "#/components/schemas/Enrolment"}}
    event_body = {
        "application/json": {
            "schema": {
                "type": "object",
                "required": ["external_ref", "kind"],
                "properties": {
                    "external_ref": {"type": "string"},
                    "kind": {"type": "string", "enum": ["exposure", "click", "join"]},
                    "idempotency_key": {
                        "type": "string",
                        "description": "required for clicks; repeats are recorded once",
                    },
                },
            }
        }
    }
    return {
        "openapi": "3.0.3",
        "info": {
            "title": "nudge council API",
            "version": "1.0.0",
            "description": (
                "Campaigns, arms, participant import, enrolment and assignment, events, "
                "monitoring and reports for one council. Authenticate with a council API "
                "token: `Authorization: Bearer TOKEN` (created by an admin in the console "
                "or with `nudge token create`). Another council's objects answer 404. "
                'Errors are `{"error": CODE, "message": TEXT, "details": ...}`, with '
                '`"field"` naming the field at fault when a domain rule refuses one.'
            ),
        },
        "servers": [{"url": "/api/v1"}],
        "security": [{"bearerAuth": []}],
        "paths": {
            "/openapi.json": {
                "get": {
                    "summary": "This document",
                    "security": [],
                    "responses": {
                        "200": {
                            "description": "The OpenAPI document",
                            "content": {"application/json": {"schema": {"type": "object"}}},
                        }
                    },
                }
            },
            "/campaigns": {
                "get": _op(
                    "List the council's campaigns",
                    {"200": _ok("CampaignList", "The council's campaigns, each with its slug")},
                )
            },
            "/campaigns/{slug}": {
                "parameters": [SLUG],
                "get": _op(
                    "One campaign with its arms and design",
                    {"200": _ok("Campaign", "The campaign"), "404": NOT_FOUND},
                ),
            },
            "/campaigns/{slug}/arms": {
                "parameters": [SLUG],
                "get": _op(
                    "The campaign's arms",
                    {"200": _ok("ArmList", "The arms"), "404": NOT_FOUND},
                ),
            },
            "/campaigns/{slug}/participants": {
                "parameters": [SLUG],
                "post": _op(
                    "Import participants from CSV (all rows or none)",
                    {
                        "201": _ok("ImportResult", "Every row imported"),
                        "404": NOT_FOUND,
                        "409": _error("The campaign is closed"),
                        "413": _error("The file is too large"),
                        "422": _error(
                            "Nothing imported; details.problems names each row and column"
                        ),
                    },
                    requestBody={
                        "required": True,
                        "description": (
                            "CSV with a header; required columns external_ref, first_name, "
                            "email; optional " + ", ".join(COLUMNS[3:])
                        ),
                        "content": {"text/csv": {"schema": {"type": "string"}}},
                    },
                ),
            },
            "/campaigns/{slug}/enrolments": {
                "parameters": [SLUG],
                "post": _op(
                    "Enrol one person and randomize them once they consented",
                    {
                        "200": _ok("Assignment", "Already enrolled: the existing record"),
                        "201": _ok("Assignment", "Enrolled now"),
                        "400": _error("Not a JSON object"),
                        "404": NOT_FOUND,
                        "409": _error(
                            "The campaign is not running, or the contact is suppressed "
                            "(error `suppressed`: they opted out, withdrew or were erased)"
                        ),
                        "413": _error("The body is too large"),
                        "422": _error("A field is invalid; details.fields names each"),
                    },
                    requestBody={"required": True, "content": enrol_body},
                ),
            },
            "/campaigns/{slug}/assignments/{external_ref}": {
                "parameters": [
                    SLUG,
                    {
                        "name": "external_ref",
                        "in": "path",
                        "required": True,
                        "schema": {"type": "string"},
                    },
                ],
                "get": _op(
                    "A participant's arm",
                    {"200": _ok("Assignment", "The participant and their arm"), "404": NOT_FOUND},
                ),
            },
            "/campaigns/{slug}/events": {
                "parameters": [SLUG],
                "post": _op(
                    "Record an exposure, click or join from the council's own system",
                    {
                        "200": _ok("EventResult", "Already recorded (a repeat)"),
                        "201": _ok("EventResult", "Recorded now"),
                        "400": _error("Not a JSON object or no external_ref"),
                        "404": NOT_FOUND,
                        "409": _error("The campaign is not running or the person has no arm"),
                        "413": _error("The body is too large"),
                        "422": _error("An invalid field"),
                    },
                    requestBody={"required": True, "content": event_body},
                ),
            },
            "/campaigns/{slug}/monitoring": {
                "parameters": [SLUG],
                "get": _op(
                    "Monitoring figures: enrolment by arm, day and stratum, SRM, messages, joins",
                    {"200": _ok("Monitoring", "The figures"), "404": NOT_FOUND},
                ),
            },
            "/campaigns/{slug}/report": {
                "parameters": [SLUG],
                "get": _op(
                    "The effect report (JSON) on the pre-registered primary outcome",
                    {
                        "200": {
                            "description": "The report",
                            "content": {"application/json": {"schema": {"type": "object"}}},
                        },
                        "404": NOT_FOUND,
                        "409": _error("Not enough data yet"),
                    },
                ),
            },
        },
        "components": {
            "securitySchemes": {
                "bearerAuth": {
                    "type": "http",
                    "scheme": "bearer",
                    "description": "A council API token (nudge_...)",
                }
            },
            "responses": {
                "Unauthorized": _error("Missing, unknown or revoked API token"),
                "NotFound": _error("No such object in this council"),
            },
            "schemas": {
                "Error": {
                    "type": "object",
                    "required": ["error", "message"],
                    "properties": {
                        "error": {"type": "string"},
                        "message": {"type": "string"},
                        "field": NULLABLE_STRING,
                        "details": {"nullable": True},
                    },
                },
                "CampaignSummary": campaign_summary,
                "CampaignList": {
                    "type": "object",
                    "required": ["campaigns"],
                    "properties": {
                        "campaigns": {
                            "type": "array",
                            "items": {"$ref": "#/components/schemas/CampaignSummary"},
                        }
                    },
                },
                "Campaign": campaign,
                "Arm": arm,
                "ArmList": {
                    "type": "object",
                    "required": ["arms"],
                    "properties": {
                        "arms": {"type": "array", "items": {"$ref": "#/components/schemas/Arm"}}
                    },
                },
                "ImportResult": {
                    "type": "object",
                    "required": ["imported"],
                    "properties": {
                        "imported": {"type": "integer"},
                        "randomized": {"type": "integer"},
                        "messages": {"type": "integer"},
                        "suppressed": {
                            "type": "integer",
                            "description": "rows skipped: the contact is on the council's "
                            "suppression list",
                        },
                        "screened_out": {
                            "type": "integer",
                            "description": "rows whose imported answers the campaign's "
                            "eligibility rules screened out (no arm, no message)",
                        },
                    },
                },
                "Enrolment": enrolment,
                "Assignment": assignment,
                "EventResult": {
                    "type": "object",
                    "required": ["recorded", "kind"],
                    "properties": {
                        "recorded": {"type": "boolean"},
                        "kind": {"type": "string"},
                        "external_ref": NULLABLE_STRING,
                    },
                },
                "Monitoring": monitoring,
            },
        },
    }
