"""`/healthz` reports the schema revision and the database kind."""

from __future__ import annotations


def test_healthz_answers_with_revision_and_database_kind(client, database_url, schema_head):
    response = client.get("/healthz")
    assert response.status_code == 200
    body = response.get_json()
    assert body["schema_revision"] == schema_head
    assert body["database"] == database_url.split(":")[0].split("+")[0]


def test_healthz_on_an_unmigrated_database_says_so(tmp_path):
    from nudge_app import create_app

    app = create_app(
        {
            "SQLALCHEMY_DATABASE_URI": f"sqlite:///{tmp_path / 'empty.sqlite3'}",
            "INSTANCE_PATH": str(tmp_path),
            "TESTING": True,
        }
    )
    response = app.test_client().get("/healthz")
    assert response.status_code == 503
    assert response.get_json()["schema_revision"] is None


def test_unknown_page_is_a_clean_404(client):
    response = client.get("/no/such/page")
    assert response.status_code == 404
    assert b"Traceback" not in response.data
    api = client.get("/api/v1/no-such-thing")
    assert api.status_code == 404
    assert api.get_json()["error"] == "not_found"
