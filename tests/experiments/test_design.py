"""Campaign design files: every catalog design validates; each kind of mistake is named by field."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest
import tomli_w

from experiments.design import DesignError, design_to_toml, load_design, parse_design

CATALOG = Path(__file__).resolve().parents[2] / "experiments" / "catalog"
BASE = CATALOG / "self-efficacy-cleanup.toml"


def catalog_files() -> list[Path]:
    return sorted(CATALOG.glob("*.toml"))


def base() -> dict:
    return tomllib.loads(BASE.read_text())


def problems_of(data: dict | str) -> list[str]:
    text = data if isinstance(data, str) else tomli_w.dumps(data)
    with pytest.raises(DesignError) as info:
        parse_design(text)
    return [str(p) for p in info.value.problems]


def test_catalog_has_at_least_three_designs():
    assert len(catalog_files()) >= 3


@pytest.mark.parametrize("path", catalog_files(), ids=lambda p: p.stem)
def test_every_catalog_design_is_valid_and_round_trips(path):
    design = load_design(str(path))
    again = parse_design(design_to_toml(design))
    assert again == design
    assert again.design_hash() == design.design_hash()
    assert sum(arm.control for arm in design.arms) == 1
    assert design.analysis.moderators, "catalog designs pre-register their moderators"


def test_malformed_toml():
    (problem,) = problems_of("[campaign\nname = 'x'")
    assert problem.startswith("not valid TOML")


def test_empty_file():
    (problem,) = problems_of("   \n")
    assert "empty" in problem


def test_no_control_arm():
    data = base()
    for arm in data["arms"]:
        arm["control"] = False
    assert "arms: no control arm: mark exactly one arm with control = true" in problems_of(data)


def test_two_control_arms():
    data = base()
    for arm in data["arms"]:
        arm["control"] = True
    assert any(
        p.startswith("arms: two or more control arms (arms[0], arms[1])") for p in problems_of(data)
    )


def test_duplicate_arm_keys():
    data = base()
    data["arms"][1]["key"] = data["arms"][0]["key"]
    assert any(p.startswith("arms[1].key: duplicate arm key 'control'") for p in problems_of(data))


@pytest.mark.parametrize("weight", [0, -1, -0.5])
def test_zero_or_negative_weight(weight):
    data = base()
    data["arms"][1]["weight"] = weight
    assert "arms[1].weight: must be greater than 0" in problems_of(data)


def test_unknown_placeholder_in_a_template():
    data = base()
    data["arms"][1]["messages"]["email_body"] += "\nSee you, {firstname}!"
    (problem,) = problems_of(data)
    assert problem.startswith("arms[1].messages.email_body: unknown placeholder {firstname}")


def test_template_with_attribute_access_is_refused():
    data = base()
    data["arms"][0]["messages"]["page"] = "{first_name.__class__}"
    (problem,) = problems_of(data)
    assert problem.startswith("arms[0].messages.page: malformed placeholder")


def _survey_step(data: dict) -> tuple[int, dict]:
    return next((i, s) for i, s in enumerate(data["follow_ups"]) if s["kind"] == "survey")


def test_survey_step_without_its_survey_link_is_refused_naming_the_step():
    data = base()
    i, step = _survey_step(data)
    step["messages"]["email_body"] = step["messages"]["email_body"].replace(
        "{survey_link}", "{link}"
    )
    (problem,) = problems_of(data)
    assert problem.startswith(
        f"follow_ups[{i}].messages.email_body: survey step {step['key']!r} must include "
        "{survey_link}"
    )


def test_survey_step_by_sms_needs_the_link_in_its_sms_and_reminders_do_not():
    data = base()
    i, step = _survey_step(data)
    step["channel"] = "sms"
    step["messages"]["sms"] = (
        "{council}: two minutes on the {activity}? {link} Stop: {opt_out_link}"
    )
    (problem,) = problems_of(data)
    assert problem.startswith(f"follow_ups[{i}].messages.sms: survey step {step['key']!r}")
    step["messages"]["sms"] = "{council}: two minutes? {survey_link} Stop: {opt_out_link}"
    parse_design(tomli_w.dumps(data))
    reminder = next(s for s in data["follow_ups"] if s["kind"] == "reminder")
    assert "{survey_link}" not in reminder["messages"]["email_body"]  # and it is valid


def test_follow_up_with_negative_offset():
    data = base()
    data["follow_ups"][0]["offset_hours"] = -24
    assert "follow_ups[0].offset_hours: must be at least 0" in problems_of(data)


def test_unknown_moderator():
    data = base()
    data["analysis"]["moderators"] = ["age", "income"]
    (problem,) = problems_of(data)
    assert problem.startswith("analysis.moderators[1]: unknown moderator 'income'")


def test_post_treatment_moderator_is_refused():
    data = base()
    data["analysis"]["moderators"] = ["self_efficacy_followup"]
    (problem,) = problems_of(data)
    assert "measured after the message" in problem
    assert problem.startswith("analysis.moderators[0]")


def test_unknown_enrolment_mode():
    data = base()
    data["campaign"]["enrolment_mode"] = "lottery"
    (problem,) = problems_of(data)
    assert problem.startswith("campaign.enrolment_mode: unknown value 'lottery'")


def test_every_problem_is_listed_at_once():
    data = base()
    data["arms"][1]["weight"] = 0
    data["campaign"]["enrolment_mode"] = "lottery"
    data["follow_ups"][1]["offset_hours"] = -1
    found = problems_of(data)
    assert len(found) == 3
    assert all(re.match(r"^[a-z_]+(\[\d+\])?(\.[a-z_]+)*: ", p) for p in found)


def test_strata_labels_must_match_cuts():
    data = base()
    data["randomization"]["strata"][0]["labels"] = ["young", "old"]
    (problem,) = problems_of(data)
    assert problem.startswith("randomization.strata[0].labels: 2 cuts make 3 bands")


def test_unknown_field_is_named():
    data = base()
    data["arms"][0]["colour"] = "blue"
    (problem,) = problems_of(data)
    assert problem.startswith("arms[0].colour: unknown field")


def test_strata_default_to_age_and_self_efficacy_bands():
    data = base()
    del data["randomization"]["strata"]
    design = parse_design(tomli_w.dumps(data))
    assert [(s.moderator, s.labels) for s in design.randomization.strata] == [
        ("age", ["18-34", "35-54", "55+"]),
        ("self_efficacy", ["low", "middle", "high"]),
    ]


def test_level_by_level_bands_keep_missing_as_none():
    from experiments.bands import BandSpec, stratum_label

    levels = list(BandSpec("gender").assign(["f", None, "m", float("nan"), 3.0]))
    assert levels == ["f", None, "m", None, "3"]
    assert stratum_label({"gender": levels[1]}) == "gender=NA"


def test_banded_levels_are_closed_on_the_left():
    from experiments.bands import parse_band_spec

    spec = parse_band_spec("age:35,55")
    assert spec.levels == ["<35", "35-54", "55+"]
    assert list(spec.assign([18, 34.9, 35, 54, 55, None])) == [
        "<35",
        "<35",
        "35-54",
        "35-54",
        "55+",
        None,
    ]


@pytest.mark.parametrize("path", catalog_files(), ids=lambda p: p.stem)
def test_catalog_arms_carry_a_mechanism_tag_and_the_activity_a_kind(path):
    design = load_design(str(path))
    assert design.activity.kind is not None
    for arm in design.arms:
        assert (arm.mechanism_tag == "control") == arm.control
        assert arm.mechanism_tag is not None


def test_mechanism_tag_and_activity_kind_are_checked():
    data = base()
    data["arms"][1]["mechanism_tag"] = "nudging"
    data["arms"][0]["mechanism_tag"] = "peer"
    data["activity"]["kind"] = "picnic"
    found = problems_of(data)
    assert any(p.startswith("arms[1].mechanism_tag: unknown value 'nudging'") for p in found)
    assert "arms[0].mechanism_tag: the control arm's tag is 'control'" in found
    assert any(p.startswith("activity.kind: unknown value 'picnic'") for p in found)
    data = base()
    data["arms"][1]["mechanism_tag"] = "control"
    assert "arms[1].mechanism_tag: only the control arm is tagged 'control'" in problems_of(data)


def test_an_untagged_design_keeps_its_hash():
    """Designs frozen before tags existed hash as they did: an absent tag is not written."""
    data = base()
    del data["activity"]["kind"]
    for arm in data["arms"]:
        del arm["mechanism_tag"]
    design = parse_design(tomli_w.dumps(data))
    assert design.activity.kind is None and "mechanism_tag" not in design_to_toml(design)
    assert "mechanism_tag" not in str(design.to_dict())


# Hashes computed by the code without the analysis plan's `randomization_inference`
# (main at 71dd37f; the design file by the older code of 0132325): a launched campaign's
# recorded hash must still match its design.
HASHES_BEFORE = {
    "council-consultation.toml": "e2ede5566fb31d386e26949fdac35610d8c3cd22587e98025e999a2c9f4ac7eb",
    "peer-invitation-young.toml": "de4475f7576a3d3ba0f73bfb3d038b83bcff459b65b3b97e870d203868e68488",
    "self-efficacy-cleanup.toml": "53b2e3030014b5f192aded5b0745e37b1155c202400aa10572e6b56efda45655",
    "design_written_before_issue_13.toml": (
        "602c6e5d86702ed09d3bd53662af19b6d51f5aba79086bd23369b713a9371bd0"
    ),
}


@pytest.mark.parametrize("name", sorted(HASHES_BEFORE))
def test_new_analysis_plan_fields_leave_existing_design_hashes_unchanged(name):
    path = CATALOG / name
    if not path.exists():  # a design file written by the earlier code
        path = Path(__file__).parent / "data" / name
    design = load_design(str(path))
    assert design.analysis.randomization_inference is None
    # The catalog design that gained eligibility rules hashes as before without them.
    design.eligibility = None
    assert design.design_hash() == HASHES_BEFORE[name]
    assert parse_design(design_to_toml(design)).design_hash() == HASHES_BEFORE[name]


def test_randomization_inference_in_the_plan_is_read_checked_and_hashed():
    data = base()
    data["analysis"]["randomization_inference"] = 2000
    design = parse_design(tomli_w.dumps(data))
    assert design.analysis.randomization_inference == 2000
    assert design.design_hash() != load_design(str(BASE)).design_hash()
    assert parse_design(design_to_toml(design)).analysis.randomization_inference == 2000
    data["analysis"]["randomization_inference"] = 0
    assert problems_of(data) == ["analysis.randomization_inference: must be at least 1"]


def test_secondary_outcomes_are_read_in_order_round_trip_and_change_the_hash():
    data = base()
    data["analysis"]["secondary_outcomes"] = ["collective_coproduction", "attended"]
    design = parse_design(tomli_w.dumps(data))
    assert design.analysis.secondary_outcomes == ["collective_coproduction", "attended"]
    again = parse_design(design_to_toml(design))
    assert again.analysis.secondary_outcomes == ["collective_coproduction", "attended"]
    assert again.design_hash() == design.design_hash()
    assert design.design_hash() != load_design(str(BASE)).design_hash()
    # Empty means the default (every outcome the data hold), as when absent.
    data["analysis"]["secondary_outcomes"] = []
    assert parse_design(tomli_w.dumps(data)).analysis.secondary_outcomes is None


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        (
            ["attended", "attendance"],
            "analysis.secondary_outcomes[1]: unknown secondary outcome 'attendance': must "
            "be one of joined, attended,",
        ),
        (["joined"], "analysis.secondary_outcomes[0]: 'joined' is the primary outcome"),
        (["attended", "attended"], "analysis.secondary_outcomes[1]: 'attended' is listed twice"),
        ("attended", "analysis.secondary_outcomes: must be a list"),
    ],
)
def test_bad_secondary_outcomes_are_named_by_field(value, problem):
    data = base()
    data["analysis"]["secondary_outcomes"] = value
    (found,) = problems_of(data)
    assert found.startswith(problem), found


def test_a_secondary_outcome_that_is_the_primary_under_its_report_name_is_refused():
    data = base()
    data["analysis"]["primary_outcome"] = "collective_coproduction_followup"
    data["analysis"]["secondary_outcomes"] = ["collective_coproduction"]
    (found,) = problems_of(data)
    assert found.startswith("analysis.secondary_outcomes[0]: 'collective_coproduction' is the")


def test_strata_whose_names_would_not_fit_an_assignment_are_refused():
    # Six strata with 40-character band labels make names of 326 characters; an assignment
    # keeps 200 (PostgreSQL refuses more, SQLite would have kept it silently).
    data = base()
    data["randomization"]["strata"] = [
        {"moderator": name, "cuts": [1, 2, 3, 4, 5], "labels": [f"{i}" + "x" * 39 for i in range(6)]}
        for name in ("age", "gender", "self_efficacy", "individual_coproduction",
                     "collective_coproduction", "country")
    ]  # fmt: skip
    problems = [p for p in problems_of(data) if p.startswith("randomization.strata:")]
    assert problems == [
        "randomization.strata: the longest stratum name these strata make is 326 characters, "
        "over the 200 a stratum is kept in: use fewer strata or shorter band labels"
    ]


def test_the_longest_stratum_name_counts_every_level_and_missing():
    from experiments import baseline
    from experiments.bands import stratum_label
    from experiments.design import Stratum, longest_stratum_label

    strata = [Stratum("age", [35, 55], ["young", "middle-aged", "old"]), Stratum("gender")]
    widest_gender = max(len(str(o.value)) for o in baseline.get("gender").options)
    expected = len(stratum_label({"age": "middle-aged", "gender": "g" * widest_gender}))
    assert longest_stratum_label(strata) == expected
