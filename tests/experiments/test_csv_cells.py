"""CSV formula neutralisation: text a spreadsheet would run gets a leading apostrophe,
numbers stay numbers, line breaks inside a cell stay inside it; the same rule for the
row writers and the Arrow column version."""

from __future__ import annotations

import csv
import io

import pyarrow as pa
import pytest

from experiments.csv_cells import safe_cell, safe_column, to_csv

FORMULAS = [
    "=1+1",
    "+SUM(A1)",
    "-2+3",
    "@cmd",
    "\t=1",
    "\r=1",
    '  =HYPERLINK("x")',
    "=cmd|' /C calc'!A0",
]
DATA = ["-3", "+447700900123", "-0.031", "1e-5", "plain", "a=b", "", "R0001", "café"]


@pytest.mark.parametrize("text", FORMULAS)
def test_formulas_are_neutralised(text):
    assert safe_cell(text) == "'" + text


@pytest.mark.parametrize("text", DATA)
def test_data_is_left_alone(text):
    assert safe_cell(text) == text


def test_numbers_and_none_are_not_text():
    assert safe_cell(-0.5) == -0.5 and safe_cell(None) is None and safe_cell(3) == 3


def test_arrow_column_agrees_with_the_row_rule():
    values = FORMULAS + DATA + [None]
    column = pa.chunked_array([pa.array(values)])
    assert safe_column(column).to_pylist() == [safe_cell(v) for v in values]
    numbers = pa.chunked_array([pa.array([-1.5, 2.0])])
    assert safe_column(numbers) is numbers


def test_arrow_column_in_many_chunks_with_few_suspects():
    # Most cells cannot open a formula; the few that might sit in different chunks.
    values = ["plain"] * 50 + ["=1+1", "-3", " -3", None, "@x"] + ["R0001"] * 50 + ["+44"]
    column = pa.chunked_array([pa.array(values[i : i + 7]) for i in range(0, len(values), 7)])
    assert safe_column(column).to_pylist() == [safe_cell(v) for v in values]
    clean = pa.chunked_array([pa.array(["a", "-3"]), pa.array(["+1.5", None])])
    assert safe_column(clean) is clean


def test_line_breaks_stay_inside_one_quoted_cell():
    text = to_csv(["name", "n"], [["Ann\r\n=1+1", 1], ["=evil", -2]])
    rows = list(csv.reader(io.StringIO(text, newline="")))
    assert rows == [["name", "n"], ["Ann\r\n=1+1", "1"], ["'=evil", "-2"]]
