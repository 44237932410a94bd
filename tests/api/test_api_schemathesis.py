"""Schemathesis against /api/v1/openapi.json on a live server with a valid token: no 5xx,
no response outside the documented schema, no route that ignores missing auth."""

from __future__ import annotations

import pytest

pytestmark = [
    pytest.mark.slow,
    # schemathesis 3 still uses jsonschema's deprecated RefResolver.
    pytest.mark.filterwarnings("ignore::DeprecationWarning"),
]


def test_api_conforms_to_its_openapi_document(
    live_server, council, make_campaign, api_token, db_session
):
    import hypothesis
    import requests
    import schemathesis
    from hypothesis.internal.conjecture.utils import many
    from schemathesis.checks import not_a_server_error
    from schemathesis.runner import events, from_schema
    from schemathesis.specs.openapi.checks import (
        content_type_conformance,
        ignored_auth,
        response_headers_conformance,
        response_schema_conformance,
        status_code_conformance,
    )

    from nudge_app.services.participants_import import import_csv

    if not hasattr(many, "more"):
        pytest.fail(
            f"hypothesis {hypothesis.__version__} removed many.more(), which "
            "hypothesis-jsonschema (schemathesis 3's data generator) calls: pin "
            "hypothesis<=6.170.0 in pyproject's dev extra"
        )

    running = make_campaign(council, "council-consultation", status="running")
    import_csv(running, "external_ref,first_name,email,age\nR1,Ann,ann@example.org,40\n")
    db_session.commit()
    headers = api_token(council)
    doc = requests.get(f"{live_server.url}/api/v1/openapi.json", timeout=10).json()
    # Point the generated paths at real objects too, not only at random slugs.
    for item in doc["paths"].values():
        for param in item.get("parameters", []):
            if param["name"] == "slug":
                param["schema"] = {"type": "string", "enum": [running.slug, "no-such-campaign"]}
            if param["name"] == "external_ref":
                param["schema"] = {"type": "string", "enum": ["R1", "nobody"]}
    _register_csv_serializer(schemathesis)
    schema = schemathesis.from_dict(doc, base_url=f"{live_server.url}/api/v1")
    runner = from_schema(
        schema,
        checks=(
            not_a_server_error,
            status_code_conformance,
            content_type_conformance,
            response_headers_conformance,
            response_schema_conformance,
            ignored_auth,
        ),
        headers=headers,
        hypothesis_settings=hypothesis.settings(
            max_examples=25,
            deadline=None,
            derandomize=True,
            suppress_health_check=list(hypothesis.HealthCheck),
        ),
    )
    failures, errors, operations = [], [], 0
    for event in runner.execute():
        if isinstance(event, events.AfterExecution):
            operations += 1
            for check in event.result.checks:
                if check.value.name == "FAILURE":
                    failures.append(f"{event.result.verbose_name}: {check.name}: {check.message}")
            for error in event.result.errors:
                errors.append(f"{event.result.verbose_name}: {error.exception}")
    assert operations >= 10
    assert not errors, "\n".join(errors[:10])
    assert not failures, "\n".join(sorted(set(failures))[:20])


def _register_csv_serializer(schemathesis) -> None:
    """Send generated text/csv bodies as they are (schemathesis has no CSV serializer)."""

    def payload(value) -> dict:
        if isinstance(value, bytes):
            return {"data": value}
        return {"data": str(value).encode("utf-8", "surrogatepass")}

    @schemathesis.serializer("text/csv")
    class CSVSerializer:
        def as_requests(self, context, value):
            return payload(value)

        def as_werkzeug(self, context, value):
            return payload(value)
