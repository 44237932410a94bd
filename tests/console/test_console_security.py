"""Security of the console and the API: anonymous access, tenancy (404), CSRF, roles,
contact details hidden from evaluators, token revocation, login throttling."""

from __future__ import annotations

import io

import pytest
from sqlalchemy import select

from nudge_app.models import ApiToken
from nudge_app.services.staff import create_token

CSV = "external_ref,first_name,email,phone,age\n" + "".join(
    f"R{i},Ann{i},ann{i}@example.org,+4477009000{i:02d},{30 + i}\n" for i in range(6)
)


def _url_args(rule, slug: str) -> dict:
    values = {
        "slug": slug,
        "key": "control",
        "user_id": 1,
        "token_id": 1,
        "report_id": "0" * 32,
        "step": "pause",
        "filename": "console.css",
        "campaign_slug": slug,
        "ref": "R1",
    }
    return {name: values[name] for name in rule.arguments}


def _routes(app, prefix: str):
    for rule in app.url_map.iter_rules():
        if rule.endpoint.startswith(prefix):
            yield rule


def test_every_console_and_api_route_refuses_anonymous_access(app, council, make_campaign):
    campaign = make_campaign(council)
    client = app.test_client()
    public = {"console.login", "console.logout", "console.static", "api.openapi"}
    checked = 0
    for rule in list(_routes(app, "console.")) + list(_routes(app, "api.")):
        if rule.endpoint in public:
            continue
        url = rule.build(_url_args(rule, campaign.slug))[1]
        for method in sorted(rule.methods - {"HEAD", "OPTIONS"}):
            response = client.open(url, method=method)
            if rule.endpoint.startswith("api."):
                assert response.status_code == 401, (method, url)
                assert response.get_json()["error"] in ("unauthorized", "invalid_token")
            else:
                # A POST without a session has no CSRF token either: 400 refuses it first.
                allowed = (302, 401, 400) if method == "POST" else (302, 401)
                assert response.status_code in allowed, (method, url, response.status_code)
                if response.status_code == 302:
                    assert "/login" in response.headers["Location"]
            checked += 1
    assert checked > 30
    # A made-up bearer token is refused the same way.
    response = client.get("/api/v1/campaigns", headers={"Authorization": "Bearer nudge_fake"})
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"].startswith("Bearer")


def test_another_councils_objects_answer_404(
    app, make_council, make_campaign, signed_in, db_session
):
    ours = make_council("ours")
    theirs = make_council("theirs")
    their_campaign = make_campaign(theirs)
    slug = their_campaign.slug
    client, _, token = signed_in(ours, "admin")
    for url in (
        f"/campaigns/{slug}",
        f"/campaigns/{slug}/edit",
        f"/campaigns/{slug}/preview",
        f"/campaigns/{slug}/participants",
        f"/campaigns/{slug}/participants.csv",
        f"/campaigns/{slug}/monitor",
        f"/campaigns/{slug}/design.toml",
        f"/campaigns/{slug}/arms/control",
        f"/reports/{slug}",
    ):
        assert client.get(url).status_code == 404, url
    for url in (f"/campaigns/{slug}/launch", f"/campaigns/{slug}/arms/control/delete"):
        assert client.post(url, data={"csrf_token": token}).status_code == 404, url
    their_admin_token = create_token(theirs, "theirs")
    db_session.commit()
    assert (
        client.post(
            f"/admin/tokens/{their_admin_token.token.id}/revoke", data={"csrf_token": token}
        ).status_code
        == 404
    )
    assert db_session.get(ApiToken, their_admin_token.token.id).revoked_at is None
    our_token = create_token(ours, "ours").secret
    db_session.commit()
    headers = {"Authorization": f"Bearer {our_token}"}
    api = app.test_client()
    for url in (f"/api/v1/campaigns/{slug}", f"/api/v1/campaigns/{slug}/monitoring"):
        response = api.get(url, headers=headers)
        assert response.status_code == 404 and response.get_json()["error"] == "not_found"
    listed = api.get("/api/v1/campaigns", headers=headers).get_json()
    assert listed == {"campaigns": []}


def test_forms_without_csrf_token_are_refused(signed_in, council, make_campaign, db_session):
    campaign = make_campaign(council)
    client, _, _ = signed_in(council, "designer")
    response = client.post(f"/campaigns/{campaign.slug}/launch")
    assert response.status_code == 400
    response = client.post("/campaigns/new", data={"source": "catalog", "catalog": "x"})
    assert response.status_code == 400
    db_session.expire_all()
    assert campaign.status == "draft"


def test_evaluator_cannot_edit_launch_import_or_see_contacts(
    signed_in, council, make_campaign, db_session, app
):
    from nudge_app.services.participants_import import import_csv

    campaign = make_campaign(council)
    import_csv(campaign, CSV)
    db_session.commit()
    client, _, token = signed_in(council, "evaluator")
    slug = campaign.slug
    assert client.get(f"/campaigns/{slug}/edit").status_code == 403
    assert client.get(f"/campaigns/{slug}/arms/control").status_code == 403
    assert client.post(f"/campaigns/{slug}/launch", data={"csrf_token": token}).status_code == 403
    assert client.get("/campaigns/new").status_code == 403
    assert client.get("/admin/users").status_code == 403
    assert client.get("/audit").status_code == 403
    upload = client.post(
        f"/campaigns/{slug}/participants",
        data={"csrf_token": token, "file": (io.BytesIO(CSV.encode()), "p.csv")},
        content_type="multipart/form-data",
    )
    assert upload.status_code == 403
    db_session.expire_all()
    assert campaign.status == "draft"
    pages = [
        client.get(f"/campaigns/{slug}/participants").get_data(as_text=True),
        client.get(f"/campaigns/{slug}/participants.csv").get_data(as_text=True),
        client.get(f"/campaigns/{slug}/preview?participant=R1").get_data(as_text=True),
        client.get(f"/campaigns/{slug}").get_data(as_text=True),
    ]
    for page in pages:
        assert "ann1@example.org" not in page and "Ann1" not in page
        assert "+447700900001" not in page
    assert "R1" in pages[0] and "R1" in pages[1]
    assert "email" not in pages[1].splitlines()[0]
    # A designer does see them.
    designer, _, _ = signed_in(council, "designer")
    assert "ann1@example.org" in designer.get(f"/campaigns/{slug}/participants.csv").get_data(
        as_text=True
    )


def test_revoked_token_stops_working_at_once(app, signed_in, council, make_campaign, db_session):
    make_campaign(council)
    client, _, token = signed_in(council, "admin")
    created = client.post("/admin/tokens", data={"csrf_token": token, "name": "crm"})
    assert created.status_code == 201
    page = created.get_data(as_text=True)
    secret = page.split('id="new-token">')[1].split("<")[0]
    headers = {"Authorization": f"Bearer {secret}"}
    api = app.test_client()
    assert api.get("/api/v1/campaigns", headers=headers).status_code == 200
    token_id = db_session.scalar(select(ApiToken.id).where(ApiToken.name == "crm"))
    db_session.commit()
    revoked = client.post(f"/admin/tokens/{token_id}/revoke", data={"csrf_token": token})
    assert revoked.status_code == 302
    response = api.get("/api/v1/campaigns", headers=headers)
    assert response.status_code == 401 and response.get_json()["error"] == "invalid_token"
    assert secret not in client.get("/admin/tokens").get_data(as_text=True)


def test_ten_failed_logins_are_throttled(csrf_app, council, make_user, console):
    user = make_user(council, "designer")
    client = csrf_app.test_client()
    for _ in range(10):
        assert console.sign_in(client, user.email, "wrong password!").status_code == 401
    throttled = console.sign_in(client, user.email, console.password)
    assert throttled.status_code == 429
    assert "Too many failed sign-in attempts" in throttled.get_data(as_text=True)
    assert int(throttled.headers["Retry-After"]) > 0


def test_failures_from_one_client_are_throttled_across_emails(csrf_app, council, console):
    client = csrf_app.test_client()
    for i in range(10):
        assert console.sign_in(client, f"nobody{i}@example.org", "wrong").status_code == 401
    assert console.sign_in(client, "someone@example.org", "wrong").status_code == 429


@pytest.mark.parametrize("target", ["https://evil.example/", "//evil.example/x"])
def test_login_never_redirects_off_site(csrf_app, council, make_user, console, target):
    user = make_user(council, "designer")
    client = csrf_app.test_client()
    token = console.csrf(client)
    response = client.post(
        "/login",
        data={
            "email": user.email,
            "password": console.password,
            "csrf_token": token,
            "next": target,
        },
    )
    assert response.status_code == 302
    assert response.headers["Location"] == "/"


def test_audit_log_readable_and_exportable_by_admin(signed_in, council, make_campaign):
    campaign = make_campaign(council)
    client, _, token = signed_in(council, "admin")
    client.post(f"/campaigns/{campaign.slug}/launch", data={"csrf_token": token, "confirm": "y"})
    page = client.get("/audit").get_data(as_text=True)
    assert "campaign.launch" in page and "campaign.create" in page
    export = client.get("/audit.csv").get_data(as_text=True)
    header, *rows = export.splitlines()
    assert header == "at,actor,action,object_type,object_id,before,after"
    assert any(",campaign.launch," in row and '""status"": ""draft""' in row for row in rows)


def test_every_console_form_refuses_a_post_without_csrf_token(
    app, signed_in, council, make_campaign, db_session
):
    campaign = make_campaign(council)
    client, user, _ = signed_in(council, "admin")
    posts = 0
    for rule in _routes(app, "console."):
        if "POST" not in rule.methods or rule.endpoint == "console.login":
            continue
        url = rule.build(_url_args(rule, campaign.slug) | {"user_id": user.id})[1]
        response = client.post(url, data={"name": "x", "email": "a@example.org"})
        assert response.status_code == 400, (url, response.status_code)
        posts += 1
    assert posts >= 12
    db_session.expire_all()
    assert campaign.status == "draft"
    assert client.get("/").status_code == 200  # still signed in: logout refused too


def test_other_councils_users_are_invisible_and_untouchable(
    make_council, signed_in, make_user, db_session
):
    ours, theirs = make_council("ours"), make_council("theirs")
    stranger = make_user(theirs, "designer", email="stranger@theirs.gov.uk")
    client, _, token = signed_in(ours, "admin")
    assert "stranger@theirs.gov.uk" not in client.get("/admin/users").get_data(as_text=True)
    response = client.post(
        f"/admin/users/{stranger.id}", data={"csrf_token": token, "role": "admin"}
    )
    assert response.status_code == 404
    db_session.expire_all()
    assert stranger.role == "designer"


def test_upload_over_the_size_limit_gets_a_clear_message(
    csrf_app, signed_in, council, make_campaign
):
    campaign = make_campaign(council)
    client, _, token = signed_in(council, "designer")
    csrf_app.config["MAX_CONTENT_LENGTH"] = 2_000
    response = client.post(
        f"/campaigns/{campaign.slug}/participants",
        data={"csrf_token": token, "file": (io.BytesIO(b"x" * 5_000), "big.csv")},
        content_type="multipart/form-data",
    )
    assert response.status_code == 413
    assert "The file is too large: the limit is" in response.get_data(as_text=True)
