"""Readers for training and analysis: PyTorch datasets pinned to a table version, and polars.

A dataset pins the table version when it is created, so a training job sees the same rows for its
whole life while ingest goes on. It holds only plain values (URIs, version, columns, seed) and each
process, DataLoader workers included, opens the pinned version itself on first use; the main process
goes through LanceDB and only workers use `lance` directly (`readers_io`), which keeps `fork` safe.
Rows are read with `take` by position, so sharding, shuffling, splits and resuming are all index
arithmetic (`readers_plan`).
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import numpy as np

from mmfs.errors import ConfigError
from mmfs.store.db import Store
from mmfs.store.readers_io import (
    Reader,
    checkout,
    columns_of,
    in_worker,
    media_ids,
    open_reader,
    read_ahead,
    take_in_order,
    worker_slot,
)
from mmfs.store.readers_plan import chunks, epoch_order, rank_count, rank_share, worker_positions
from mmfs.store.readers_torch import VALID_KEY, FeatureBatch, to_batch, to_rows
from mmfs.store.splits import DEFAULT_FRACTIONS, check_fractions, split_rows

try:  # torch is a dependency, but `import mmfs.store` must not pay for it
    from torch.utils.data import Dataset as _MapBase
    from torch.utils.data import IterableDataset as _IterBase
except ImportError:  # pragma: no cover - torch missing entirely
    _MapBase = _IterBase = object  # type: ignore[assignment,misc]

__all__ = ["VALID_KEY", "FeatureBatch", "FeatureDataset", "FeatureMapDataset", "to_polars"]


class _PinnedTable:
    """A table at one version, opened lazily once per process; pickles as plain values."""

    def _pin(
        self,
        store_uri: str,
        table: str,
        columns: Sequence[str] | None,
        version: int | str | None,
        split: str | None,
        split_fractions: Mapping[str, float],
    ) -> None:
        self.store_uri, self.table_name = str(store_uri), table
        tbl = checkout(self.store_uri, table, version)  # LanceDB, never `lance`, in this process
        self.dataset_uri, self.version = str(tbl.uri), int(tbl.version)
        self.columns = columns_of(tbl, columns)
        self.split = split
        self.split_fractions = check_fractions(split, split_fractions) if split is not None else None
        if split is not None and "media_id" not in tbl.schema.names:
            raise ConfigError(f"table '{table}' has no media_id column to split on")
        self._cache: tuple[tuple[int, bool], Reader, np.ndarray] | None = None

    def _open(self) -> tuple[Reader, np.ndarray]:
        """This process's reader and the positions of the rows in the split, made once per process."""
        key = (os.getpid(), in_worker())  # a forked child or a worker reopens
        if self._cache is None or self._cache[0] != key:
            reader = open_reader(self.store_uri, self.table_name, self.dataset_uri, self.version)
            if self.split is None or self.split_fractions is None:
                rows = np.arange(reader.count(), dtype=np.int64)
            else:
                rows = split_rows(media_ids(reader), self.split, self.split_fractions)
            self._cache = (key, reader, rows)
        return self._cache[1], self._cache[2]

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state["_cache"] = None  # never hand an open dataset to another process
        return state


class FeatureDataset(_PinnedTable, _IterBase):  # type: ignore[misc,valid-type]
    """Rows (or batches) of one store table for training: sharded, shuffled by seed, resumable.

    Every rank gets the same number of rows: `drop_last` drops the epoch's remainder, otherwise the
    share is padded by repeating rows from the start of the epoch, as `DistributedSampler` does.
    DataLoader workers take turns one item at a time (a row, or a `FeatureBatch` of `batch_size` rows),
    so a loader with `batch_size=None` delivers the rank's rows in plan order for any worker count.
    With workers, set `batch_size` here: a row crosses the worker queue as its own tensors, which
    torch moves at about a thousand rows a second. Call `set_epoch(e)` before each epoch on every
    rank (persistent workers do not see it); all ranks must use the same seed. `shuffle_block` > 1
    shuffles runs of that many stored rows instead of single rows: several times faster to read.
    """

    def __init__(
        self,
        store_uri: str,
        table: str = "segments",
        columns: Sequence[str] | None = None,
        *,
        version: int | str | None = None,
        rank: int = 0,
        world_size: int = 1,
        batch_rows: int = 1024,
        batch_size: int | None = None,
        shuffle: bool = False,
        seed: int = 0,
        shuffle_block: int = 1,
        split: str | None = None,
        split_fractions: Mapping[str, float] = DEFAULT_FRACTIONS,
        drop_last: bool = False,
    ) -> None:
        _check_sharding(rank, world_size)
        _check_counts(batch_rows=batch_rows, batch_size=batch_size, shuffle_block=shuffle_block, seed=seed)
        self._pin(store_uri, table, columns, version, split, split_fractions)
        self.rank, self.world_size, self.drop_last = rank, world_size, drop_last
        self.batch_rows, self.batch_size = batch_rows, batch_size
        self.shuffle, self.seed, self.shuffle_block = shuffle, seed, shuffle_block
        self.epoch = 0
        self._start = 0  # where this epoch's iterations begin in the rank's share (set by a resume)
        self._yielded = 0  # rows the current iteration has handed out (here, or counted by a loader)
        self.counted_by_loader = False  # a FeatureLoader counts the rows its workers deliver
        self._shipped = False  # pickled for a worker process that this object cannot see

    def set_epoch(self, epoch: int) -> None:
        """Choose the epoch (and so its shuffle) and start it from the beginning."""
        self.epoch, self._start, self._yielded = int(epoch), 0, 0

    def rank_rows(self) -> np.ndarray:
        """This rank's row positions for the current epoch, in the order they are delivered."""
        _, rows = self._open()
        order = epoch_order(
            len(rows), shuffle=self.shuffle, seed=self.seed, epoch=self.epoch, block=self.shuffle_block
        )
        return rank_share(rows[order], self.rank, self.world_size, drop_last=self.drop_last)

    def __len__(self) -> int:
        """Items this rank yields in a whole epoch: rows, or batches when `batch_size` is set."""
        rows = rank_count(len(self._open()[1]), self.world_size, drop_last=self.drop_last)
        return rows if self.batch_size is None else -(-rows // self.batch_size)

    def __iter__(self) -> Iterator[dict[str, Any]]:
        reader, _ = self._open()
        share = self.rank_rows()
        worker, n_workers = worker_slot()
        unit = self.batch_size or 1
        mine = share[worker_positions(len(share), self._start, worker, n_workers, unit)]
        self._yielded = 0
        for positions, table in read_ahead(
            reader, chunks(mine, self.batch_size or self.batch_rows), self.columns
        ):
            if self.batch_size is not None:
                self._yielded += len(positions)
                yield to_batch(table)
                continue
            for row in to_rows(table):
                self._yielded += 1  # counted before the hand-over: a row taken is a row delivered
                yield row

    def loader(self, **kwargs: Any) -> Any:
        """A `FeatureLoader` (a DataLoader) over this dataset that keeps `state_dict()` exact."""
        from mmfs.store.readers_loader import FeatureLoader

        return FeatureLoader(self, **kwargs)

    def note_consumed(self, rows: int) -> None:
        """Record that the loop has taken `rows` rows of this iteration (called by `FeatureLoader`)."""
        self._yielded = int(rows)

    def __getstate__(self) -> dict[str, Any]:
        self._shipped = True  # a worker (spawn) now reads a copy: its rows are invisible here
        return super().__getstate__()

    def state_dict(self, consumed: int | None = None) -> dict[str, Any]:
        """Where this rank stands in the epoch; `load_state_dict` of it yields exactly the rest.

        Iterated in this process, or through a `FeatureLoader` (`ds.loader(num_workers=2, ...)`), the
        dataset knows the rows the loop took, workers or not. Behind a plain DataLoader with workers it
        cannot see them: pass `consumed`, the rows the loop took since the epoch (or the resume) began;
        with `batch_size=None` on the loader those are a prefix of the rank's plan, so the count is
        exact for any number of workers.
        """
        if consumed is None and self._shipped and not self.counted_by_loader:
            warnings.warn(
                "FeatureDataset.state_dict() behind DataLoader workers cannot see the rows taken: "
                "iterate through ds.loader(...) (a FeatureLoader) or pass consumed=N",
                RuntimeWarning,
                stacklevel=2,
            )
        delivered = self._yielded if consumed is None else int(consumed)
        where = {"version": self.version, "seed": self.seed, "epoch": self.epoch}
        return {**self._plan(), **where, "position": self._start + delivered}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Continue a saved epoch: version, seed and epoch from the state, starting after its position."""
        for key, mine in self._plan().items():
            if _plain(state.get(key)) != _plain(mine):
                raise ConfigError(f"cannot resume: state has {key}={state.get(key)!r}, this dataset {mine!r}")
        if state["version"] != self.version:
            self.version, self._cache = int(state["version"]), None
        self.seed, self.epoch = int(state["seed"]), int(state["epoch"])
        total = rank_count(len(self._open()[1]), self.world_size, drop_last=self.drop_last)
        if not 0 <= int(state["position"]) <= total:
            raise ConfigError(f"cannot resume at row {state['position']}: this rank has {total} rows")
        self._start, self._yielded = int(state["position"]), 0

    def _plan(self) -> dict[str, Any]:
        """What a saved state must share with this dataset for its position to mean the same rows."""
        return {
            "table": self.table_name,
            "split": self.split,
            "split_fractions": self.split_fractions,
            "shuffle": self.shuffle,
            "shuffle_block": self.shuffle_block,
            "rank": self.rank,
            "world_size": self.world_size,
            "drop_last": self.drop_last,
        }


class FeatureMapDataset(_PinnedTable, _MapBase):  # type: ignore[misc,valid-type]
    """Map-style rows of one table at a pinned version, for `DistributedSampler` and friends.

    Index i is the i-th row of the split in stored order. `__getitems__` reads a whole batch of
    indices with one `take`. Null vectors are None, which torch's default collate cannot stack: give
    the DataLoader a `collate_fn` when a selected vector column can be null.
    """

    def __init__(
        self,
        store_uri: str,
        table: str = "segments",
        columns: Sequence[str] | None = None,
        *,
        version: int | str | None = None,
        split: str | None = None,
        split_fractions: Mapping[str, float] = DEFAULT_FRACTIONS,
    ) -> None:
        self._pin(store_uri, table, columns, version, split, split_fractions)

    def __len__(self) -> int:
        """Rows in the split at the pinned version."""
        return len(self._open()[1])

    def __getitem__(self, index: int) -> dict[str, Any]:
        """One row: vectors as float32 tensors, None when null."""
        return self.__getitems__([index])[0]

    def __getitems__(self, indices: Sequence[int]) -> list[dict[str, Any]]:
        """Several rows with one read, in the order asked."""
        reader, rows = self._open()
        return to_rows(take_in_order(reader, rows[np.asarray(indices, dtype=np.int64)], self.columns))


def to_polars(store_uri: str, table: str, *, version: int | None = None) -> Any:
    """A polars LazyFrame over a table, optionally at a pinned version.

    It opens the table with `lance` in this process, after which forked children may hang in Lance:
    start DataLoader workers with `spawn` in a process that called it.
    """
    import lance
    import polars as pl

    store = Store(store_uri)
    latest = store.table(table).to_lance()
    options = store.storage_options or None
    if version is not None:
        latest = lance.dataset(str(latest.uri), version=version, storage_options=options)
    return pl.scan_pyarrow_dataset(latest)


def _check_sharding(rank: int, world_size: int) -> None:
    if world_size < 1 or not 0 <= rank < world_size:
        raise ConfigError(f"need 0 <= rank < world_size, got rank={rank} world_size={world_size}")


def _check_counts(*, batch_rows: int, batch_size: int | None, shuffle_block: int, seed: int) -> None:
    sizes = {
        "batch_rows": batch_rows,
        "batch_size": 1 if batch_size is None else batch_size,
        "shuffle_block": shuffle_block,
    }
    bad = {name: value for name, value in sizes.items() if value < 1}
    if bad or seed < 0:
        raise ConfigError(f"sizes must be positive and the seed >= 0: {bad or {'seed': seed}}")


def _plain(value: Any) -> Any:
    """Tuples and lists compare equal after a JSON round trip of a state_dict."""
    return [_plain(v) for v in value] if isinstance(value, list | tuple) else value
