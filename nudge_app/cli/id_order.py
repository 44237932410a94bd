"""Sort a million text unit ids fast, in exactly the byte order Arrow's sort gives.

`nudge randomize` puts units in the order of their ids before randomizing, so that the
same list in any row order gets the same arms. Comparing a million strings one by one
is most of that command's time. Here the ids' UTF-8 bytes become a fixed-width table
(padded with zero bytes); columns holding the same byte in every row (a shared prefix
such as `R000`) cannot decide any comparison and are dropped; the rest is read as
big-endian 64-bit integers, which sort as the bytes do. Zero padding keeps a shorter
id before every longer id it begins (`R1` < `R10`) only because no id holds a zero
byte itself: ids that do, or that are very long, return None and the caller sorts the
strings instead.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa

# Longer ids (more than 8 integer keys) are rare; the caller's string sort handles them.
MAX_ID_BYTES = 64


def id_order(ids: pa.Array | pa.ChunkedArray) -> tuple[np.ndarray, np.ndarray] | None:
    """(positions sorting `ids` by their bytes, stably; for each sorted id after the
    first, whether it equals the one before), or None when the fast path does not apply
    (nulls, zero bytes, ids longer than MAX_ID_BYTES)."""
    if isinstance(ids, pa.ChunkedArray):
        ids = ids.combine_chunks()
    n = len(ids)
    if n == 0 or ids.null_count or not pa.types.is_string(ids.type):
        return None
    offset_buf, data_buf = ids.buffers()[1:3]
    offsets = np.frombuffer(offset_buf, dtype=np.int32)[ids.offset : ids.offset + n + 1]
    offsets = offsets.astype(np.int64)
    lengths = np.diff(offsets)
    width = int(lengths.max())
    if width == 0 or width > MAX_ID_BYTES or data_buf is None:
        return None
    body = np.frombuffer(data_buf, dtype=np.uint8)[offsets[0] : offsets[-1]]
    if not body.all():  # a zero byte inside an id
        return None
    if (lengths == width).all():
        table = body.reshape(n, width)
    else:
        table = np.zeros((n, width), dtype=np.uint8)
        rows = np.repeat(np.arange(n), lengths)
        cols = np.arange(len(body)) - np.repeat(offsets[:-1] - offsets[0], lengths)
        table[rows, cols] = body
    deciding = table[:, ~(table == table[0]).all(axis=0)]
    if deciding.shape[1] == 0:  # every id the same
        return np.arange(n), np.ones(n - 1, dtype=bool)
    words = -(-deciding.shape[1] // 8)
    packed = np.zeros((n, words * 8), dtype=np.uint8)
    packed[:, : deciding.shape[1]] = deciding
    keys = packed.view(">u8").astype(np.uint64)  # (n, words), native byte order to sort
    if words == 1:
        order = np.argsort(keys[:, 0], kind="stable")
    else:
        order = np.lexsort(keys.T[::-1])  # lexsort is stable; its last key is the primary
    ordered = keys[order]
    same = (ordered[1:] == ordered[:-1]).all(axis=1)
    return order, same
