"""Readers for training and analysis: a PyTorch IterableDataset pinned to a version, and polars.

The dataset pins a table version when it is created, so a training job sees the same rows for its
whole life while ingest goes on. Work is split by Lance fragment across distributed ranks and
DataLoader workers, so each row is read by exactly one (rank, worker).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np
import pyarrow as pa

from mmfs.store.db import Store

try:  # torch is a dependency, but `import mmfs.store` must not pay for it
    from torch.utils.data import IterableDataset as _Base
except ImportError:  # pragma: no cover - torch missing entirely
    _Base = object  # type: ignore[assignment,misc]


class FeatureDataset(_Base):  # type: ignore[misc,valid-type]
    """Rows of one store table as dicts of tensors (vectors) and Python values (the rest)."""

    def __init__(
        self,
        store_uri: str,
        table: str = "segments",
        columns: Sequence[str] | None = None,
        *,
        version: int | None = None,
        rank: int = 0,
        world_size: int = 1,
        batch_rows: int = 1024,
    ) -> None:
        self.store_uri, self.table_name = store_uri, table
        self.columns = list(columns) if columns else None
        lance_ds = Store(store_uri).table(table).to_lance()
        self.dataset_uri = str(lance_ds.uri)
        self.version = int(version if version is not None else lance_ds.version)
        self.rank, self.world_size, self.batch_rows = rank, world_size, batch_rows

    def _fragments(self) -> list[Any]:
        import lance

        ds = lance.dataset(self.dataset_uri, version=self.version)
        fragments = sorted(ds.get_fragments(), key=lambda f: f.fragment_id)
        worker_id, n_workers = _worker()
        slot, n_slots = self.rank * n_workers + worker_id, self.world_size * n_workers
        return fragments[slot::n_slots]

    def __iter__(self) -> Iterator[dict[str, Any]]:
        for fragment in self._fragments():
            for batch in fragment.to_batches(columns=self.columns, batch_size=self.batch_rows):
                yield from _rows(batch)


def _worker() -> tuple[int, int]:
    from torch.utils.data import get_worker_info

    info = get_worker_info()
    return (info.id, info.num_workers) if info is not None else (0, 1)


def _rows(batch: pa.RecordBatch) -> Iterator[dict[str, Any]]:
    import torch

    columns = {}
    for name, array in zip(batch.schema.names, batch.columns, strict=True):
        if pa.types.is_fixed_size_list(array.type):
            values = array.flatten().to_numpy(zero_copy_only=False)
            matrix = values.reshape(-1, array.type.list_size) if len(array) else values
            valid = np.asarray(array.is_valid())
            columns[name] = (torch.from_numpy(np.array(matrix, dtype=np.float32)), valid)
        else:
            columns[name] = (array.to_pylist(), None)
    nulls_seen = {name: 0 for name in columns}
    for i in range(batch.num_rows):
        row = {}
        for name, (values, valid) in columns.items():
            if valid is None:
                row[name] = values[i]
            elif valid[i]:
                row[name] = values[i - nulls_seen[name]]
            else:
                row[name] = None
                nulls_seen[name] += 1
        yield row


def to_polars(store_uri: str, table: str, *, version: int | None = None) -> Any:
    """A polars LazyFrame over a table, optionally at a pinned version."""
    import lance
    import polars as pl

    latest = Store(store_uri).table(table).to_lance()
    ds = lance.dataset(str(latest.uri), version=version) if version is not None else latest
    return pl.scan_pyarrow_dataset(ds)
