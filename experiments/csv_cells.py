"""CSV cells a spreadsheet shows but never runs (OWASP "CSV injection").

A text cell that starts with `=`, `+`, `-`, `@`, a tab or a carriage return (after any
leading spaces) is a formula to Excel, LibreOffice and Google Sheets: `=HYPERLINK(...)`
in an arm label or a stratum level would run when an officer opens the export. Such a
cell gets a leading apostrophe, which the spreadsheet hides. Numbers are left alone, as
numbers and as text that is a plain number (`-0.031`, `+447700900123`), so estimates
stay numeric. A carriage return or line feed inside a cell is kept but the cell is
quoted (the writers below use QUOTE_MINIMAL, which quotes them), so it can never start
a new row. Every CSV the platform writes goes through `safe_cell` or `safe_column`.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterable
from typing import Any

FORMULA_START = ("=", "+", "-", "@", "\t", "\r", "\n")
_PLAIN_NUMBER = re.compile(r"^[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?$")
# The same two tests, for Arrow's vectorised regular expressions (RE2 syntax).
_FORMULA_RE2 = r"^[ ]*[=+\-@\t\r\n]"
_NUMBER_RE2 = r"^[+-]?([0-9]+(\.[0-9]*)?|\.[0-9]+)([eE][+-]?[0-9]+)?$"


def is_formula(text: str) -> bool:
    stripped = text.lstrip(" ")
    return stripped.startswith(FORMULA_START) and not _PLAIN_NUMBER.match(text)


def safe_cell(value: Any) -> Any:
    """The value to write: numbers and None as they are, text neutralised if needed."""
    if isinstance(value, str) and value and is_formula(value):
        return "'" + value
    return value


def safe_row(values: Iterable[Any]) -> list[Any]:
    return [safe_cell(v) for v in values]


def writer(out, **kwargs):
    """A `csv.writer` over `out` whose `writerow` neutralises every cell."""
    return _SafeWriter(csv.writer(out, lineterminator="\n", **kwargs))


def dict_writer(out, fieldnames, **kwargs):
    """A `csv.DictWriter` over `out` whose `writerow` neutralises every value."""
    return _SafeDictWriter(
        csv.DictWriter(out, fieldnames=fieldnames, lineterminator="\n", **kwargs)
    )


def to_csv(header: list[str], rows: Iterable[Iterable[Any]]) -> str:
    out = io.StringIO()
    w = writer(out)
    w.writerow(header)
    for row in rows:
        w.writerow(row)
    return out.getvalue()


class _SafeWriter:
    def __init__(self, inner):
        self._inner = inner

    def writerow(self, row: Iterable[Any]):
        return self._inner.writerow(safe_row(row))

    def writerows(self, rows: Iterable[Iterable[Any]]):
        for row in rows:
            self.writerow(row)


class _SafeDictWriter:
    def __init__(self, inner):
        self._inner = inner

    def writeheader(self):
        return self._inner.writeheader()

    def writerow(self, row: dict):
        return self._inner.writerow({k: safe_cell(v) for k, v in row.items()})


def safe_column(column):
    """`safe_cell` over a pyarrow string column at once (for million-row outputs);
    columns of other types are returned unchanged.

    Only cells whose first character could open a formula (one of FORMULA_START or a
    space) go through the two regular expressions: on a typical column that is none."""
    import pyarrow as pa
    import pyarrow.compute as pc

    if not (pa.types.is_string(column.type) or pa.types.is_large_string(column.type)):
        return column
    first = pc.utf8_slice_codeunits(column, 0, 1)
    starts = pa.array([*FORMULA_START, " "], column.type)
    candidate = pc.fill_null(pc.is_in(first, value_set=starts), False)
    if not pc.any(candidate).as_py():
        return column
    suspects = pc.filter(column, candidate)
    formula = pc.and_(
        pc.match_substring_regex(suspects, _FORMULA_RE2),
        pc.invert(pc.match_substring_regex(suspects, _NUMBER_RE2)),
    )
    if not pc.any(formula).as_py():
        return column
    import numpy as np

    mask = np.zeros(len(column), dtype=bool)
    positions = np.flatnonzero(candidate.to_numpy(zero_copy_only=False))
    mask[positions] = formula.to_numpy(zero_copy_only=False)
    quoted = pc.binary_join_element_wise(pa.scalar("'", column.type), column, "")
    return pc.if_else(pa.array(mask), quoted, column)
