"""Batches whose data rows the worker that built them wrote into the store: only metadata moves on.

Under Ray and Beam, the worker (a Ray actor, a Beam DoFn) stages a batch's data-table rows as Lance
data files itself (`store.fragments`) and sends the committer a `StagedBatch`: fragment metadata,
the rows' key columns, the small `quarantine` and `media` rows (which the committer completes from
the store: attempts carried, `uris` merged, `row_versions` read) and the tally. One
`StagedCommitter` groups batches by rows and time like `batch.Committer` and commits each table in
one operation, data tables first and the `media` ledger last, so an item without its ledger row is
redone by the next run, exactly as for rows committed by the driver.
"""

from __future__ import annotations

import json
import re
import time
from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa

from mmfs.faults import Fault, hit
from mmfs.stages.batch import (
    DATA_TABLES,
    LEDGER_TABLE,
    BatchResult,
    BatchTally,
    ipc_to_table,
    join_scopes,
    table_to_ipc,
)
from mmfs.stages.ledger import carry_attempts, with_row_versions
from mmfs.store.db import Store
from mmfs.store.filters import in_list
from mmfs.store.fragments import StagedTable, commit_staged, remove_records, stage_table, write_record
from mmfs.store.lock import active_writers

# tables a worker stages; `quarantine` and `media` rows are small and finished by the committer
STAGED_TABLES = tuple(t for t in DATA_TABLES if t != "quarantine")


@dataclass
class StagedBatch:
    """What crosses from a worker to the committer for one (or several merged) batches."""

    staged: dict[str, StagedTable]  # tables whose rows are data files in the store already
    rows: dict[str, pa.Table]  # tables whose rows travel (quarantine, media, empty ones)
    tally: BatchTally
    scopes: dict[str, str] = field(default_factory=dict)
    records: list[str] = field(default_factory=list)  # staged records to drop once committed
    row_bytes: int = 0  # Arrow bytes of the rows the batch built: what would have crossed

    @property
    def n_items(self) -> int:
        """Items in the batch (one `media` row each)."""
        return self.rows[LEDGER_TABLE].num_rows

    @property
    def n_rows(self) -> int:
        """Rows in all tables, staged or travelling."""
        return sum(s.rows for s in self.staged.values()) + sum(t.num_rows for t in self.rows.values())

    def to_row(self) -> dict[str, Any]:
        """One flat row with fixed columns for an engine: JSON metadata, one Arrow IPC blob of tables."""
        tables = {f"rows.{n}": t for n, t in self.rows.items()}
        tables.update({f"keys.{n}": s.keys for n, s in self.staged.items()})
        meta = {
            "staged": {n: s.to_json() for n, s in self.staged.items()},
            "scopes": self.scopes,
            "records": self.records,
            "row_bytes": self.row_bytes,
        }
        return {
            "meta": json.dumps(meta, sort_keys=True),
            "tally": self.tally.to_json(),
            "tables": pack(tables),
        }

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> StagedBatch:
        """Inverse of `to_row`."""
        meta = json.loads(row["meta"])
        tables = unpack(row["tables"])
        staged = {
            n: StagedTable(fragments=s["fragments"], keys=tables[f"keys.{n}"], files=s["files"])
            for n, s in meta["staged"].items()
        }
        return cls(
            staged=staged,
            rows={k[5:]: t for k, t in tables.items() if k.startswith("rows.")},
            tally=BatchTally.from_json(row["tally"]),
            scopes=meta["scopes"],
            records=meta["records"],
            row_bytes=int(meta["row_bytes"]),
        )


def row_size(row: dict[str, Any]) -> int:
    """Bytes of an engine row's values (what crossed from a worker)."""
    return sum(len(v) for v in row.values() if isinstance(v, bytes | str))


def pack(tables: dict[str, pa.Table]) -> bytes:
    """Named Arrow tables as one IPC stream of (name, table IPC) rows: a fixed-width engine column."""
    names = list(tables)
    # schema metadata (provenance) stays behind: the committer casts to the stored table's schema
    blobs = [table_to_ipc(tables[n].replace_schema_metadata(None)) for n in names]
    return table_to_ipc(pa.table({"name": pa.array(names, pa.string()), "ipc": pa.array(blobs, pa.binary())}))


def unpack(blob: bytes) -> dict[str, pa.Table]:
    """Inverse of `pack`."""
    packed = ipc_to_table(blob)
    names, blobs = packed.column("name").to_pylist(), packed.column("ipc").to_pylist()
    return {n: ipc_to_table(b) for n, b in zip(names, blobs, strict=True)}


def stages_on_workers(store: Store) -> bool:
    """Whether workers may stage: not on object storage that other runs write to at the moment.

    There no lock spans the machines, and only a merge on keys keeps two runs over the same bytes
    from both appending them; that merge needs the rows on the committer.
    """
    return not (store.remote and active_writers(store.uri, store.storage_options))


def stage_batch(store: Store, result: BatchResult, run_id: str, *, stage: bool = True) -> StagedBatch:
    """Worker side: write a built batch's data rows as uncommitted data files, record them.

    `stage` False keeps every table's rows in the batch (object storage shared with other runs,
    where only a merge on keys is safe: the committer then writes them as `commit_batch` does).
    """
    t0 = time.perf_counter()
    row_bytes = sum(t.get_total_buffer_size() for t in result.tables.values())  # nbytes walks every chunk
    hit(Fault.BEFORE_FRAGMENT_WRITE)
    staged: dict[str, StagedTable] = {}
    rows: dict[str, pa.Table] = {}
    for name, table in result.tables.items():
        if stage and name in STAGED_TABLES and table.num_rows:
            staged[name] = stage_table(store, name, table)
        elif table.num_rows or name in result.scopes or name == LEDGER_TABLE:
            rows[name] = table  # an empty table without a scope writes nothing: it does not travel
    files = {n: s.files for n, s in staged.items()}
    records = [write_record(store, run_id, files)] if files else []
    result.tally.add_seconds("write", time.perf_counter() - t0)  # the worker's share of the write
    return StagedBatch(staged, rows, result.tally, dict(result.scopes), records, row_bytes)


def commit_staged_batch(store: Store, batch: StagedBatch) -> dict[str, int]:
    """Committer side: each table in one commit, data tables first and `media` last; rows per table.

    Committing the same staged batch twice (a retried Beam bundle) replaces the first commit's rows
    by key with the same files again, so the store ends as after one commit.
    """
    written: dict[str, int] = {}
    for i, name in enumerate(DATA_TABLES):
        replace = batch.scopes.get(name)
        if name in batch.staged:
            commit_staged(store, name, batch.staged[name], replace=replace)
            written[name] = batch.staged[name].rows
        elif name in batch.rows:
            rows = batch.rows[name]
            if name == "quarantine":
                rows = carry_attempts(store, rows)
            store.write(name, rows, replace=replace)
            written[name] = rows.num_rows
        else:
            written[name] = 0  # counted as `commit_batch` counts an empty table
        if i == 0:
            hit(Fault.AFTER_FRAGMENTS_BEFORE_COMMIT)  # some tables of the batch committed, not all
    hit(Fault.AFTER_COMMIT_BEFORE_LEDGER)
    media = batch.rows[LEDGER_TABLE]
    store.write(LEDGER_TABLE, with_row_versions(store, media))
    written[LEDGER_TABLE] = media.num_rows
    remove_records(store, batch.records)
    return written


def merge_staged(batches: list[StagedBatch]) -> StagedBatch:
    """Several staged batches as one: staged parts and rows concatenated per table, scopes merged."""
    if len(batches) == 1:
        return batches[0]
    staged: dict[str, list[StagedTable]] = {}
    rows: dict[str, list[pa.Table]] = {}
    tally = BatchTally()
    for b in batches:
        tally.merge(b.tally)
        for name, s in b.staged.items():
            staged.setdefault(name, []).append(s)
        for name, t in b.rows.items():
            rows.setdefault(name, []).append(t)
    # a table staged by one batch and empty in another: the empty rows add nothing to the commit
    for name in staged:
        rows.pop(name, None)
    return StagedBatch(
        staged={n: StagedTable.concat(parts) for n, parts in staged.items()},
        rows={n: pa.concat_tables(parts) for n, parts in rows.items()},
        tally=tally,
        scopes=merge_scopes([b.scopes for b in batches]),
        records=[r for b in batches for r in b.records],
        row_bytes=sum(b.row_bytes for b in batches),
    )


class StagedCommitter:
    """Groups staged batches into one commit per table by rows (`max_rows`) and time (`max_seconds`).

    The batches' data is in the store already; what waits here is metadata, so holding many batches
    costs little memory. `commits` and `commit_seconds` are kept for the run summary and benchmarks.
    """

    def __init__(self, store: Store, max_rows: int, max_seconds: float) -> None:
        self.store, self.max_rows, self.max_seconds = store, max_rows, max_seconds
        self.pending: list[StagedBatch] = []
        self.buffered_rows = 0  # rows (all tables) waiting for the next commit
        self.since = time.monotonic()
        self.commits = 0
        self.commit_seconds = 0.0

    def add(self, batch: StagedBatch) -> dict[str, int]:
        """Buffer a batch; commit the buffer when due. Returns the rows committed now, per table."""
        if not self.pending:
            self.since = time.monotonic()
        self.pending.append(batch)
        self.buffered_rows += batch.n_rows
        due = self.buffered_rows >= self.max_rows or time.monotonic() - self.since >= self.max_seconds
        return self.flush() if due else {}

    def flush(self) -> dict[str, int]:
        """Commit what is buffered (nothing buffered: no commit); rows written per table."""
        if not self.pending:
            return {}
        merged = merge_staged(self.pending)
        self.pending, self.buffered_rows = [], 0
        t0 = time.perf_counter()
        written = commit_staged_batch(self.store, merged)
        self.commit_seconds += time.perf_counter() - t0
        self.commits += 1
        return written


# The replace scopes `kept_rows.scope_clause` writes (and `merge_scopes` writes back): an OR of parts,
# each `media_id IN (…)` (every row of those items) or `(media_id = … AND stage IN (…))` (some stages).
_LITERAL = r"'(?:[^']|'')*'"
_LIST = rf"{_LITERAL}(?:, {_LITERAL})*"
_WHOLE = re.compile(rf"\(media_id IN \(({_LIST})\)\)")
_SOME = re.compile(rf"\(\(media_id (?:= ({_LITERAL})|IN \(({_LIST})\)) AND stage IN \(({_LIST})\)\)\)")
_VALUE = re.compile(_LITERAL)

ScopeParts = tuple[set[str], dict[str, set[str]]]  # items replaced whole; stages replaced per item


def merge_scopes(parts: list[dict[str, str]]) -> dict[str, str]:
    """Per table, the replace scopes of several batches as one clause of one `IN` list of whole items
    and one `IN` list per set of stages (batch.join_scopes ORs one clause per batch: a commit of 1,000
    batches filtered through 1,000 lists). A clause in another form is OR-ed as before."""
    texts: dict[str, list[str]] = {}
    for part in parts:
        for name, clause in part.items():
            texts.setdefault(name, []).append(clause)
    merged: dict[str, str] = {}
    for name, clauses in texts.items():
        if len(clauses) == 1:
            merged[name] = clauses[0]
            continue
        scopes = [parse_scope(c) for c in clauses]
        if any(s is None for s in scopes):
            merged.update(join_scopes([{name: c} for c in clauses]))
            continue
        whole: set[str] = set()
        some: dict[str, set[str]] = {}
        for w, per_item in (s for s in scopes if s is not None):
            whole |= w
            for media_id, stages in per_item.items():
                some.setdefault(media_id, set()).update(stages)
        merged[name] = scope_text(whole, some)
    return merged


def parse_scope(clause: str) -> ScopeParts | None:
    """The items and stages of a replace scope in `scope_clause`'s form; None for any other text."""
    whole: set[str] = set()
    some: dict[str, set[str]] = {}
    pos = 0
    while True:
        if (m := _WHOLE.match(clause, pos)) is not None:
            whole.update(_values(m.group(1)))
        elif (m := _SOME.match(clause, pos)) is not None:
            ids = [_unquote(m.group(1))] if m.group(1) else _values(m.group(2))
            for media_id in ids:
                some.setdefault(media_id, set()).update(_values(m.group(3)))
        else:
            return None
        pos = m.end()
        if pos == len(clause):
            return whole, some
        if not clause.startswith(" OR ", pos):
            return None
        pos += 4


def scope_text(whole: set[str], some: dict[str, set[str]]) -> str:
    """A replace scope: one `IN` list of the items replaced whole, one per set of stages replaced."""
    parts = [f"({in_list('media_id', sorted(whole))})"] if whole else []
    by_stages: dict[tuple[str, ...], list[str]] = {}
    for media_id, stages in some.items():
        if media_id not in whole and stages:
            by_stages.setdefault(tuple(sorted(stages)), []).append(media_id)
    for names, ids in sorted(by_stages.items()):
        parts.append(f"(({in_list('media_id', sorted(ids))} AND {in_list('stage', names)}))")
    return " OR ".join(parts) if parts else "FALSE"


def _values(listed: str) -> list[str]:
    return [_unquote(v) for v in _VALUE.findall(listed)]


def _unquote(literal: str) -> str:
    return literal[1:-1].replace("''", "'")
