"""`nudge randomize`: CSV in, every row out in order with arm, stratum and probability;
bad input exits non-zero with one message and writes nothing."""

from __future__ import annotations

import csv
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

from experiments.bands import BandSpec
from experiments.randomization import Allocation, randomize_list, stratify
from nudge_app.cli.randomize import command


def write_residents(path: Path, n: int = 600, seed: int = 1) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame(
        {
            "id": [f"{i:05d}" for i in range(n)],
            "age": rng.integers(18, 95, n).astype(str),
            "self_efficacy": [f"{x:.2f}" for x in rng.uniform(1, 5, n)],
            "gender": rng.choice(["f", "m", "x"], n),
            "household": [f"h{i // 3}" for i in rng.permutation(n)],
        }
    )
    frame.loc[5, "age"] = ""  # unknown age: stratum age=NA
    frame.to_csv(path, index=False)
    return frame


def run(args: list[str]):
    return CliRunner().invoke(command, args, catch_exceptions=False)


def read_out(path: Path) -> pd.DataFrame:
    return pd.read_csv(path, dtype=str, keep_default_na=False)


ARGS = [
    "--arms",
    "control,a,b",
    "--weights",
    "2,1,1",
    "--strata",
    "age:35,55",
    "--strata",
    "self_efficacy:2.5,3.5",
    "--seed",
    "20261130",
]


def test_rows_in_order_with_exact_counts_per_stratum(tmp_path):
    src, out = tmp_path / "in.csv", tmp_path / "out.csv"
    frame = write_residents(src)
    result = run([str(src), *ARGS, "--out", str(out)])
    assert result.exit_code == 0, result.output
    got = read_out(out)
    assert list(got.columns) == [*frame.columns, "arm", "stratum", "probability"]
    # Input text unchanged (leading zeros, decimals), rows in input order.
    pd.testing.assert_frame_equal(got[frame.columns.tolist()], frame.fillna(""), check_dtype=False)
    assert set(got["arm"]) == {"control", "a", "b"}
    assert got.loc[5, "stratum"].startswith("age=NA|")
    probs = {"control": 0.5, "a": 0.25, "b": 0.25}
    assert (got["probability"].astype(float) == got["arm"].map(probs)).all()
    for _stratum, g in got.groupby("stratum"):
        counts = g["arm"].value_counts()
        for arm, p in probs.items():
            assert abs(counts.get(arm, 0) - len(g) * p) < 1
    # Stratum labels as the bands module names them, row by row.
    age = BandSpec("age", (35.0, 55.0))
    se = BandSpec("self_efficacy", (2.5, 3.5))
    ages = age.assign(frame["age"].replace("", None))
    ses = se.assign(frame["self_efficacy"])
    expected = [
        f"age={'NA' if a is None else a}|self_efficacy={s}" for a, s in zip(ages, ses, strict=True)
    ]
    assert got["stratum"].tolist() == expected
    assert "randomized 600 rows into 3 arms" in result.output


def test_same_seed_same_output_other_seed_other_output_any_row_order(tmp_path):
    src = tmp_path / "in.csv"
    frame = write_residents(src)
    run([str(src), *ARGS, "--out", str(tmp_path / "one.csv")])
    run([str(src), *ARGS, "--out", str(tmp_path / "two.csv")])
    assert (tmp_path / "one.csv").read_bytes() == (tmp_path / "two.csv").read_bytes()
    other = [*ARGS[:-1], "7"]
    run([str(src), *other, "--out", str(tmp_path / "three.csv")])
    assert (
        read_out(tmp_path / "one.csv")["arm"].tolist()
        != read_out(tmp_path / "three.csv")["arm"].tolist()
    )
    # The same list in another row order: every id keeps its arm.
    shuffled = frame.sample(frac=1, random_state=3)
    shuffled.to_csv(tmp_path / "shuffled.csv", index=False)
    run([str(tmp_path / "shuffled.csv"), *ARGS, "--out", str(tmp_path / "four.csv")])
    first = read_out(tmp_path / "one.csv").set_index("id")["arm"]
    again = read_out(tmp_path / "four.csv").set_index("id")["arm"]
    assert again.tolist() == first.loc[again.index].tolist()


def test_matches_the_library_function(tmp_path):
    src, out = tmp_path / "in.csv", tmp_path / "out.csv"
    frame = write_residents(src)
    run([str(src), *ARGS, "--out", str(out)])
    specs = [BandSpec("age", (35.0, 55.0)), BandSpec("self_efficacy", (2.5, 3.5))]
    lib = randomize_list(
        frame["id"],
        Allocation(("control", "a", "b"), (2, 1, 1)),
        20261130,
        stratify(
            {
                "age": frame["age"].to_numpy(object),
                "self_efficacy": frame["self_efficacy"].to_numpy(object),
            },
            specs,
        ),
    )
    assert read_out(out)["arm"].tolist() == lib["arm"].tolist()


def test_level_by_level_strata_and_clusters(tmp_path):
    src, out = tmp_path / "in.csv", tmp_path / "out.csv"
    write_residents(src)
    result = run(
        [
            str(src),
            "--arms",
            "control,t",
            "--cluster",
            "household",
            "--seed",
            "4",
            "--out",
            str(out),
        ]
    )
    assert result.exit_code == 0, result.output
    got = read_out(out)
    assert got.groupby("household")["arm"].nunique().max() == 1
    per_household = got.groupby("household")["arm"].first().value_counts()
    assert abs(per_household["control"] - per_household["t"]) <= 1
    result = run(
        [str(src), "--arms", "control,t", "--strata", "gender", "--seed", "4", "--out", str(out)]
    )
    assert result.exit_code == 0, result.output
    got = read_out(out)
    assert set(got["stratum"]) == {"gender=f", "gender=m", "gender=x"}
    for _, g in got.groupby("stratum"):
        assert abs((g["arm"] == "t").sum() - len(g) / 2) < 1


def test_no_id_column_uses_row_order_and_quotes_when_needed(tmp_path):
    src, out = tmp_path / "in.csv", tmp_path / "out.csv"
    src.write_text('name,note\nAnn,"likes, commas"\nBo,"says ""hi"""\nCy,\n')
    result = run([str(src), "--arms", "c,t", "--seed", "1", "--out", str(out)])
    assert result.exit_code == 0, result.output
    with open(out, newline="") as fh:
        rows = list(csv.reader(fh))
    assert rows[0] == ["name", "note", "arm", "stratum", "probability"]
    assert [r[:2] for r in rows[1:]] == [["Ann", "likes, commas"], ["Bo", 'says "hi"'], ["Cy", ""]]
    assert sorted(r[2] for r in rows[1:]).count("c") in (1, 2)


def bad(tmp_path: Path, args: list[str], content: str | bytes | None, message: str) -> None:
    src, out = tmp_path / "in.csv", tmp_path / "out.csv"
    if isinstance(content, bytes):
        src.write_bytes(content)
    elif content is not None:
        src.write_text(content)
    out.write_text("previous contents\n")
    result = CliRunner().invoke(command, [str(src), *args, "--out", str(out)])
    assert result.exit_code != 0
    assert isinstance(result.exception, SystemExit), result.exception
    assert "Traceback" not in result.output
    assert message in result.output, result.output
    assert out.read_text() == "previous contents\n"  # nothing written
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".nudge")] == []


GOOD = "id,age,self_efficacy\n1,30,2.0\n2,40,3.0\n3,60,4.5\n"


@pytest.mark.parametrize(
    "args, content, message",
    [
        (
            ["--arms", "c,t", "--strata", "income:10", "--seed", "1"],
            GOOD,
            "--strata: no column 'income'",
        ),
        (
            ["--arms", "c,t", "--cluster", "street", "--seed", "1"],
            GOOD,
            "--cluster: no column 'street'",
        ),
        (["--arms", "c,t", "--id", "ref", "--seed", "1"], GOOD, "--id: no column 'ref'"),
        (["--arms", "c,t", "--seed", "1"], "", "the file is empty"),
        (["--arms", "c,t", "--seed", "1"], "id,age\n", "has a header but no rows"),
        (
            ["--arms", "c,t", "--strata", "age:35,55", "--seed", "1"],
            "id,age\n1,30\n2,forty\n3,50\n",
            "column 'age', row 3 of the file: 'forty' is not a number",
        ),
        (
            ["--arms", "c,a,b", "--weights", "2,1", "--seed", "1"],
            GOOD,
            "--weights: 2 weights for 3 arms",
        ),
        (["--arms", "c,a", "--weights", "2,x", "--seed", "1"], GOOD, "is not a list of numbers"),
        (["--arms", "c,a", "--weights", "1,0", "--seed", "1"], GOOD, "greater than 0"),
        (["--arms", "c", "--seed", "1"], GOOD, "at least two comma-separated arm names"),
        (
            ["--arms", "c,t", "--seed", "1"],
            "id,age\n1,30\n2,40\n1,50\n",
            "id '1' appears more than once (rows 2 and 4 of the file)",
        ),
        (
            ["--arms", "c,t", "--seed", "1"],
            "id,age\n1,30\n,40\n",
            "row 3 of the file: the id is empty",
        ),
        (["--arms", "c,t", "--seed", "1"], b"id,name\n1,\xe9l\xe8ne\n", "not UTF-8"),
        (["--arms", "c,t", "--seed", "1"], "id,age\n1,30\n2,40,extra\n", "not a readable CSV"),
        (["--arms", "c,t", "--seed", "1"], "id,arm\n1,x\n", "already has a column 'arm'"),
        (["--arms", "c,t", "--seed", "1"], "id,age,age\n1,2,3\n", "names column 'age' twice"),
        (["--arms", "c,t", "--strata", "age:55,35", "--seed", "1"], GOOD, "strictly increasing"),
        (["--arms", "c,t", "--strata", "age:x", "--seed", "1"], GOOD, "cut points must be"),
        (["--arms", "c,t", "--seed", "1"], None, "no such file"),
        (["--arms", "c,t", "--seed", "-3"], GOOD, "--seed"),
        (
            ["--arms", "c,t", "--cluster", "hh", "--strata", "age:35", "--seed", "1"],
            "id,hh,age\n1,h1,30\n2,h1,40\n",
            "cluster 'h1' has members in more than one stratum",
        ),
        (
            ["--arms", "c,t", "--cluster", "hh", "--seed", "1"],
            "id,hh\n1,h1\n2,\n",
            "column 'hh', row 3 of the file: the cluster is empty",
        ),
    ],
)
def test_bad_input_exits_with_one_clear_message_and_writes_nothing(
    tmp_path, args, content, message
):
    bad(tmp_path, args, content, message)


def test_directory_as_input(tmp_path):
    out = tmp_path / "out.csv"
    result = CliRunner().invoke(
        command, [str(tmp_path), "--arms", "c,t", "--seed", "1", "--out", str(out)]
    )
    assert result.exit_code != 0 and "is a directory" in result.output
    assert not out.exists()


def test_whole_process_without_flask(tmp_path):
    src, out = tmp_path / "in.csv", tmp_path / "out.csv"
    write_residents(src, n=50)
    code = (
        "import sys\n"
        "from nudge_app.cli import main\n"
        "try:\n"
        f"    main(['randomize', {str(src)!r}, '--arms', 'c,t', '--seed', '3', "
        f"'--out', {str(out)!r}])\n"
        "except SystemExit as exc:\n"
        "    assert exc.code in (0, None), exc.code\n"
        "assert 'flask' not in sys.modules, 'flask was imported'\n"
        "assert 'sqlalchemy' not in sys.modules, 'sqlalchemy was imported'\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=os.getcwd(), timeout=120
    )
    assert proc.returncode == 0, proc.stderr
    assert len(read_out(out)) == 50


def test_the_command_loads_without_pandas():
    # pandas takes half a second to import; the science the command uses imports it only
    # in the functions that need it (level-by-level strata, clusters, error messages).
    code = (
        "import sys\n"
        "import nudge_app.cli.randomize\n"
        "assert 'pandas' not in sys.modules, 'pandas was imported'\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=os.getcwd(), timeout=120
    )
    assert proc.returncode == 0, proc.stderr


def test_formula_levels_are_neutralised_in_the_output(tmp_path):
    src = tmp_path / "in.csv"
    src.write_text('id,team\n1,=HYPERLINK("http://evil.example")\n2,-5\n3,plain\n4,@x\n')
    out = tmp_path / "out.csv"
    result = run(
        [str(src), "--arms", "control,a", "--strata", "team", "--seed", "1", "--out", str(out)]
    )
    assert result.exit_code == 0, result.output
    with out.open(newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert [r["team"] for r in rows] == [
        '\'=HYPERLINK("http://evil.example")',
        "-5",
        "plain",
        "'@x",
    ]
    assert all(not r["stratum"].startswith(("=", "@", "+")) for r in rows)
