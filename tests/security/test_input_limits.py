"""Findings: arm weights such as 0.999 or 1e-300 passed validation and then broke every
enrolment with a 500; NaN, huge numbers and deep nesting in design files and forms gave
27 unhandled 500s; CR/LF inside contact fields were stored and later crashed SMTP sends.
Each form of the console and the participant pages, the design file (CLI and upload) and
the API are fed the same hostile values: never a 500, and a message that names the field
(by its design-file path) or the row."""

from __future__ import annotations

import io
import re
from html.parser import HTMLParser
from pathlib import Path

import pytest

from nudge_app.extensions import db

CATALOG = Path(__file__).resolve().parents[2] / "experiments" / "catalog"

HOSTILE = ["nan", "NaN", "inf", "-inf", "1e999", "-1e308", "9" * 40, "1e-300", "0.999", "-1",
           "\r\n=1", "\x00", "٣", "1_000", "0x10", " "]  # fmt: skip


class _Form(HTMLParser):
    """The fields of the first POST form on a page with their current values."""

    def __init__(self, action_re: str):
        super().__init__()
        self.action_re, self.inside, self.fields, self.select, self.textarea = (
            action_re,
            False,
            {},
            None,
            None,
        )

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if (
            tag == "form"
            and a.get("method") == "post"
            and re.search(self.action_re, a.get("action", ""))
        ):
            self.inside = True
        if not self.inside or "name" not in a:
            return
        if tag == "input":
            if a.get("type") in ("checkbox", "radio") and "checked" not in a:
                return
            self.fields.setdefault(a["name"], a.get("value", "on"))
        elif tag == "select":
            self.select = a["name"]
        elif tag == "textarea":
            self.textarea = a["name"]
            self.fields[a["name"]] = ""

    def handle_data(self, data):
        if self.textarea:
            self.fields[self.textarea] += data

    def handle_endtag(self, tag):
        if tag == "form":
            self.inside = False
        if tag == "textarea":
            self.textarea = None
        if tag == "select":
            self.select = None

    def handle_startendtag(self, tag, attrs):
        self.handle_starttag(tag, attrs)


def _form(html: str, action_re: str) -> dict:
    parser = _Form(action_re)
    parser.feed(html)
    selected = re.findall(r'<select[^>]*name="([^"]+)"[^>]*>(.*?)</select>', html, re.S)
    for name, options in selected:
        chosen = (
            re.search(r'<option[^>]*value="([^"]*)"[^>]*selected', options)
            or re.search(r"<option[^>]*selected[^>]*>([^<]*)<", options)
            or re.search(r'<option(?: value="([^"]*)")?[^>]*>([^<]*)<', options)
        )
        parser.fields.setdefault(name, next(g for g in chosen.groups() if g is not None))
    return parser.fields


NUMERIC = ("weight", "alpha", "power", "baseline_rate", "minimum_effect", "seed",
           "planned_sample_size", "block_multiples", "offset_hours", "expires_after_hours")  # fmt: skip


def test_console_design_forms_never_answer_500(signed_in_designer, make_campaign):
    client, council, _ = signed_in_designer
    campaign = make_campaign(council)
    slug = campaign.slug
    pages = {
        f"/campaigns/{slug}/edit": r"/edit$",
        f"/campaigns/{slug}/arms/control": r"/arms/",
        f"/campaigns/{slug}/follow-ups/reminder": r"/follow-ups/",
    }
    posts = 0
    for path, action in pages.items():
        page = client.get(path)
        if page.status_code == 404:
            continue
        fields = _form(page.get_data(as_text=True), action)
        assert "csrf_token" in fields, path
        for name in [n for n in fields if n in NUMERIC or "cut" in n]:
            for value in HOSTILE:
                answer = client.post(path, data={**fields, name: value})
                posts += 1
                assert answer.status_code in (302, 422), (path, name, value, answer.status_code)
                if answer.status_code == 422:
                    body = answer.get_data(as_text=True)
                    assert "nothing was saved" in body and "error-summary" in body, (path, name)
    assert posts > 150


def _design(path: str, value) -> str:
    """The catalog design with the field at `path` (a.b or arms[0].c) set to `value`."""
    import tomllib

    import tomli_w

    tables = tomllib.loads(CATALOG.joinpath("self-efficacy-cleanup.toml").read_text("utf-8"))
    *parents, last = re.findall(r"[a-z_]+|\[\d+\]", path)
    where = tables
    for part in parents:
        where = where[int(part[1:-1])] if part.startswith("[") else where.setdefault(part, {})
    where[last] = value
    return tomli_w.dumps(tables)


def _deep(levels: int) -> str:
    text = CATALOG.joinpath("self-efficacy-cleanup.toml").read_text("utf-8")
    return "deep = " + "[" * levels + "]" * levels + "\n" + text


BAD_DESIGNS = [
    (_design("arms[0].weight", 0.999), "arms[0].weight"),
    (_design("arms[1].weight", 1e-300), "arms[1].weight"),
    (_design("arms[0].weight", float("nan")), "arms[0].weight"),
    (_design("arms[1].weight", float("inf")), "arms[1].weight"),
    (_design("arms[0].weight", 1e308), "arms[0].weight"),
    (_design("campaign.planned_sample_size", 10**20), "campaign.planned_sample_size"),
    (_design("campaign.planned_sample_size", float("nan")), "campaign.planned_sample_size"),
    (_design("campaign.retention_days", -1), "campaign.retention_days"),
    (_design("randomization.seed", 10**26), "randomization.seed"),
    (_design("randomization.seed", float("-inf")), "randomization.seed"),
    (_design("analysis.alpha", float("nan")), "analysis.alpha"),
    (_design("analysis.alpha", float("-inf")), "analysis.alpha"),
    (_design("analysis.power", 1e300), "analysis.power"),
    (_deep(40), "deep"),
    (_deep(5000), "nested too deeply"),
]
IDS = ["weight-0.999", "weight-1e-300", "weight-nan", "weight-inf", "weight-1e308",
       "planned-1e20", "planned-nan", "retention-negative", "seed-1e26", "seed-inf",
       "alpha-nan", "alpha-inf", "power-1e300", "deep-40", "deep-5000"]  # fmt: skip


@pytest.mark.parametrize("text,where", BAD_DESIGNS, ids=IDS)
def test_hostile_design_files_are_refused_naming_the_field(
    text, where, signed_in_designer, make_campaign, runner, tmp_path
):
    from nudge_app.cli import main as cli

    path = tmp_path / "design.toml"
    path.write_text(text)
    result = runner.invoke(cli, ["campaign", "validate", str(path)])
    assert result.exit_code == 1 and where in result.output and "Traceback" not in result.output
    client, council, token = signed_in_designer
    campaign = make_campaign(council)
    upload = client.post(
        f"/campaigns/{campaign.slug}/design",
        data={"csrf_token": token, "design_file": (io.BytesIO(text.encode()), "d.toml")},
        content_type="multipart/form-data",
    )
    assert upload.status_code == 422 and where in upload.get_data(as_text=True)


def test_participant_forms_never_answer_500(app, council, make_campaign):
    from nudge_app.services import enrolment

    campaign = make_campaign(council, status="running")
    person = enrolment.new_participant(campaign, first_name="Ann", email="ann@example.org")
    db.session.commit()
    token = enrolment.token_of(person)
    client = app.test_client()
    client.post(f"/p/{token}/consent", data={"decision": "agree"})
    for value in HOSTILE:
        for field in ("age", "birth_year", "se_safety", "gender", "individual_coproduction"):
            answers = {"age": "40", "gender": "woman", "se_safety": "3", "se_environment": "3",
                       "se_health": "3", field: value}  # fmt: skip
            answer = client.post(f"/p/{token}/baseline", data=answers)
            assert answer.status_code in (303, 422), (field, value, answer.status_code)
    client.post(f"/p/{token}/baseline", data={"age": "40", "gender": "woman", "se_safety": "3",
                                              "se_environment": "3", "se_health": "3"})  # fmt: skip
    for value in ("ann@example.org\r\nBcc: x@example.org", "a\x00@example.org", "x" * 300):
        answer = client.post(f"/p/{token}/join", data={"contact": "email", "email": value})
        assert answer.status_code == 422, value
    for value in HOSTILE:
        answer = client.post(f"/p/{token}/follow-up", data={"participated": "yes", "se_safety": value,
                                                            "se_environment": "1", "se_health": "1"})  # fmt: skip
        assert answer.status_code in (200, 303, 422), value  # 200: already answered


def test_contacts_with_line_breaks_or_control_characters_are_refused_naming_the_row(
    council, make_campaign
):
    from nudge_app.services.participants_import import ImportRejected, import_csv

    campaign = make_campaign(council)
    bad = (
        "external_ref,first_name,email,phone\n"
        "R1,Ann,ann@example.org,\n"
        'R2,"Bob\r\nBcc: all@example.org",bob@example.org,\n'
        "R3,Cy\x07,cy@example.org,\n"
        'R4,Di,"di@example.org\nX-Header: 1",\n'
        "R5,Ed,ed@example.org,+44770090\x0b0001\n"
    )
    with pytest.raises(ImportRejected) as refused:
        import_csv(campaign, bad)
    where = {(p.row, p.column) for p in refused.value.problems if "line break" in p.message}
    assert where == {(3, "first_name"), (4, "first_name"), (5, "email"), (6, "phone")}


HOSTILE_JSON = [
    '{"external_ref": "R9", "email": "a@example.org", "age": NaN}',
    '{"external_ref": "R9", "email": "a@example.org", "age": Infinity}',
    '{"external_ref": "R9", "email": "a@example.org", "age": 1e999}',
    '{"external_ref": "R9", "email": "a@example.org", "age": ' + "9" * 5000 + "}",
    '{"external_ref": ' + "[" * 100000 + "]" * 100000 + "}",
    '{"a": {"b": {"c": {"d": {"e": {"f": {"g": {"h": {"i": 1}}}}}}}}}',
    '{"external_ref": "R9", "email": "a@example.org", "age": 1e300}',
    '{"external_ref": "R9", "first_name": "A\\r\\nB", "email": "a@example.org"}',
    '{"external_ref": "R9", "email": "a@example.org\\r\\nBcc: b@example.org"}',
    '{"external_ref": "R9", "email": "a@example.org", "phone": "+4477\\u0000"}',
    "[1, 2]",
    '"text"',
]


@pytest.mark.parametrize("body", HOSTILE_JSON, ids=range(len(HOSTILE_JSON)))
def test_hostile_api_bodies_get_a_4xx_naming_the_field(app, council, make_campaign, body):
    from nudge_app.services.staff import create_token

    campaign = make_campaign(council, "council-consultation", status="running")
    secret = create_token(council, "t").secret
    db.session.commit()
    client = app.test_client()
    headers = {"Authorization": f"Bearer {secret}", "Content-Type": "application/json"}
    for path in ("enrolments", "events"):
        answer = client.post(
            f"/api/v1/campaigns/{campaign.slug}/{path}", data=body, headers=headers
        )
        assert 400 <= answer.status_code < 500, (path, answer.status_code)
        error = answer.get_json()
        assert error["error"] and error["message"]


CONTACTS = [
    ({"first_name": "A\r\nB", "email": "a@example.org"}, "first_name"),
    ({"email": "a@example.org\r\nBcc: b@example.org"}, "email"),
    ({"email": "a@example.org", "phone": "+4477\u0000"}, "phone"),
]


@pytest.mark.parametrize("fields,bad", CONTACTS, ids=[b for _, b in CONTACTS])
def test_api_enrolment_refuses_control_characters_naming_the_field(
    app, council, make_campaign, fields, bad
):
    from nudge_app.services.staff import create_token

    campaign = make_campaign(council, "council-consultation", status="running")
    secret = create_token(council, "t").secret
    db.session.commit()
    answer = app.test_client().post(
        f"/api/v1/campaigns/{campaign.slug}/enrolments",
        json={"external_ref": "R9", **fields},
        headers={"Authorization": f"Bearer {secret}"},
    )
    assert answer.status_code == 422 and bad in answer.get_json()["details"]["fields"]
