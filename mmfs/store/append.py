"""Append rows to a table, replacing in the same commit the rows of theirs already stored.

Why not `merge_insert`: it scans the whole target table, so a commit cost grows with the store. Here
the new rows go to fresh data files (`lance.fragment.write_fragments`) and one commit lands them: an
`Append` when none of their keys (and nothing in the `replace` scope) is stored yet, otherwise an
`Update` that adds the new fragments and the deletion vectors of the old rows at once, so a reader
sees the old rows or the new ones, never both nor neither. The old rows are found by a filter on the
table's first key column (a BTREE scalar index on `media_id` makes that a lookup), so the cost of a
commit grows with the batch, not with the table.

Check-then-commit must not race another writer appending the same keys (two runs over the same bytes
at once): local stores serialise that short section with an exclusive `flock` (`commit_lock`); on
object storage, where no lock spans machines, the caller falls back to `merge_insert` while other runs
hold leases. The `media` ledger merges `uris` of the replaced row into the new one, so paths of the
same bytes seen by runs at once all end up recorded.
"""

from __future__ import annotations

import fcntl
import os
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import lance
import pyarrow as pa
import pyarrow.compute as pc
from lance.fragment import write_fragments

COMMIT_LOCK_NAME = ".mmfs-commit.lock"
_ADDRESS = "_rowaddr"
_CARRIED = ("uris", "uri_stats")  # `media` columns a replacing row adds to, not overwrites


@contextmanager
def commit_lock(store_dir: str | None) -> Iterator[None]:
    """Hold the store's exclusive commit lock (a no-op without a local directory)."""
    if store_dir is None:
        yield
        return
    path = Path(store_dir) / COMMIT_LOCK_NAME
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)


def stage_rows(dataset: lance.LanceDataset, rows: pa.Table, storage_options: dict[str, str]) -> list[Any]:
    """Write `rows` as new data files of `dataset` (uncommitted): their fragment metadata."""
    return list(
        write_fragments(
            rows,
            dataset.uri,
            schema=dataset.schema,
            storage_options=storage_options or None,
        )
    )


def commit_rows(
    dataset: lance.LanceDataset,
    rows: pa.Table,
    old: pa.Table,
    fragments: list[Any],
    keys: Sequence[str],
    replace: str | None,
    storage_options: dict[str, str],
) -> int:
    """Commit staged `fragments` (holding `rows`) onto `dataset` as read; returns the new version.

    `old` is `stored_keys(dataset, rows, keys)`: the stored rows under one of `rows`' keys are
    deleted in the same commit, and so are those matching `replace`. Raises Lance's error on a
    commit conflict (the caller re-reads and retries).
    """
    doomed = _matching_addresses(old, rows, keys)
    if replace:
        scoped = dataset.to_table(columns=[], filter=replace, with_row_address=True)
        doomed |= set(scoped.column(_ADDRESS).to_pylist())
    if not doomed:
        op: Any = lance.LanceOperation.Append(fragments)
    else:
        removed, updated = _delete_addresses(dataset, doomed)
        op = lance.LanceOperation.Update(
            removed_fragment_ids=removed, updated_fragments=updated, new_fragments=fragments
        )
    done = lance.LanceDataset.commit(
        dataset.uri, op, read_version=dataset.version, storage_options=storage_options or None
    )
    return int(done.version)


def stored_keys(dataset: lance.LanceDataset, rows: pa.Table, keys: Sequence[str]) -> pa.Table:
    """The stored rows sharing the first key value of any of `rows` (keys, `uris` if any, address)."""
    first = keys[0]
    values = pc.unique(rows.column(first))  # an Arrow filter: no SQL text of every key to build and parse
    columns = list(keys) + [c for c in _CARRIED if c in dataset.schema.names]
    return dataset.to_table(columns=columns, filter=pc.field(first).isin(values), with_row_address=True)


def _matching_addresses(old: pa.Table, rows: pa.Table, keys: Sequence[str]) -> set[int]:
    """Addresses of the stored rows whose full key is one of `rows`' keys."""
    if old.num_rows == 0:
        return set()
    wanted = set(zip(*(rows.column(k).to_pylist() for k in keys), strict=True))
    stored = zip(*(old.column(k).to_pylist() for k in keys), strict=True)
    addresses = old.column(_ADDRESS).to_pylist()
    return {a for a, key in zip(addresses, stored, strict=True) if key in wanted}


def _delete_addresses(dataset: lance.LanceDataset, addresses: set[int]) -> tuple[list[int], list[Any]]:
    """Deletion vectors for the given row addresses: fragments emptied, and fragments updated."""
    by_fragment: dict[int, list[int]] = {}
    for address in addresses:
        by_fragment.setdefault(address >> 32, []).append(address & 0xFFFFFFFF)
    removed, updated = [], []
    for fragment_id, offsets in sorted(by_fragment.items()):
        fragment = dataset.get_fragment(fragment_id)
        if fragment is None:
            raise RuntimeError(f"fragment {fragment_id} vanished (retryable: a concurrent compaction)")
        meta = fragment.delete_rows(sorted(offsets))
        if meta is None:
            removed.append(fragment_id)
        else:
            updated.append(meta)
    return removed, updated


def merge_uris(rows: pa.Table, old: pa.Table) -> pa.Table:
    """`media` rows with the `uris` (and their hash-time `uri_stats`) of the rows they replace added."""
    if old.num_rows == 0 or "uris" not in rows.schema.names:
        return rows
    before: dict[str, set[str]] = {}
    for media_id, uris in _pairs(old, "media_id", "uris"):
        before.setdefault(media_id, set()).update(uris or [])
    merged = []
    for media_id, uris in _pairs(rows, "media_id", "uris"):
        extra = before.get(media_id, set()) - set(uris or [])
        merged.append(sorted(set(uris or []) | extra) if extra else uris)
    rows = _set(rows, "uris", merged)
    if "uri_stats" not in rows.schema.names or "uri_stats" not in old.schema.names:
        return rows
    old_stats: dict[str, list[dict[str, Any]]] = {}
    for media_id, stats in _pairs(old, "media_id", "uri_stats"):
        old_stats.setdefault(media_id, []).extend(stats or [])
    combined = []
    for media_id, stats in _pairs(rows, "media_id", "uri_stats"):
        have = {s["uri"] for s in stats or []}
        kept = [s for s in old_stats.get(media_id, []) if s["uri"] not in have]
        combined.append(list(stats or []) + kept)
    return _set(rows, "uri_stats", combined)


def _set(table: pa.Table, name: str, values: list[Any]) -> pa.Table:
    """`table` with column `name` replaced by `values` (same type)."""
    index = table.schema.get_field_index(name)
    field = table.schema.field(index)
    return table.set_column(index, field, pa.array(values, field.type))


def _pairs(table: pa.Table, a: str, b: str) -> list[tuple[Any, Any]]:
    """Two columns of a table as (a, b) pairs."""
    return list(zip(table.column(a).to_pylist(), table.column(b).to_pylist(), strict=True))
