"""`nudge randomize`: randomize a CSV list into arms, exactly balanced within strata, no database.

Every input row is written back in input order with three more columns: `arm`,
`stratum` and `probability`. Units are randomized in the order of their ids, so the
same list in any row order with the same seed gets the same arms. Nothing here imports
Flask: the command reads and writes with pyarrow and randomizes with numpy.
"""

from __future__ import annotations

import csv
import os
import tempfile

import click
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

from experiments.bands import BandSpec, BandSpecError, parse_band_spec
from experiments.randomization import (
    Allocation,
    RandomizationError,
    Strata,
    block_ra,
    cluster_ra,
    stratify,
)
from experiments.saturation import format_saturation, parse_saturations, saturation_ra
from nudge_app.cli.id_order import id_order

OUTPUT_COLUMNS = ("arm", "stratum", "probability")


def _fail(message: str) -> click.ClickException:
    return click.ClickException(message)


def _parse_allocation(arms_text: str, weights_text: str | None) -> Allocation:
    arms = [a.strip() for a in arms_text.split(",")]
    if len(arms) < 2 or any(not a for a in arms):
        raise _fail("--arms: give at least two comma-separated arm names, e.g. control,a,b")
    if weights_text is None:
        weights = [1.0] * len(arms)
    else:
        try:
            weights = [float(w) for w in weights_text.split(",")]
        except ValueError:
            raise _fail(
                f"--weights: {weights_text!r} is not a list of numbers, e.g. 2,1,1"
            ) from None
        if len(weights) != len(arms):
            raise _fail(
                f"--weights: {len(weights)} weights for {len(arms)} arms "
                f"({', '.join(arms)}): give one weight per arm"
            )
    try:
        return Allocation(tuple(arms), tuple(weights))
    except RandomizationError as exc:
        raise _fail(f"--arms/--weights: {exc}") from None


def _read_header(path: str) -> list[str]:
    try:
        with open(path, newline="", encoding="utf-8-sig") as fh:
            row = next(csv.reader(fh), None)
    except FileNotFoundError:
        raise _fail(f"{path}: no such file") from None
    except IsADirectoryError:
        raise _fail(f"{path}: is a directory, not a CSV file") from None
    except UnicodeDecodeError:
        raise _fail(f"{path}: not UTF-8 text (save the CSV as UTF-8)") from None
    except (OSError, csv.Error) as exc:
        raise _fail(f"{path}: cannot read: {exc}") from None
    if row is None or not any(c.strip() for c in row):
        raise _fail(f"{path}: the file is empty (expected a header row, then one row per unit)")
    names = [c.strip() for c in row]
    seen: set[str] = set()
    for i, name in enumerate(names):
        if not name:
            raise _fail(f"{path}: column {i + 1} of the header has no name")
        if name in seen:
            raise _fail(f"{path}: the header names column {name!r} twice")
        seen.add(name)
    return names


def _read_table(path: str, names: list[str]) -> pa.Table:
    read = pacsv.ReadOptions(column_names=names, skip_rows=1, block_size=1 << 24)
    # Every column as text, so ids like 007 and numbers like 3.50 are written back unchanged.
    convert = pacsv.ConvertOptions(
        column_types={n: pa.string() for n in names},
        strings_can_be_null=False,
        quoted_strings_can_be_null=False,
    )
    parse = pacsv.ParseOptions(newlines_in_values=True)
    try:
        table = pacsv.read_csv(
            path, read_options=read, parse_options=parse, convert_options=convert
        )
    except pa.ArrowInvalid as exc:
        text = str(exc)
        if "UTF8" in text or "utf8" in text.lower():
            raise _fail(f"{path}: not UTF-8 text (save the CSV as UTF-8)") from None
        raise _fail(f"{path}: not a readable CSV file: {text}") from None
    except OSError as exc:
        raise _fail(f"{path}: cannot read: {exc}") from None
    if table.num_rows == 0:
        raise _fail(f"{path}: the file has a header but no rows")
    return table.combine_chunks()


def _numeric_column(table: pa.Table, spec: BandSpec) -> np.ndarray:
    """A banded column as floats (NaN for blanks); a non-number names its row."""
    text = pc.utf8_trim_whitespace(table.column(spec.column))
    blank = pc.equal(text, "")
    values = pc.if_else(blank, pa.scalar(None, pa.string()), text)
    try:
        numbers = pc.cast(values, pa.float64())
    except pa.ArrowInvalid:
        numbers = None
    if numbers is not None:
        out = numbers.to_numpy(zero_copy_only=False)
        if np.isfinite(out[~np.isnan(out)]).all():
            return out
    import pandas as pd

    raw = values.to_numpy(zero_copy_only=False)
    parsed = pd.to_numeric(pd.Series(raw, dtype=object), errors="coerce").to_numpy(float)
    bad = (np.isnan(parsed) | ~np.isfinite(parsed)) & ~blank.to_numpy(zero_copy_only=False)
    pos = int(np.flatnonzero(bad)[0])
    raise _fail(
        f"column {spec.column!r}, row {pos + 2} of the file: {raw[pos]!r} is not a number "
        f"(cut points {','.join(f'{c:g}' for c in spec.cuts or ())} need numbers; "
        "leave the cell empty when unknown)"
    )


def _strata(table: pa.Table, specs: list[BandSpec]) -> Strata:
    columns: dict[str, np.ndarray] = {}
    for spec in specs:
        if spec.cuts is not None:
            columns[spec.column] = _numeric_column(table, spec)
        else:
            col = pc.utf8_trim_whitespace(table.column(spec.column))
            columns[spec.column] = col.to_numpy(zero_copy_only=False)
    try:
        return stratify(columns, specs, n_units=table.num_rows)
    except (BandSpecError, RandomizationError) as exc:
        raise _fail(str(exc)) from None


def _canonical_order(table: pa.Table, id_column: str | None) -> np.ndarray:
    """Row positions sorted by unit id; refuses blank and duplicate ids."""
    if id_column is None:
        return np.arange(table.num_rows)
    ids = pc.utf8_trim_whitespace(table.column(id_column))
    blank = pc.equal(ids, "")
    if pc.any(blank).as_py():
        pos = int(np.flatnonzero(blank.to_numpy(zero_copy_only=False))[0])
        raise _fail(f"column {id_column!r}, row {pos + 2} of the file: the id is empty")
    fast = id_order(ids)
    if fast is not None:
        order, same = fast
    else:
        order = pc.sort_indices(ids).to_numpy()
        ordered = ids.take(pa.array(order))
        same = pc.equal(ordered[1:], ordered[:-1]).to_numpy(zero_copy_only=False)
    if same.any():
        first = int(np.flatnonzero(same)[0])
        dup = ids[int(order[first])].as_py()
        rows = sorted([int(order[first]) + 2, int(order[first + 1]) + 2])
        raise _fail(
            f"column {id_column!r}: id {dup!r} appears more than once "
            f"(rows {rows[0]} and {rows[1]} of the file); ids must be unique"
        )
    return order


def _write(table: pa.Table, out: str) -> None:
    from experiments.csv_cells import safe_column

    table = pa.table([safe_column(c) for c in table.columns], names=table.column_names)
    directory = os.path.dirname(os.path.abspath(out))
    if not os.path.isdir(directory):
        raise _fail(f"--out: the folder {directory} does not exist")
    fd, tmp = tempfile.mkstemp(prefix=".nudge-randomize-", suffix=".csv", dir=directory)
    os.close(fd)
    try:
        try:
            # Plain, unquoted output when no value needs quotes (the common case)...
            pacsv.write_csv(
                table,
                tmp,
                pacsv.WriteOptions(quoting_style="none", quoting_header="none", batch_size=65536),
            )
        except pa.ArrowInvalid:
            # ...otherwise quote where RFC 4180 needs it.
            pacsv.write_csv(
                table, tmp, pacsv.WriteOptions(quoting_style="needed", batch_size=65536)
            )
        os.replace(tmp, out)
    except OSError as exc:
        raise _fail(f"--out: cannot write {out}: {exc.strerror or exc}") from None
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def randomize_csv(
    in_path: str,
    out_path: str,
    allocation: Allocation,
    seed: int,
    specs: list[BandSpec],
    cluster: str | None = None,
    id_column: str | None = "id",
    id_required: bool = False,
    saturations: tuple[float, ...] | None = None,
) -> dict[str, int]:
    """Randomize the rows of `in_path` into `out_path`; returns units per arm.

    With `saturations` (a randomized saturation design, `cluster` required) each cluster
    gets a saturation and that share of its members the second arm; the output gains a
    `saturation` column."""
    names = _read_header(in_path)
    added = (*OUTPUT_COLUMNS, "saturation") if saturations else OUTPUT_COLUMNS
    for col in added:
        if col in names:
            raise _fail(
                f"{in_path}: already has a column {col!r}; rename it (the output adds "
                f"{', '.join(added)})"
            )
    wanted = [(s.column, "--strata") for s in specs]
    if cluster:
        wanted.append((cluster, "--cluster"))
    if id_column and id_required:
        wanted.append((id_column, "--id"))
    for col, option in wanted:
        if col not in names:
            raise _fail(f"{option}: no column {col!r} in {in_path} (columns: {', '.join(names)})")
    if id_column and id_column not in names:
        id_column = None
    table = _read_table(in_path, names)
    strata = _strata(table, specs)
    order = _canonical_order(table, id_column)
    codes = strata.codes
    arm_idx = np.empty(table.num_rows, dtype=np.int64)
    try:
        if cluster:
            clusters = pc.utf8_trim_whitespace(table.column(cluster))
            blank = pc.equal(clusters, "").to_numpy(zero_copy_only=False)
            if blank.any():
                pos = int(np.flatnonzero(blank)[0])
                raise _fail(f"column {cluster!r}, row {pos + 2} of the file: the cluster is empty")
            cl = clusters.to_numpy(zero_copy_only=False)[order]
            if saturations:
                sat = saturation_ra(cl, saturations, seed, codes[order] if specs else None)
                arm_idx[order] = sat.treated.astype(np.int64)
                saturation = np.empty(table.num_rows)
                saturation[order] = sat.saturation
            else:
                arm_idx[order] = cluster_ra(cl, allocation, seed, codes[order] if specs else None)
        else:
            arm_idx[order] = block_ra(codes[order], allocation, seed)
    except RandomizationError as exc:
        raise _fail(str(exc)) from None
    arm_col = pa.array(allocation.arms, pa.string()).take(pa.array(arm_idx))
    stratum_col = pa.array(strata.labels, pa.string()).take(pa.array(codes))
    if saturations:
        # The chance of the row's own arm in its cluster: s treated, 1 - s untreated.
        prob = np.where(arm_idx == 1, saturation, 1.0 - saturation)
        prob_col = pa.array(np.round(prob, 6))
    else:
        prob_col = pa.array(np.asarray(allocation.probabilities)[arm_idx])
    out = table.append_column("arm", arm_col).append_column("stratum", stratum_col)
    out = out.append_column("probability", prob_col)
    if saturations:
        out = out.append_column(
            "saturation", pa.array([format_saturation(x) for x in saturation], pa.string())
        )
    _write(out, out_path)
    counts = np.bincount(arm_idx, minlength=len(allocation.arms))
    return dict(zip(allocation.arms, (int(c) for c in counts), strict=True))


@click.command(
    "randomize",
    short_help="Randomize a CSV list into arms (no database).",
    epilog=(
        "Example: nudge randomize residents.csv --arms control,efficacy,peer "
        "--weights 2,1,1 --strata age:35,55 --strata self_efficacy:2.5,3.5 "
        "--seed 20261130 --out assigned.csv"
    ),
)
@click.argument("in_path", metavar="IN.csv", type=click.Path(dir_okay=True))
@click.option("--arms", required=True, help="Comma-separated arm names, e.g. control,a,b.")
@click.option("--weights", help="Comma-separated relative weights, one per arm (default equal).")
@click.option(
    "--strata",
    "strata",
    multiple=True,
    metavar="COL[:CUTS]",
    help="Stratify by a column: COL level by level, or COL:CUTS with comma-separated cut "
    "points, intervals closed on the left (age:35,55 gives <35, 35-54, 55+). Repeatable.",
)
@click.option("--cluster", metavar="COL", help="Randomize whole clusters (household, street).")
@click.option(
    "--saturations",
    metavar="S1,S2,...",
    help="Randomized saturation design (needs --cluster and two arms, control first): "
    "each cluster gets one of these shares, e.g. 0,0.4,0.8, and that share of its "
    "members the second arm. Adds a saturation column.",
)
@click.option(
    "--id",
    "id_column",
    metavar="COL",
    help="Unit id column (default: `id` when present, else the row order). Ids must be unique.",
)
@click.option("--seed", required=True, type=click.IntRange(min=0), help="Recorded seed.")
@click.option("--out", "out_path", required=True, metavar="OUT.csv", help="Output CSV file.")
def command(
    in_path: str,
    arms: str,
    weights: str | None,
    strata: tuple[str, ...],
    cluster: str | None,
    saturations: str | None,
    id_column: str | None,
    seed: int,
    out_path: str,
) -> None:
    """Randomize IN.csv into arms with exact counts in every stratum; write OUT.csv.

    Every input row is written in input order with the columns arm, stratum and
    probability. In each stratum every arm gets floor(N x p) units and the remainder is
    handed out at random in proportion to the weights. The same file and seed always
    give the same arms. With --saturations, clusters are randomized to saturations (the
    numbers of clusters per saturation differ by at most one) and, within each cluster,
    the number in the second arm is within one of saturation x size.
    """
    allocation = _parse_allocation(arms, weights)
    levels = None
    if saturations is not None:
        if not cluster:
            raise _fail("--saturations: a saturation design randomizes clusters; add --cluster COL")
        if len(allocation.arms) != 2:
            raise _fail(
                "--saturations: give exactly two arms, the untreated arm first "
                f"(e.g. --arms control,mentor), not {len(allocation.arms)}"
            )
        if weights is not None:
            raise _fail("--saturations: the saturations set the shares; leave out --weights")
        try:
            levels = parse_saturations(saturations)
        except RandomizationError as exc:
            raise _fail(f"--saturations: {exc}") from None
    try:
        specs = [parse_band_spec(s) for s in strata]
    except BandSpecError as exc:
        raise _fail(f"--strata: {exc}") from None
    columns = [s.column for s in specs]
    if len(set(columns)) != len(columns):
        raise _fail("--strata: a column is given twice")
    if os.path.abspath(out_path) == os.path.abspath(in_path):
        raise _fail("--out: choose a file other than the input")
    counts = randomize_csv(
        in_path,
        out_path,
        allocation,
        seed,
        specs,
        cluster=cluster,
        id_column=id_column or "id",
        id_required=id_column is not None,
        saturations=levels,
    )
    total = sum(counts.values())
    summary = ", ".join(f"{arm} {n}" for arm, n in counts.items())
    click.echo(f"randomized {total} rows into {len(counts)} arms ({summary}): {out_path}")
