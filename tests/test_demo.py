"""`nudge demo`: council and admin login, a catalog campaign run by simulated residents through
the participant pages and the scheduler, and the report it writes."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import func, select

from nudge_app.cli import main


def _demo(runner, tmp_path, *args, n=60, seed=3, out_name="demo-out"):
    out = tmp_path / out_name
    result = runner.invoke(
        main,
        ["demo", "--no-serve", "--participants", str(n), "--seed", str(seed), "--out", str(out),
         *args],
    )  # fmt: skip
    return result, out


def _password(output: str) -> str:
    line = next(line for line in output.splitlines() if line.strip().startswith("password:"))
    return line.split(":", 1)[1].strip()


def _r(x):
    return None if x is None else round(x, 12)


def _estimates(out) -> dict:
    data = json.loads((out / "report.json").read_text())
    effects = {e["arm"]: _r(e["estimate"]) for e in data["effects"]}
    subgroups = {
        (s["arm"], s["moderator"], s["level"]): _r(s["estimate"]) for s in data["subgroups"]
    }
    return {"effects": effects, "subgroups": subgroups}


def test_demo_runs_a_whole_campaign_and_writes_the_report(runner, tmp_path, app):
    from nudge_app.extensions import db
    from nudge_app.models import (
        Assignment,
        Campaign,
        Council,
        Event,
        OutboundMessage,
        StaffUser,
        SurveyResponse,
    )
    from nudge_app.security import verify_password

    result, out = _demo(runner, tmp_path)
    assert result.exit_code == 0, result.output
    council = db.session.scalar(select(Council).where(Council.slug == "demo"))
    user = db.session.scalar(select(StaffUser).where(StaffUser.council_id == council.id))
    assert user.role == "admin" and user.email in result.output
    assert verify_password(user.password_hash, _password(result.output))
    campaign = db.session.scalar(select(Campaign).where(Campaign.council_id == council.id))
    assert campaign.slug == "self-efficacy-cleanup"
    assert campaign.status == "closed" and campaign.design_hash

    def count(model, *where):
        return db.session.scalar(select(func.count()).select_from(model).where(*where))

    # every resident came through the pages: consent, baseline; the eligibility rules
    # (individual co-producers in no group) screened some out, the rest saw their arm
    from experiments.simulate import eligible, simulate_population
    from nudge_app.models import Participant

    admitted = eligible(simulate_population(60, seed=3), campaign.eligibility)
    n_eligible = int(admitted.sum())
    assert 0 < n_eligible < 60
    assert count(Assignment, Assignment.campaign_id == campaign.id) == n_eligible
    screened_out = count(Participant, Participant.screened_out_rule.is_not(None))
    assert screened_out == 60 - n_eligible
    assert f"{screened_out:,} screened out by the eligibility rules" in result.output
    for kind in ("visit", "consent", "baseline"):
        assert count(Event, Event.campaign_id == campaign.id, Event.kind == kind) == 60, kind
    exposed = count(Event, Event.campaign_id == campaign.id, Event.kind == "exposure")
    assert exposed == n_eligible
    joined = count(Event, Event.campaign_id == campaign.id, Event.kind == "join")
    assert f"{joined:,} said they would join" in result.output
    # invitations, reminders and surveys went out through the file channel
    lines = [json.loads(x) for x in (out / "outbox.jsonl").read_text().splitlines()]
    kinds = {line["kind"] for line in lines}
    assert {"invitation", "reminder", "survey"} <= kinds
    sent = count(OutboundMessage, OutboundMessage.status == "sent")
    assert sent == len(lines)
    reminded = {line["to"] for line in lines if line["kind"] == "reminder"}
    # the reminder goes to the randomized who did not join
    assert len(reminded) == n_eligible - joined
    answered = count(SurveyResponse, SurveyResponse.kind == "follow_up")
    assert 0 < answered < n_eligible
    assert f"{answered:,} follow-up surveys answered" in result.output

    data = json.loads((out / "report.json").read_text())
    assert [e["arm"] for e in data["effects"]] == ["efficacy"]
    assert {m["moderator"] for m in data["moderators"]} == {"age", "self_efficacy"}
    assert {s["moderator"] for s in data["subgroups"]} == {"age", "self_efficacy"}
    assert data["n_rows"] == n_eligible
    assert data["screening"]["screened_out"] == screened_out > 0
    assert data["screening"]["assessed"] == 60
    assert sum(data["screening"]["by_rule"].values()) == screened_out
    assert "<svg" in (out / "report.html").read_text()
    assert (out / "report.csv").read_text().startswith("kind,")
    truth = json.loads((out / "truth.json").read_text())
    assert set(truth["effects"]) == {"efficacy"}
    assert set(truth["subgroups"]) == {"age", "self_efficacy"}
    # the truth is about the eligible residents, whom the estimates are about
    assert truth["eligible"] == n_eligible
    assert sum(truth["band_sizes"]["age"].values()) == n_eligible
    assert truth["eligibility"] == campaign.eligibility
    outcomes = {"attended", "individual_coproduction", "collective_coproduction", "joined"}
    assert outcomes <= set(truth["effects_by_outcome"])
    assert truth["effects_by_outcome"]["joined"] == truth["effects"]
    assert all(set(v) == {"efficacy"} for v in truth["effects_by_outcome"].values())
    assert set(truth["mediated"]) == {"efficacy"} and truth["mediated"]["efficacy"] > 0
    for label in ("console", "monitoring", "report"):
        assert f"{label}: http://127.0.0.1:5000/" in result.output


@pytest.mark.slow
def test_the_same_seed_gives_the_same_estimates(runner, tmp_path, app):
    first, out1 = _demo(runner, tmp_path, out_name="one")
    second, out2 = _demo(runner, tmp_path, out_name="two")
    other, out3 = _demo(runner, tmp_path, out_name="three", seed=4)
    assert first.exit_code == second.exit_code == other.exit_code == 0, second.output
    assert _estimates(out1) == _estimates(out2)
    assert _estimates(out1) != _estimates(out3)
    # each run prints a new password and adds a campaign
    assert _password(first.output) != _password(second.output)
    from nudge_app.extensions import db
    from nudge_app.models import Campaign, StaffUser
    from nudge_app.security import verify_password

    db.session.expire_all()
    user = db.session.scalar(select(StaffUser))
    assert verify_password(user.password_hash, _password(other.output))
    assert not verify_password(user.password_hash, _password(first.output))
    assert db.session.scalar(select(func.count()).select_from(Campaign)) == 3


@pytest.mark.slow
def test_residents_in_parallel_get_the_same_arms_as_in_sequence(runner, tmp_path, app):
    """Survey-first arrivals are split between processes by stratum, so each stratum's
    arrival order, hence each blocked slot and arm, is the same as in one process."""
    one, out1 = _demo(runner, tmp_path, "--workers", "1", n=150, out_name="seq")
    two, out2 = _demo(runner, tmp_path, "--workers", "2", n=150, out_name="par")
    assert one.exit_code == 0 and two.exit_code == 0, two.output
    assert _estimates(out1) == _estimates(out2)


def test_unknown_catalog_campaign_is_refused_clearly(runner, tmp_path, app):
    result, _ = _demo(runner, tmp_path, "--campaign", "no-such-design")
    assert result.exit_code != 0
    assert "no catalog campaign 'no-such-design'" in result.output
    assert "self-efficacy-cleanup" in result.output
    assert "Traceback" not in result.output


def test_too_few_participants_is_refused(runner, tmp_path, app):
    result = runner.invoke(main, ["demo", "--no-serve", "--participants", "3"])
    assert result.exit_code != 0 and "--participants" in result.output


@pytest.mark.slow
@pytest.mark.parametrize("campaign", ["peer-invitation-young", "council-consultation"])
def test_every_catalog_campaign_runs(runner, tmp_path, app, campaign):
    from nudge_app.extensions import db
    from nudge_app.models import Assignment

    result, out = _demo(runner, tmp_path, "--campaign", campaign, n=90)
    assert result.exit_code == 0, result.output
    assert db.session.scalar(select(func.count()).select_from(Assignment)) == 90
    data = json.loads((out / "report.json").read_text())
    arms = {"peer-invitation-young": ["peer", "peer-practical"],
            "council-consultation": ["information", "consultation"]}[campaign]  # fmt: skip
    assert sorted(e["arm"] for e in data["effects"]) == sorted(arms)
    if campaign == "council-consultation":
        # a list campaign: the nudge went to everyone, only some opened it
        lines = [json.loads(x) for x in (out / "outbox.jsonl").read_text().splitlines()]
        assert sum(1 for x in lines if x["kind"] == "nudge") == 90
        from nudge_app.models import Event

        def events(kind):
            query = select(func.count()).select_from(Event).where(Event.kind == kind)
            return db.session.scalar(query)

        assert 30 < events("exposure") < 85  # about 60% open their message
        assert events("consent") == events("exposure")
        assert data["n_rows"] == 90  # intention to treat: everyone randomized is analysed


def test_strata_are_split_over_two_lanes_whole_and_as_evenly_as_possible():
    from itertools import combinations

    from nudge_app.demo import _balance

    sizes = (1200, 900, 800, 700, 650, 400, 350)
    groups = [[(size, i) for i in range(size)] for size in sizes]
    lanes = _balance(groups, 2)
    assert sorted(item for lane in lanes for item in lane) == sorted(x for g in groups for x in g)
    for group in groups:  # each stratum stays whole, in its order, in one lane
        (lane,) = [lane for lane in lanes if group[0] in lane]
        assert lane[lane.index(group[0]) :][: len(group)] == group
    best = min(
        abs(sum(sizes) - 2 * sum(pick))
        for k in range(len(sizes) + 1)
        for pick in combinations(sizes, k)
    )
    assert abs(len(lanes[0]) - len(lanes[1])) == best


@pytest.mark.slow
def test_the_demo_screens_some_out_and_its_intervals_cover_the_eligible_truth(
    runner, tmp_path, app
):
    """The report is about the eligible residents and so is truth.json: its intervals
    cover the truth computed over them, with some residents screened out."""
    result, out = _demo(runner, tmp_path, n=1200, seed=0)
    assert result.exit_code == 0, result.output
    data = json.loads((out / "report.json").read_text())
    truth = json.loads((out / "truth.json").read_text())
    screening = data["screening"]
    assert screening["assessed"] == 1200 and screening["screened_out"] > 0
    assert screening["eligible"] == truth["eligible"] == data["n_rows"]
    assert set(screening["by_rule"]) == set(truth["eligibility"])
    assert all(n > 0 for n in screening["by_rule"].values())
    for effect in data["effects"]:
        assert effect["ci_low"] <= truth["effects"][effect["arm"]] <= effect["ci_high"]
    covered = [
        s["ci_low"] <= truth["subgroups"][s["moderator"]][s["arm"]][s["level"]] <= s["ci_high"]
        for s in data["subgroups"]
        if s["ci_low"] is not None
    ]
    assert covered and all(covered)
