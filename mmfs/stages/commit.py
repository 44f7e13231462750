"""The commit stage: a batch's rows into the store, data tables first and the `media` ledger last.

Each table's rows are appended, or replace the batch's items' old rows in the same commit (the
replace scopes `build_batch` computed), so committing the same batch twice (a retried Beam bundle,
a re-run after a crash) leaves the store as committing it once. The `Committer` groups many encoder
batches into one commit per table (`runner.commit_rows` / `runner.commit_seconds`).
"""

from __future__ import annotations

import time

import pyarrow as pa

from mmfs.faults import Fault, hit
from mmfs.schemas.rows import rows_to_table
from mmfs.stages.batch import DATA_TABLES, LEDGER_TABLE, BatchResult, BatchTally, join_scopes
from mmfs.stages.ledger import row_versions
from mmfs.store.db import Store
from mmfs.store.filters import in_list


def commit_batch(store: Store, result: BatchResult) -> dict[str, int]:
    """Write a batch: data tables first, the media ledger last; returns rows written per table.

    Each write is an upsert on the table's keys (appended rows replacing the stored rows of the same
    keys in one commit), so committing the same batch twice (a retried Beam bundle, a re-run after a
    crash) leaves the store as committing it once.
    """
    written: dict[str, int] = {}
    tables = dict(result.tables)
    tables["quarantine"] = carry_attempts(store, tables["quarantine"])
    hit(Fault.BEFORE_FRAGMENT_WRITE)
    for i, name in enumerate(DATA_TABLES):
        store.write(name, tables[name], replace=result.scopes.get(name))
        written[name] = result.tables[name].num_rows
        if i == 0:
            hit(Fault.AFTER_FRAGMENTS_BEFORE_COMMIT)  # some tables of the batch committed, not all
    hit(Fault.AFTER_COMMIT_BEFORE_LEDGER)
    store.write(LEDGER_TABLE, with_row_versions(store, result.tables[LEDGER_TABLE]))
    written[LEDGER_TABLE] = result.tables[LEDGER_TABLE].num_rows
    return written


class Committer:
    """Groups batches into one commit per table: when `max_rows` rows or `max_seconds` have piled up.

    Encoder batches stay small (`runner.batch_media`); commits carry many of them, so a run makes a
    handful of versions and fragments per table instead of one per batch. Batches not yet committed
    when a run dies hold items without a `media` row: the next run redoes them, as before.
    """

    def __init__(self, store: Store, max_rows: int, max_seconds: float) -> None:
        self.store, self.max_rows, self.max_seconds = store, max_rows, max_seconds
        self.pending: list[BatchResult] = []
        self.since = time.monotonic()
        self.commits = 0

    @property
    def buffered_rows(self) -> int:
        """Rows (all tables) waiting for the next commit."""
        return sum(t.num_rows for r in self.pending for t in r.tables.values())

    def add(self, result: BatchResult) -> dict[str, int]:
        """Buffer a batch; commit the buffer when it is due. Returns the rows committed now, per table."""
        if not self.pending:
            self.since = time.monotonic()
        self.pending.append(result)
        due = self.buffered_rows >= self.max_rows or time.monotonic() - self.since >= self.max_seconds
        return self.flush() if due else {}

    def flush(self) -> dict[str, int]:
        """Commit what is buffered (nothing: no commit); returns rows written per table."""
        if not self.pending:
            return {}
        merged = merge_results(self.pending)
        self.pending = []
        self.commits += 1
        return commit_batch(self.store, merged)


def merge_results(results: list[BatchResult]) -> BatchResult:
    """Several batches as one: their rows concatenated per table, their replace scopes OR-ed."""
    if len(results) == 1:
        return results[0]
    tables = {name: pa.concat_tables([r.tables[name] for r in results]) for name in results[0].tables}
    tally = BatchTally()
    for r in results:
        tally.merge(r.tally)
    return BatchResult(tables=tables, tally=tally, scopes=join_scopes([r.scopes for r in results]))


def with_row_versions(store: Store, media: pa.Table) -> pa.Table:
    """`media` rows with `row_versions` set from the feature rows their items now have in the store."""
    if media.num_rows == 0 or "row_versions" not in media.schema.names:
        return media
    found = row_versions(store, media.column("media_id").to_pylist())
    column = pa.array([found[m] for m in media.column("media_id").to_pylist()], pa.string())
    index = media.schema.get_field_index("row_versions")
    return media.set_column(index, media.schema.field(index), column)


def carry_attempts(store: Store, rows: pa.Table) -> pa.Table:
    """Quarantine rows that record a failure seen before: attempts counted up, first_seen kept."""
    if rows.num_rows == 0 or not store.has("quarantine") or not store.count("quarantine"):
        return rows
    ids = sorted(set(rows.column("media_id").to_pylist()))
    known = store.read(
        "quarantine", ["media_id", "stage", "attempts", "first_seen"], where=in_list("media_id", ids)
    )
    before = {(r["media_id"], r["stage"]): r for r in known.to_pylist()}
    if not before:
        return rows
    out = rows.to_pylist()
    for row in out:
        old = before.get((row["media_id"], row["stage"]))
        if old is not None:
            row["attempts"] = (old["attempts"] or 1) + 1
            row["first_seen"] = old["first_seen"] or row["first_seen"]
    return rows_to_table(out, rows.schema, "quarantine")
