"""`nudge demo`: the demo council, admin login and campaign; residents, follow-ups, report."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import func, select

from nudge_app.cli import main


def _demo(runner, tmp_path, *args):
    out = tmp_path / "demo-out"
    result = runner.invoke(
        main,
        ["demo", "--no-serve", "--participants", "60", "--seed", "3", "--out", str(out), *args],
    )
    return result, out


def _password(output: str) -> str:
    line = next(line for line in output.splitlines() if line.strip().startswith("password:"))
    return line.split(":", 1)[1].strip()


def test_demo_creates_council_admin_and_a_launched_campaign(runner, tmp_path, app):
    from nudge_app.extensions import db
    from nudge_app.models import Campaign, Council, StaffUser
    from nudge_app.security import verify_password

    result, _ = _demo(runner, tmp_path)
    assert result.exit_code == 0, result.output
    council = db.session.scalar(select(Council).where(Council.slug == "demo"))
    assert council is not None
    user = db.session.scalar(select(StaffUser).where(StaffUser.council_id == council.id))
    assert user.role == "admin" and user.email in result.output
    assert verify_password(user.password_hash, _password(result.output))
    campaign = db.session.scalar(select(Campaign).where(Campaign.council_id == council.id))
    assert campaign.slug == "self-efficacy-cleanup"
    assert campaign.status == "running" and campaign.design_hash


def test_a_second_run_adds_a_campaign_and_prints_a_new_password(runner, tmp_path, app):
    from nudge_app.extensions import db
    from nudge_app.models import Campaign, StaffUser
    from nudge_app.security import verify_password

    first, _ = _demo(runner, tmp_path)
    second, _ = _demo(runner, tmp_path)
    assert first.exit_code == 0 and second.exit_code == 0, second.output
    assert _password(first.output) != _password(second.output)
    db.session.expire_all()
    user = db.session.scalar(select(StaffUser))
    assert verify_password(user.password_hash, _password(second.output))
    assert not verify_password(user.password_hash, _password(first.output))
    assert db.session.scalar(select(func.count()).select_from(Campaign)) == 2


def test_unknown_catalog_campaign_is_refused_clearly(runner, tmp_path, app):
    result, _ = _demo(runner, tmp_path, "--campaign", "no-such-design")
    assert result.exit_code != 0
    assert "no catalog campaign 'no-such-design'" in result.output
    assert "self-efficacy-cleanup" in result.output
    assert "Traceback" not in result.output


def test_too_few_participants_is_refused(runner, tmp_path, app):
    result = runner.invoke(main, ["demo", "--no-serve", "--participants", "3"])
    assert result.exit_code != 0 and "--participants" in result.output


def test_demo_states_what_it_skipped_or_ran(runner, tmp_path, app):
    result, out = _demo(runner, tmp_path)
    assert result.exit_code == 0, result.output
    # Either the step ran (its files exist) or the output names it as skipped.
    report = out / "report.json"
    if not report.exists():
        assert "skipped: the report files" in result.output
    else:
        data = json.loads(report.read_text())
        assert "effects" in data


@pytest.mark.parametrize("campaign", ["peer-invitation-young", "council-consultation"])
def test_every_catalog_campaign_runs(runner, tmp_path, app, campaign):
    result, _ = _demo(runner, tmp_path, "--campaign", campaign)
    assert result.exit_code == 0, result.output
    assert campaign in result.output
