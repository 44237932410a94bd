"""Results packs: suppression keeps small counts unrecoverable; a built pack reads back and
passes the JSON Schema; malformed packs are refused whole, every problem named by path,
by the reader and the schema alike."""

from __future__ import annotations

import copy
import json
from datetime import date
from pathlib import Path

import jsonschema
import numpy as np
import pytest

from experiments.bands import DEFAULT_AGE_BANDS as AGE
from experiments.bands import DEFAULT_SELF_EFFICACY_BANDS as SE
from experiments.evidence.meta import pool_by, random_effects
from experiments.evidence.pack import (
    MIN_COUNT,
    PackError,
    build_pack,
    population_counts,
    read_pack,
    suppress,
)

SCHEMA = json.loads(
    (
        Path(__file__).resolve().parents[2] / "experiments/evidence/results-pack.schema.json"
    ).read_text()
)


def schema_ok(pack) -> bool:
    return jsonschema.Draft202012Validator(SCHEMA).is_valid(pack)


def campaign(effects=((0.031, 0.011),), mechanisms=("peer",), closed=date(2026, 3, 14)):
    rng = np.random.default_rng(len(effects))
    arms = [("control", True, None, None)] + [
        (m, False, e, s) for m, (e, s) in zip(mechanisms, effects, strict=True)
    ]
    out = []
    for mechanism, control, effect, se in arms:
        ages = rng.integers(18, 86, 400).astype(float)
        ages[:3] = np.nan  # three without an age
        scores = np.clip(rng.normal(3, 0.8, 400), 1, 5)
        scores[:4] = 1.2  # four "low": suppressed
        out.append(
            {
                "mechanism": mechanism,
                "control": control,
                "outcome": "joined",
                "effect": effect,
                "std_error": se,
                "n": 400,
                "population": {
                    "age": population_counts(ages, AGE),
                    "self_efficacy": population_counts(scores[:40], SE),
                },
            }
        )
    return {
        "policy_domain": "community-safety",
        "activity_kind": "neighbourhood-watch",
        "started": date(2026, 1, 5),
        "closed": closed,
        "bands": {"age": AGE, "self_efficacy": SE},
        "arms": out,
    }


@pytest.fixture
def pack():
    return build_pack(
        [campaign(), campaign(((0.02, 0.01), (0.04, 0.012)), ("peer", "self-efficacy"))],
        date(2026, 4, 2),
    )


# --- suppression ---------------------------------------------------------------------------


def test_small_counts_are_suppressed_with_their_complements():
    assert suppress({"a": 120, "b": 40, "c": 0}) == {"a": 120, "b": 40, "c": 0}
    # one small count alone could be recovered from the total: the next smallest goes too
    assert suppress({"a": 120, "b": 40, "c": 3}) == {"a": 120, "b": None, "c": None}
    # two small counts adding to 10 or more hide each other
    assert suppress({"a": 120, "b": 6, "c": 5}) == {"a": 120, "b": None, "c": None}
    assert suppress({"a": 120, "b": 4, "c": 3, "d": 15}) == {
        "a": 120,
        "b": None,
        "c": None,
        "d": None,
    }


def test_population_counts_count_every_band_and_the_missing():
    counts = population_counts([20, 40, 70, None, 34.9], AGE)
    assert counts == {"18-34": 2, "35-54": 1, "55+": 1, "missing": 1}


# --- writing and reading -------------------------------------------------------------------


def test_a_built_pack_reads_back_and_passes_the_schema(pack):
    assert schema_ok(pack)
    typed = read_pack(json.dumps(pack))
    assert typed.exported == "2026-04" and len(typed.campaigns) == 2
    first = typed.campaigns[0]
    assert (first.started, first.closed) == ("2026-01", "2026-03")  # months, never days
    assert first.bands == {
        "age": ["18-34", "35-54", "55+"],
        "self_efficacy": ["low", "middle", "high"],
    }
    control = first.arms[0]
    assert control.control and control.effect is None and control.mechanism == "control"
    assert control.population["age"]["missing"] is None  # 3 without an age: suppressed
    assert control.population["self_efficacy"]["low"] is None
    text = json.dumps(pack)
    assert "council" not in text and "Young" not in text
    for c in pack["campaigns"]:
        for arm in c["arms"]:
            for counts in arm["population"].values():
                shown = [v for v in counts.values() if v]
                hidden = [k for k, v in counts.items() if v is None]
                assert all(v >= MIN_COUNT for v in shown)
                assert not hidden or arm["n"] - sum(shown) >= MIN_COUNT


def test_pack_effects_pool_by_mechanism(pack):
    rows = read_pack(pack).effects()
    assert [r["mechanism"] for r in rows] == ["peer", "peer", "self-efficacy"]
    pooled = dict(
        pool_by(
            [r["mechanism"] for r in rows],
            [r["effect"] for r in rows],
            [r["std_error"] for r in rows],
        )
    )
    assert pooled["peer"] == random_effects([0.031, 0.02], [0.011, 0.01])
    assert pooled["self-efficacy"].k == 1


def test_an_arm_too_small_to_share_is_refused_at_export():
    c = campaign()
    c["arms"][1]["n"] = 8
    with pytest.raises(
        PackError, match=r"campaigns\[0\].arms\[1\].n: 8 must be a whole number of at least 10"
    ):
        build_pack([c], date(2026, 4, 2))


# --- malformed packs -----------------------------------------------------------------------


def broken(pack, change):
    bad = copy.deepcopy(pack)
    change(bad)
    return bad


def _set(path, value):
    def change(pack):
        target = pack
        for key in path[:-1]:
            target = target[key]
        target[path[-1]] = value

    return change


def _delete(path):
    def change(pack):
        target = pack
        for key in path[:-1]:
            target = target[key]
        del target[path[-1]]

    return change


CASES = [
    (_set(["schema_version"], "2.0"), "schema_version: '2.0' is not supported: this platform reads version 1.0"),
    (_set(["schema"], "something-else"), "schema: 'something-else' is not 'nudge-results-pack'"),
    (_delete(["campaigns", 1, "arms", 1, "std_error"]), "campaigns[1].arms[1]: missing field 'std_error'"),
    (_delete(["campaigns", 0, "policy_domain"]), "campaigns[0]: missing field 'policy_domain'"),
    (_set(["campaigns", 1, "arms", 2, "std_error"], -0.01), "campaigns[1].arms[2].std_error: -0.01 must be a positive number"),
    (_set(["campaigns", 1, "arms", 2, "std_error"], 0), "campaigns[1].arms[2].std_error: 0 must be a positive number"),
    (_set(["campaigns", 0, "arms", 1, "effect"], "big"), "campaigns[0].arms[1].effect: 'big' must be a finite number"),
    (_set(["campaigns", 0, "arms", 0, "effect"], 0.1), "campaigns[0].arms[0].effect: must be null for the control arm"),
    (_set(["campaigns", 0, "arms", 1, "mechanism"], "nudging"), "campaigns[0].arms[1].mechanism: 'nudging' is not one of"),
    (_set(["campaigns", 0, "arms", 1, "control"], True), "campaigns[0].arms: 2 control arms: exactly one is needed"),
    (_set(["campaigns", 0, "closed"], "2026-03-14"), "campaigns[0].closed: '2026-03-14' is not a month written YYYY-MM"),
    (_set(["campaigns", 0, "council"], "Riverside"), "campaigns[0].council: unknown field"),
    (_set(["campaigns", 0, "arms", 1, "first_name"], "Ann"), "campaigns[0].arms[1].first_name: unknown field"),
    (_set(["campaigns", 0, "arms", 1, "population", "age", "18-34"], 4), "campaigns[0].arms[1].population.age.18-34: 4 must be a whole number of at least 10"),
    (_set(["campaigns", 0, "arms", 1, "population", "age", "16-17"], 12), "campaigns[0].arms[1].population.age.16-17: unknown field"),
    (_set(["campaigns", 0, "arms", 1, "n"], 9), "campaigns[0].arms[1].n: 9 must be a whole number of at least 10"),
    (_set(["campaigns"], []), "campaigns: must be a list of at least one campaign"),
    (_set(["campaigns", 0, "arms", 1, "outcome"], "Joined!"), "campaigns[0].arms[1].outcome: 'Joined!' is not exposed, joined"),
]  # fmt: skip


@pytest.mark.parametrize(("change", "message"), CASES)
def test_malformed_packs_are_refused_whole_with_the_path(pack, change, message):
    bad = broken(pack, change)
    with pytest.raises(PackError) as info:
        read_pack(bad)
    assert any(p.startswith(message) for p in info.value.problems), info.value.problems
    assert "results pack refused" in str(info.value)
    # the schema can neither count control arms nor match band labels to the bands
    if not any(rule in message for rule in ("2 control arms", "16-17: unknown field")):
        assert not schema_ok(bad)


def test_rules_beyond_the_schema_are_the_readers():
    """What JSON Schema cannot say, the reader still refuses."""
    pack = build_pack([campaign()], "2026-04")
    bad = broken(pack, _set(["campaigns", 0, "closed"], "2025-12"))
    assert schema_ok(bad)
    with pytest.raises(PackError, match="2025-12 is before the start 2026-01"):
        read_pack(bad)


def test_not_json_is_refused():
    with pytest.raises(PackError, match="not JSON"):
        read_pack(b"\xff{")


def test_the_documented_example_is_a_valid_pack():
    readme = Path(__file__).resolve().parents[2] / "experiments/evidence/README.md"
    example = readme.read_text().split("```json\n", 1)[1].split("```", 1)[0]
    pack = json.loads(example)
    assert schema_ok(pack)
    arm = read_pack(pack).campaigns[0].arms[1]
    assert arm.mechanism == "peer" and arm.std_error == 0.011
    # its suppressed counts follow the documented rule
    counts = {k: (v if v is not None else 0) for k, v in arm.population["age"].items()}
    hidden = arm.n - sum(counts.values())
    assert hidden >= MIN_COUNT


def test_another_councils_follow_up_outcome_is_read(pack):
    other = broken(pack, _set(["campaigns", 0, "arms", 1, "outcome"], "trust_followup"))
    assert read_pack(other).campaigns[0].arms[1].outcome == "trust_followup"
    assert schema_ok(other)
