"""The `nudge` CLI for councils and campaign design files, run as a user would."""

from __future__ import annotations

import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
from click.testing import CliRunner

from experiments.design import load_design, parse_design
from nudge_app.cli import main

ROOT = Path(__file__).resolve().parents[1]
CATALOG = ROOT / "experiments" / "catalog"


def test_help_lists_commands_without_importing_the_web_app():
    code = (
        "import sys; from click.testing import CliRunner; from nudge_app.cli import main; "
        "r = CliRunner().invoke(main, ['--help']); assert r.exit_code == 0, r.output; "
        "assert 'randomize' in r.output and 'campaign' in r.output; "
        "assert 'flask' not in sys.modules and 'sqlalchemy' not in sys.modules, 'heavy import'"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=ROOT)


def test_campaign_validate_does_not_import_the_web_app(tmp_path):
    code = (
        "import sys; from click.testing import CliRunner; from nudge_app.cli import main; "
        f"r = CliRunner().invoke(main, ['campaign', 'validate', {str(CATALOG / 'self-efficacy-cleanup.toml')!r}]); "
        "assert r.exit_code == 0, r.output; assert 'flask' not in sys.modules"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=ROOT)


@pytest.mark.parametrize("path", sorted(CATALOG.glob("*.toml")), ids=lambda p: p.stem)
def test_validate_accepts_catalog(path):
    result = CliRunner().invoke(main, ["campaign", "validate", str(path)])
    assert result.exit_code == 0, result.output
    assert "valid" in result.output


def test_validate_lists_every_problem_with_its_path_and_no_traceback(tmp_path):
    data = tomllib.loads((CATALOG / "self-efficacy-cleanup.toml").read_text())
    text = (CATALOG / "self-efficacy-cleanup.toml").read_text()
    text = text.replace(
        'weight = 1\nmechanism = "Self-efficacy', 'weight = -2\nmechanism = "Self-efficacy'
    )
    text = text.replace('enrolment_mode = "survey-first"', 'enrolment_mode = "door-to-door"')
    bad = tmp_path / "bad.toml"
    bad.write_text(text)
    assert data  # the original parses
    result = CliRunner().invoke(main, ["campaign", "validate", str(bad)])
    assert result.exit_code == 1
    assert "arms[1].weight: must be greater than 0" in result.output
    assert "campaign.enrolment_mode: unknown value 'door-to-door'" in result.output
    assert "Traceback" not in result.output


def test_validate_refuses_a_survey_step_without_its_survey_link(tmp_path):
    text = (CATALOG / "council-consultation.toml").read_text()
    assert text.count("{survey_link}") == 1
    bad = tmp_path / "no-survey-link.toml"
    bad.write_text(text.replace("{survey_link}", "{link}"))
    result = CliRunner().invoke(main, ["campaign", "validate", str(bad)])
    assert result.exit_code == 1
    assert "survey step 'follow-up-survey' must include {survey_link}" in result.output
    assert "Traceback" not in result.output


def test_validate_missing_file_is_a_clear_error(tmp_path):
    result = CliRunner().invoke(main, ["campaign", "validate", str(tmp_path / "nope.toml")])
    assert result.exit_code == 1
    assert "cannot read" in result.output


def test_council_and_campaign_create_export_round_trip(runner, tmp_path):
    result = runner.invoke(
        main,
        [
            "council",
            "create",
            "northshire",
            "--name",
            "Northshire Council",
            "--timezone",
            "Europe/London",
        ],
    )
    assert result.exit_code == 0, result.output
    path = CATALOG / "self-efficacy-cleanup.toml"
    result = runner.invoke(main, ["campaign", "create", str(path), "--council", "northshire"])
    assert result.exit_code == 0, result.output
    slug = result.output.split()[-1]
    assert slug == "self-efficacy-cleanup"
    exported = runner.invoke(main, ["campaign", "export", slug])
    assert exported.exit_code == 0, exported.output
    assert parse_design(exported.output) == load_design(str(path))
    # Creating from the same file again makes a second draft with its own slug.
    again = runner.invoke(main, ["campaign", "create", str(path), "--council", "northshire"])
    assert again.output.split()[-1] == "self-efficacy-cleanup-2"


def test_council_create_refuses_bad_timezone_and_duplicates(runner):
    bad = runner.invoke(main, ["council", "create", "x", "--name", "X", "--timezone", "Mars/Base"])
    assert bad.exit_code != 0 and "not a known IANA zone" in bad.output
    assert runner.invoke(main, ["council", "create", "x", "--name", "X"]).exit_code == 0
    dup = runner.invoke(main, ["council", "create", "x", "--name", "X"])
    assert dup.exit_code != 0 and "already exists" in dup.output


def test_campaign_create_for_unknown_council(runner):
    path = CATALOG / "self-efficacy-cleanup.toml"
    result = runner.invoke(main, ["campaign", "create", str(path), "--council", "nowhere"])
    assert result.exit_code != 0
    assert "no council with slug 'nowhere'" in result.output


def test_lifecycle_from_the_command_line(runner, council, make_campaign, db_session):
    from nudge_app.models import Campaign

    campaign = make_campaign(council)
    slug = campaign.slug
    for step, status in (
        ("launch", "running"),
        ("pause", "paused"),
        ("resume", "running"),
        ("close", "closed"),
    ):
        result = runner.invoke(main, ["campaign", step, slug])
        assert result.exit_code == 0, result.output
        assert result.output.strip().endswith(status)
    db_session.rollback()  # end the test's read snapshot to see the CLI's commits
    stored = db_session.get(Campaign, campaign.id)
    assert stored.status == "closed" and stored.design_hash and stored.launched_at
    refused = runner.invoke(main, ["campaign", "resume", slug])
    assert refused.exit_code != 0 and "it is closed" in refused.output


def test_launch_freezes_the_design_and_records_its_hash(council, make_campaign, db_session):
    from nudge_app.models import AuditEntry
    from nudge_app.services.campaigns import CampaignLocked, design_of, update_design

    campaign = make_campaign(council, status="running")
    design = design_of(campaign)
    assert campaign.design_hash == design.design_hash()
    design.arms[1].messages.page = "Something else"
    with pytest.raises(CampaignLocked, match="frozen"):
        update_design(campaign, design)
    actions = [e.action for e in db_session.query(AuditEntry).order_by(AuditEntry.id)]
    assert actions[-2:] == ["campaign.create", "campaign.launch"]


def test_draft_edit_is_audited_with_before_and_after(council, make_campaign, db_session):
    from nudge_app.models import AuditEntry
    from nudge_app.services.campaigns import design_of, update_design

    campaign = make_campaign(council)
    design = design_of(campaign)
    design.arms[1].weight = 2
    update_design(campaign, design, actor="test")
    db_session.commit()
    entry = db_session.query(AuditEntry).filter_by(action="campaign.edit").one()
    assert entry.before["arms"][1]["weight"] == 1
    assert entry.after["arms"][1]["weight"] == 2


def test_db_upgrade_on_a_new_sqlite_file(tmp_path, monkeypatch, schema_head):
    db = tmp_path / "fresh" / "nudge.sqlite3"
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{db}")
    result = CliRunner().invoke(main, ["db", "upgrade"])
    assert result.exit_code == 0, result.output
    assert schema_head in result.output
    assert db.exists()


def test_production_refuses_to_start_without_secret_key(monkeypatch, tmp_path):
    monkeypatch.setenv("NUDGE_ENV", "production")
    monkeypatch.delenv("SECRET_KEY", raising=False)
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{tmp_path / 'x.sqlite3'}")
    result = CliRunner().invoke(main, ["council", "list"])
    assert result.exit_code != 0
    assert "SECRET_KEY" in result.output


def test_validate_refuses_a_bad_eligibility_rule_quoting_it(tmp_path):
    import tomli_w

    data = tomllib.loads((CATALOG / "self-efficacy-cleanup.toml").read_text())
    data["eligibility"] = {"require": ["age >= 18", "age.__class__ >= 1"]}
    path = tmp_path / "design.toml"
    path.write_text(tomli_w.dumps(data))
    result = CliRunner().invoke(main, ["campaign", "validate", str(path)])
    assert result.exit_code == 1
    assert (
        'eligibility.require[1]: rule "age.__class__ >= 1": unexpected character' in result.output
    )
    data["eligibility"] = {"require": ["individual_coproduction >= 1"]}
    path.write_text(tomli_w.dumps(data))
    result = CliRunner().invoke(main, ["campaign", "validate", str(path)])
    assert result.exit_code == 0, result.output
