"""Arrow rows to what a training loop takes: float32 tensors for vectors, Python values for the rest.

Two shapes: rows (a dict per row, None for a null vector, the documented reader behaviour) and
batches (a dict per batch, each vector column one (rows, width) tensor with zeros for null vectors
and its validity under `batch[VALID_KEY][column]`), which is what crosses a DataLoader queue cheaply.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pyarrow as pa

VALID_KEY = "_valid"  # no store column starts with an underscore


def is_vector(data_type: pa.DataType) -> bool:
    """Whether a column holds fixed-width vectors (embeddings)."""
    return pa.types.is_fixed_size_list(data_type)


def _array(column: pa.Array | pa.ChunkedArray) -> pa.Array:
    return column.combine_chunks() if isinstance(column, pa.ChunkedArray) else column


def vector_matrix(array: pa.FixedSizeListArray) -> tuple[Any, np.ndarray | None]:
    """A (rows, width) float32 tensor, zeros where the vector is null, and the validity (None: no nulls)."""
    import torch

    width = array.type.list_size
    values = array.values.slice(array.offset * width, len(array) * width)
    # a copy: Arrow buffers are read-only, and a training loop may write into its batch
    matrix = np.array(values.to_numpy(zero_copy_only=False), dtype=np.float32).reshape(len(array), width)
    valid = None
    if array.null_count:
        valid = array.is_valid().to_numpy(zero_copy_only=False)
        matrix[~valid] = 0.0
    return torch.from_numpy(matrix), valid


def to_rows(table: pa.Table | pa.RecordBatch) -> list[dict[str, Any]]:
    """One dict per row: vectors as float32 tensors (views of one batch tensor), None when null."""
    names, columns = table.schema.names, []
    for name in names:
        array = _array(table.column(name))
        if is_vector(array.type):
            matrix, valid = vector_matrix(array)
            rows = list(matrix.unbind(0))
            columns.append(rows if valid is None else [r if ok else None for r, ok in zip(rows, valid, strict=True)])
        else:
            columns.append(array.to_pylist())
    return [dict(zip(names, values, strict=True)) for values in zip(*columns, strict=True)]


def to_batch(table: pa.Table | pa.RecordBatch) -> dict[str, Any]:
    """One dict for the whole batch: vectors as (rows, width) tensors plus validity masks, the rest as lists."""
    import torch

    out: dict[str, Any] = {}
    valid_masks: dict[str, Any] = {}
    for name in table.schema.names:
        array = _array(table.column(name))
        if is_vector(array.type):
            out[name], valid = vector_matrix(array)
            mask = np.ones(len(array), dtype=bool) if valid is None else valid
            valid_masks[name] = torch.from_numpy(np.ascontiguousarray(mask))
        else:
            out[name] = array.to_pylist()
    out[VALID_KEY] = valid_masks
    return out
