"""Reading rows by position at a pinned table version, in a way that survives `fork`.

Lance's own runtime does not survive a fork: once a process has used `lance` directly, its forked
children hang in Lance calls about half the time. LanceDB rebuilds its runtime in a forked child.
So a process that may fork DataLoader workers (the main one) reads through LanceDB only, and a
DataLoader worker, which never forks, reads through `lance` directly, opened after the fork.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, Protocol

import numpy as np
import pyarrow as pa

from mmfs.errors import ConfigError, ErrorCode, StoreError
from mmfs.store.db import Store
from mmfs.store.objstore import is_object_uri, resolve_options

_ID_CHUNK = 65_536  # rows per read when fetching media ids for a split


class Reader(Protocol):
    """Row count and reads by sorted, unique row position at one version."""

    def count(self) -> int:
        """Rows at the pinned version."""
        ...

    def take(self, positions: np.ndarray, columns: list[str] | None) -> pa.Table:
        """Rows at ascending, unique positions, in that order."""
        ...


class LanceDBReader:
    """Reads through LanceDB: safe in a process that forks later."""

    def __init__(self, store_uri: str, table: str, version: int | str) -> None:
        self.table = checkout(store_uri, table, version)

    def count(self) -> int:
        """Rows at the pinned version."""
        return int(self.table.count_rows())

    def take(self, positions: np.ndarray, columns: list[str] | None) -> pa.Table:
        """Rows at ascending, unique positions, in that order."""
        query = self.table.take_offsets(positions.tolist())
        return (query.select(columns) if columns is not None else query).to_arrow()


class LanceReader:
    """Reads through `lance` directly (faster): only in a process that will not fork."""

    def __init__(self, dataset_uri: str, version: int) -> None:
        import lance

        try:
            options = resolve_options(None) if is_object_uri(dataset_uri) else None
            self.ds = lance.dataset(dataset_uri, version=version, storage_options=options)
        except (OSError, ValueError, RuntimeError) as err:  # e.g. cleaned up by `mmfs maintain`
            message = f"cannot open {dataset_uri} at version {version}: {err}"
            raise StoreError(message, code=ErrorCode.STORE_MISSING) from err

    def count(self) -> int:
        """Rows at the pinned version."""
        return int(self.ds.count_rows())

    def take(self, positions: np.ndarray, columns: list[str] | None) -> pa.Table:
        """Rows at ascending, unique positions, in that order."""
        return self.ds.take(positions, columns=columns)


def checkout(store_uri: str, table: str, version: int | str | None) -> Any:
    """The LanceDB table at a version (a number or a tag), or at the latest one."""
    tbl = Store(store_uri).table(table)
    if version is None:
        return tbl
    try:
        tbl.checkout(version)
    except (OSError, ValueError, RuntimeError) as err:
        raise StoreError(
            f"table '{table}' has no version {version!r}: {err}", code=ErrorCode.STORE_MISSING
        ) from err
    return tbl


def open_reader(store_uri: str, table: str, dataset_uri: str, version: int) -> Reader:
    """The reader for this process: direct Lance inside a DataLoader worker, LanceDB elsewhere."""
    if in_worker():
        return LanceReader(dataset_uri, version)
    return LanceDBReader(store_uri, table, version)


def take_in_order(reader: Reader, positions: np.ndarray, columns: list[str] | None) -> pa.Table:
    """Rows at these positions in this order, repeats included; each row is read once, in file order."""
    if len(positions) < 2 or bool(np.all(positions[1:] > positions[:-1])):
        return reader.take(positions, columns)
    unique, inverse = np.unique(positions, return_inverse=True)
    return reader.take(unique, columns).take(pa.array(inverse))


def read_ahead(
    reader: Reader, batches: Iterator[np.ndarray], columns: list[str] | None
) -> Iterator[tuple[np.ndarray, pa.Table]]:
    """Each batch of positions with its rows; the next batch is read in a thread while this one is used."""
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="mmfs-read-ahead") as pool:
        pending: tuple[np.ndarray, Future[pa.Table]] | None = None
        for positions in batches:
            future = pool.submit(take_in_order, reader, positions, columns)
            if pending is not None:
                yield pending[0], pending[1].result()
            pending = (positions, future)
        if pending is not None:
            yield pending[0], pending[1].result()


def media_ids(reader: Reader) -> pa.ChunkedArray:
    """The media_id of every row, in position order."""
    total = reader.count()
    parts = [
        reader.take(np.arange(start, min(start + _ID_CHUNK, total), dtype=np.int64), ["media_id"])
        for start in range(0, total, _ID_CHUNK)
    ]
    return pa.chunked_array([c for p in parts for c in p.column("media_id").chunks], type=pa.string())


def in_worker() -> bool:
    """Whether this process is a DataLoader worker."""
    from torch.utils.data import get_worker_info

    return get_worker_info() is not None


def worker_slot() -> tuple[int, int]:
    """This DataLoader worker's id and the number of workers; (0, 1) outside a worker."""
    from torch.utils.data import get_worker_info

    info = get_worker_info()
    return (info.id, info.num_workers) if info is not None else (0, 1)


def columns_of(tbl: Any, columns: Sequence[str] | None) -> list[str] | None:
    """The columns asked for, checked against the table's schema."""
    if columns is None:
        return None
    names = list(tbl.schema.names)
    unknown = [c for c in columns if c not in names]
    if unknown:
        raise ConfigError(f"unknown columns {unknown}; the table has {names}")
    return list(columns)
