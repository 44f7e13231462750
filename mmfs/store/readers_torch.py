"""Arrow rows to what a training loop takes: float32 tensors for vectors, Python values for the rest.

Two shapes: rows (a dict per row, None for a null vector, the documented reader behaviour) and
batches (a `FeatureBatch` per batch: each vector column one (rows, width) tensor with zeros for null
vectors, its validity under `batch[VALID_KEY][column]`, the other columns as lists).

A batch's tensors are views of one buffer, allocated in shared memory inside a DataLoader worker, and
a batch pickles as that one buffer: torch hands each tensor to another process through its own file
descriptor (about half a millisecond apiece), and a fresh tensor is first copied into shared memory.
Inside a worker the buffer is a recycled segment (`readers_shm`): fresh shared pages cost as much as
reading the rows.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pyarrow as pa

VALID_KEY = "_valid"  # no store column starts with an underscore
_ALIGN = 64  # bytes; every view in a batch buffer starts on a cache line


def is_vector(data_type: pa.DataType) -> bool:
    """Whether a column holds fixed-width vectors (embeddings)."""
    return pa.types.is_fixed_size_list(data_type)


class FeatureBatch(dict[str, Any]):
    """A batch dict whose tensors share one buffer, so it crosses a process boundary as one tensor."""

    def __init__(self, data: Any = (), buffer: Any = None, segment: Any = None) -> None:
        super().__init__(data)
        self.buffer = buffer  # a uint8 tensor over the whole storage, or None
        self.segment = segment  # the recycled shared-memory segment under `buffer`, in a worker

    def __copy__(self) -> FeatureBatch:
        """A shallow copy that takes over the segment (the DataLoader copies each batch once, in the
        worker, and sends the copy); the original then pickles as a plain copy, never sharing it."""
        segment, self.segment = self.segment, None
        return FeatureBatch(self, self.buffer, segment)

    def __reduce__(self) -> tuple[Any, ...]:
        views: list[tuple[str, str | None, Any, int, tuple[int, ...]]] = []
        rest: dict[str, Any] = {}
        for key, value in self.items():
            if isinstance(value, dict):
                rest[key] = {sub: v for sub, v in value.items() if not self._packs(key, sub, v, views)}
            elif not self._packs(key, None, value, views):
                rest[key] = value
        if views and self.segment is not None:
            from mmfs.store.readers_shm import reduce_segment

            segment, self.segment = self.segment, None  # one consumer per segment: a second pickle copies
            return (_attach_batch, (*reduce_segment(segment, self.buffer.numel()), rest, views, list(self)))
        return (_rebuild_batch, (self.buffer if views else None, rest, views, list(self)))

    def _packs(self, key: str, sub: str | None, value: Any, views: list[Any]) -> bool:
        """Record `value` as a view of the buffer if it is one (and contiguous)."""
        import torch

        if self.buffer is None or not isinstance(value, torch.Tensor) or not value.is_contiguous():
            return False
        if value.untyped_storage().data_ptr() != self.buffer.untyped_storage().data_ptr():
            return False
        offset = value.storage_offset() * value.element_size()
        views.append((key, sub, value.dtype, offset, tuple(value.shape)))
        return True


def _attach_batch(
    dup_fd: Any, nbytes: int, rest: dict[str, Any], views: list[Any], order: list[str]
) -> FeatureBatch:
    """Unpickle a batch sent in a recycled segment: map the segment, then rebuild the views."""
    from mmfs.store.readers_shm import attach

    return _rebuild_batch(attach(dup_fd, nbytes), rest, views, order)


def _rebuild_batch(buffer: Any, rest: dict[str, Any], views: list[Any], order: list[str]) -> FeatureBatch:
    batch = dict(rest)
    for key, sub, dtype, offset, shape in views:
        nbytes = math.prod(shape) * dtype.itemsize
        tensor = buffer[offset : offset + nbytes].view(dtype).view(shape)
        if sub is None:
            batch[key] = tensor
        else:
            batch.setdefault(key, {})[sub] = tensor
    return FeatureBatch({key: batch[key] for key in order}, buffer)


def _buffer(nbytes: int) -> tuple[Any, Any]:
    """An uninitialised byte tensor (and its recycled segment); in a worker, in shared memory.

    A worker takes a recycled segment when one is free; otherwise it allocates as torch's own
    `default_collate` does in workers.
    """
    import torch
    from torch.utils.data import get_worker_info

    from mmfs.store import readers_shm

    if nbytes == 0 or get_worker_info() is None:
        return torch.empty(nbytes, dtype=torch.uint8), None
    if readers_shm.available():
        recycled = readers_shm.acquire(nbytes)
        if recycled is not None:
            return recycled[1], recycled[0]
    storage = torch.empty(0, dtype=torch.uint8)._typed_storage()._new_shared(nbytes)
    return torch.empty(0, dtype=torch.uint8).new(storage), None


def _fill(matrix: np.ndarray, valid: np.ndarray, column: pa.Array | pa.ChunkedArray) -> None:
    """Copy a vector column into `matrix` and its validity into `valid`; null rows become zeros."""
    width, row = column.type.list_size, 0
    for chunk in column.chunks if isinstance(column, pa.ChunkedArray) else [column]:
        n = len(chunk)
        values = chunk.values.slice(chunk.offset * width, n * width).to_numpy(zero_copy_only=False)
        np.copyto(matrix[row : row + n], values.reshape(n, width), casting="same_kind")
        valid[row : row + n] = chunk.is_valid().to_numpy(zero_copy_only=False) if chunk.null_count else True
        row += n
    if not valid.all():
        matrix[~valid] = 0.0


def _packed(
    table: pa.Table | pa.RecordBatch, vectors: list[str]
) -> tuple[Any, Any, dict[str, tuple[Any, Any]]]:
    """One buffer (and its segment) holding, per vector column, a float32 (rows, width) matrix and a mask."""
    import torch

    rows, offsets, end = table.num_rows, {}, 0
    for name in vectors:
        width = table.schema.field(name).type.list_size
        offsets[name] = (end, width)
        end += -(-(rows * width * 4 + rows) // _ALIGN) * _ALIGN
    buffer, segment = _buffer(end)
    out = {}
    for name, (start, width) in offsets.items():
        mask_at = start + rows * width * 4
        matrix = buffer[start:mask_at].view(torch.float32).view(rows, width)
        out[name] = (matrix, buffer[mask_at : mask_at + rows].view(torch.bool))
    return buffer, segment, out


def to_batch(table: pa.Table | pa.RecordBatch) -> FeatureBatch:
    """One dict per batch: vectors as (rows, width) tensors with validity masks, the rest as lists."""
    vectors = [name for name in table.schema.names if is_vector(table.schema.field(name).type)]
    buffer, segment, views = _packed(table, vectors)
    batch, valid = FeatureBatch(buffer=buffer, segment=segment), {}
    for name in table.schema.names:
        if name in views:
            matrix, mask = views[name]
            _fill(matrix.numpy(), mask.numpy(), table.column(name))
            batch[name], valid[name] = matrix, mask
        else:
            batch[name] = table.column(name).to_pylist()
    batch[VALID_KEY] = valid
    return batch


def to_rows(table: pa.Table | pa.RecordBatch) -> list[dict[str, Any]]:
    """One dict per row: vectors as float32 tensors (views of one batch tensor), None when null."""
    batch = to_batch(table)
    valid = batch.pop(VALID_KEY)
    columns = []
    for name, values in batch.items():
        if name in valid:
            rows = list(values.unbind(0))
            values = [row if ok else None for row, ok in zip(rows, valid[name].tolist(), strict=True)]
        columns.append(values)
    return [dict(zip(batch, row, strict=True)) for row in zip(*columns, strict=True)]
