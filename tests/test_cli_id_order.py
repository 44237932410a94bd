"""The fast id sort behind `nudge randomize` gives exactly Arrow's string sort: same
positions, same duplicates found, and it steps aside (None) where it cannot."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pytest

from nudge_app.cli.id_order import MAX_ID_BYTES, id_order


def arrow_order(ids: pa.Array) -> tuple[np.ndarray, np.ndarray]:
    order = pc.sort_indices(ids).to_numpy()
    ordered = ids.take(pa.array(order)).to_pylist()
    same = np.array([a == b for a, b in zip(ordered[1:], ordered[:-1], strict=True)], bool)
    return order, same


def agree(values: list[str]) -> None:
    ids = pa.array(values, pa.string())
    fast = id_order(ids)
    assert fast is not None
    order, same = fast
    expected_order, expected_same = arrow_order(ids)
    np.testing.assert_array_equal(order, expected_order)
    np.testing.assert_array_equal(same, expected_same)


def test_equal_length_ids_with_a_shared_prefix():
    rng = np.random.default_rng(1)
    agree([f"R{i:08d}" for i in rng.permutation(5000)])


def test_ids_of_different_lengths_shorter_first():
    agree(["R10", "R1", "R2", "R", "R100", "S", "R09", "r1", "10", "9", "1"])


def test_random_text_ids_of_any_length_and_script():
    rng = np.random.default_rng(2)
    alphabet = list("aAzZ09 -_.~é€ßЖ中\x01\x7f")
    values = {"".join(rng.choice(alphabet, size=rng.integers(1, 20))) for _ in range(3000)}
    agree(sorted(values, key=lambda _: rng.random()))


def test_long_ids_need_several_keys():
    rng = np.random.default_rng(3)
    base = "household-0000000000-0000000000-member-"
    agree([base + f"{i:05d}"[::-1] + "x" * int(i % 3) for i in rng.permutation(2000)])


def test_duplicates_are_found_where_arrow_finds_them():
    agree(["b", "a", "c", "a", "d", "c", "c"])
    agree(["same", "same", "same"])


def test_a_sliced_array_is_read_from_its_own_offset():
    ids = pa.array(["zz", "y", "x3", "x1", "w", "x2"], pa.string()).slice(1, 4)
    order, same = id_order(ids)
    expected_order, expected_same = arrow_order(ids)
    np.testing.assert_array_equal(order, expected_order)
    np.testing.assert_array_equal(same, expected_same)


def test_chunked_ids_are_combined():
    ids = pa.chunked_array([pa.array(["c", "a"]), pa.array(["b"])])
    order, same = id_order(ids)
    assert order.tolist() == [1, 2, 0] and not same.any()


@pytest.mark.parametrize(
    "values",
    [
        ["a", "a\x00"],  # a zero byte: padding could not tell these apart
        ["x" * (MAX_ID_BYTES + 1), "y"],  # too long for the integer keys
        ["a", None],  # nulls: the caller refuses blank ids first
        [],
    ],
)
def test_steps_aside_where_it_cannot_match_arrow(values):
    assert id_order(pa.array(values, pa.string())) is None
