"""`nudge randomize --saturations`: a randomized saturation design from a CSV list."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

from nudge_app.cli.randomize import command


def write_residents(path: Path, n: int = 900, seed: int = 5) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame(
        {
            "id": [f"{i:05d}" for i in range(n)],
            "street": [f"st{int(x):02d}" for x in rng.integers(0, 40, n)],
            "ward": "",
        }
    )
    frame["ward"] = np.where(frame["street"].str[-1].astype(int) % 2 == 0, "north", "south")
    frame.to_csv(path, index=False)
    return frame


def run(args: list[str]):
    return CliRunner().invoke(command, args, catch_exceptions=False)


ARGS = ["--arms", "control,mentor", "--cluster", "street", "--saturations", "0,0.4,0.8"]


def test_every_row_in_order_with_saturation_and_arm(tmp_path):
    src, out = tmp_path / "in.csv", tmp_path / "out.csv"
    frame = write_residents(src)
    result = run([str(src), *ARGS, "--seed", "20261202", "--out", str(out)])
    assert result.exit_code == 0, result.output
    got = pd.read_csv(out, dtype=str, keep_default_na=False)
    assert list(got.columns) == [*frame.columns, "arm", "stratum", "probability", "saturation"]
    assert got["id"].tolist() == frame["id"].tolist()
    got["s"] = got["saturation"].astype(float)
    assert set(got["saturation"]) == {"0", "0.4", "0.8"}
    per_cluster = got.groupby("street")["s"].nunique()
    assert (per_cluster == 1).all()
    sats = got.groupby("street")["s"].first().value_counts()
    assert sats.max() - sats.min() <= 1
    for _street, g in got.groupby("street"):
        treated = (g["arm"] == "mentor").sum()
        assert abs(treated - g["s"].iloc[0] * len(g)) < 1
    prob = got["probability"].astype(float)
    expected = np.where(got["arm"] == "mentor", got["s"], 1 - got["s"])
    assert np.allclose(prob, expected)
    assert "randomized 900 rows" in result.output


def test_same_seed_same_file_any_row_order(tmp_path):
    src = tmp_path / "in.csv"
    frame = write_residents(src)
    outs = []
    for name in ("a", "b"):
        out = tmp_path / f"{name}.csv"
        assert run([str(src), *ARGS, "--seed", "4", "--out", str(out)]).exit_code == 0
        outs.append(out.read_bytes())
    assert outs[0] == outs[1]
    shuffled = tmp_path / "shuffled.csv"
    frame.sample(frac=1, random_state=1).to_csv(shuffled, index=False)
    out = tmp_path / "c.csv"
    assert run([str(shuffled), *ARGS, "--seed", "4", "--out", str(out)]).exit_code == 0
    a = pd.read_csv(tmp_path / "a.csv", dtype=str).set_index("id")
    c = pd.read_csv(out, dtype=str).set_index("id").loc[a.index]
    pd.testing.assert_frame_equal(a, c)
    other = tmp_path / "d.csv"
    assert run([str(src), *ARGS, "--seed", "5", "--out", str(other)]).exit_code == 0
    assert other.read_bytes() != outs[0]


def test_blocked_by_ward(tmp_path):
    src, out = tmp_path / "in.csv", tmp_path / "out.csv"
    write_residents(src)
    result = run([str(src), *ARGS, "--strata", "ward", "--seed", "3", "--out", str(out)])
    assert result.exit_code == 0, result.output
    got = pd.read_csv(out, dtype=str, keep_default_na=False)
    for _ward, g in got.groupby("ward"):
        sats = g.groupby("street")["saturation"].first().value_counts()
        assert sats.max() - sats.min() <= 1


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["--arms", "control,mentor", "--cluster", "street", "--saturations", "0,1.5"],
            "--saturations: saturation '1.5' is outside [0, 1]",
        ),
        (["--arms", "control,mentor", "--saturations", "0,0.5"], "add --cluster COL"),
        (
            ["--arms", "control,mentor", "--cluster", "estate", "--saturations", "0,0.5"],
            "--cluster: no column 'estate'",
        ),
        (
            ["--arms", "control,a,b", "--cluster", "street", "--saturations", "0,0.5"],
            "give exactly two arms",
        ),
        (
            [
                "--arms",
                "control,mentor",
                "--weights",
                "1,2",
                "--cluster",
                "street",
                "--saturations",
                "0,0.5",
            ],
            "leave out --weights",
        ),
        (
            ["--arms", "control,mentor", "--cluster", "street", "--saturations", "0;0.5"],
            "--saturations",
        ),
    ],
)
def test_bad_input_is_refused_and_writes_nothing(tmp_path, args, message):
    src, out = tmp_path / "in.csv", tmp_path / "out.csv"
    write_residents(src)
    result = CliRunner().invoke(command, [str(src), *args, "--seed", "1", "--out", str(out)])
    assert result.exit_code != 0
    assert message in result.output
    assert "Traceback" not in result.output
    assert not out.exists()


def test_input_with_a_saturation_column_is_refused(tmp_path):
    src, out = tmp_path / "in.csv", tmp_path / "out.csv"
    frame = write_residents(src)
    frame["saturation"] = "x"
    frame.to_csv(src, index=False)
    result = CliRunner().invoke(command, [str(src), *ARGS, "--seed", "1", "--out", str(out)])
    assert result.exit_code != 0 and "already has a column 'saturation'" in result.output
