"""Column codecs: numpy arrays to Arrow columns for vectors and matrices, and back.

Writers hand vectors and matrices over as numpy arrays; `column_array` lays a whole column out in
one buffer (a fixed-size list for a vector, nested lists for a matrix) instead of turning each cell
into Python floats first. Readers and the web page use the decoders for the binary and matrix
columns (`flow.field`, `audio.log_mel`, `audio.mfcc`, ...), so no caller re-implements their layout.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pyarrow as pa

__all__ = [
    "column_array",
    "flow_field",
    "matrices",
    "matrix",
    "vectors",
]


def column_array(values: Sequence[Any], type_: pa.DataType) -> pa.Array:
    """One column of `type_` from its cells: numpy arrays (or None) for vector and matrix columns
    take a buffer path; anything else goes through `pa.array`."""
    if any(isinstance(v, np.ndarray) for v in values):
        if pa.types.is_fixed_size_list(type_):
            return _fixed_size(values, type_)
        if _float_list_depth(type_):
            return _nested(values, type_)
    return pa.array(list(values), type=type_)


def _float_list_depth(type_: pa.DataType) -> int:
    """How many list levels wrap a float32 in `type_` (0: not a float list type)."""
    depth = 0
    while pa.types.is_list(type_) or pa.types.is_large_list(type_):
        type_, depth = type_.value_type, depth + 1
    return depth if pa.types.is_float32(type_) else 0


def _fixed_size(values: Sequence[Any], type_: pa.FixedSizeListType) -> pa.Array:
    """A fixed-width vector column: one float32 buffer, null where a cell is None."""
    width = type_.list_size
    mask = np.array([v is None for v in values], dtype=bool)
    flat = np.zeros((len(values), width), dtype=np.float32)
    for i, v in enumerate(values):
        if v is not None:
            row = np.asarray(v, dtype=np.float32).reshape(-1)
            if row.shape[0] != width:
                raise ValueError(f"a vector of width {row.shape[0]} in a column of width {width}")
            flat[i] = row
    inner = pa.array(flat.reshape(-1), type=pa.float32())
    return pa.FixedSizeListArray.from_arrays(inner, width, mask=pa.array(mask) if mask.any() else None)


def _nested(values: Sequence[Any], type_: pa.DataType) -> pa.Array:
    """A list<list<...<float32>>> column from n-d arrays (the outermost axis first), null for None."""
    depth = _float_list_depth(type_)
    arrays = [None if v is None else np.asarray(v, dtype=np.float32) for v in values]
    for a in arrays:
        if a is not None and a.ndim != depth:
            raise ValueError(f"a {a.ndim}-d array in a column of {depth} nested lists")
    leaves = [a.reshape(-1) for a in arrays if a is not None]
    flat = pa.array(np.concatenate(leaves) if leaves else np.zeros(0, np.float32), type=pa.float32())
    levels = _offsets(arrays, depth)  # outermost level first
    out: pa.Array = flat
    for level in reversed(range(depth)):
        offsets, nulls = levels[level]
        out = pa.ListArray.from_arrays(pa.array(offsets, pa.int32()), out, mask=nulls)
    return out.cast(type_)


def _offsets(arrays: list[np.ndarray | None], depth: int) -> list[tuple[np.ndarray, pa.Array | None]]:
    """Per list level, the offsets into the next level (and the nulls of the outermost)."""
    levels: list[tuple[np.ndarray, pa.Array | None]] = []
    counts = [0 if a is None else a.shape[0] for a in arrays]
    nulls = np.array([a is None for a in arrays], dtype=bool)
    levels.append((np.concatenate([[0], np.cumsum(counts)]), pa.array(nulls) if nulls.any() else None))
    for level in range(1, depth):
        sizes = [
            np.full(int(np.prod(a.shape[:level])), a.shape[level], dtype=np.int64)
            for a in arrays
            if a is not None
        ]
        per = np.concatenate(sizes) if sizes else np.zeros(0, np.int64)
        levels.append((np.concatenate([[0], np.cumsum(per)]), None))
    return levels


def vectors(column: pa.ChunkedArray | pa.Array) -> np.ndarray:
    """A fixed-width vector column as an (n, d) float32 matrix (a null row becomes NaN)."""
    arr = column.combine_chunks() if isinstance(column, pa.ChunkedArray) else column
    width = arr.type.list_size
    out = arr.flatten().to_numpy(zero_copy_only=False).astype(np.float32, copy=False)
    if arr.null_count:  # flatten skips null rows: put them back as NaN
        full = np.full((len(arr), width), np.nan, dtype=np.float32)
        full[arr.is_valid().to_numpy(zero_copy_only=False)] = out.reshape(-1, width)
        return full
    return out.reshape(len(arr), width)


def matrix(value: Any) -> np.ndarray | None:
    """One stored matrix cell (`audio.log_mel`, `mfcc`, ...) as a 2-d float32 array; None stays None."""
    if value is None:
        return None
    if isinstance(value, pa.Scalar):
        value = value.as_py()
        if value is None:
            return None
    rows = [np.asarray(r, dtype=np.float32) for r in value]
    return np.stack(rows) if rows else np.zeros((0, 0), dtype=np.float32)


def matrices(column: pa.ChunkedArray | pa.Array) -> list[np.ndarray | None]:
    """A matrix column (list<list<float32>>) as 2-d arrays, read from its buffers, not cell by cell."""
    arr = column.combine_chunks() if isinstance(column, pa.ChunkedArray) else column
    out: list[np.ndarray | None] = []
    rows = arr.flatten()
    leaves = rows.flatten().to_numpy(zero_copy_only=False).astype(np.float32, copy=False)
    row_offsets = arr.offsets.to_numpy()
    leaf_offsets = rows.offsets.to_numpy()
    valid = arr.is_valid().to_numpy(zero_copy_only=False)
    base = leaf_offsets[0] if len(leaf_offsets) else 0
    for i in range(len(arr)):
        if not valid[i]:
            out.append(None)
            continue
        lo, hi = row_offsets[i], row_offsets[i + 1]
        if hi == lo:
            out.append(np.zeros((0, 0), dtype=np.float32))
            continue
        start, end = leaf_offsets[lo] - base, leaf_offsets[hi] - base
        out.append(leaves[start:end].reshape(hi - lo, -1))
    return out


def flow_field(row: Mapping[str, Any]) -> np.ndarray | None:
    """A `flow` row's dense field: (rows, cols, 2) float32 from its little-endian float16 bytes."""
    data, shape = row.get("field"), row.get("field_shape")
    if data is None or shape is None:
        return None
    return np.frombuffer(data, dtype="<f2").reshape(tuple(int(s) for s in shape)).astype(np.float32)
