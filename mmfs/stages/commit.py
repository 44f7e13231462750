"""The commit stage: a batch's rows into the store, data tables first and the `media` ledger last.

Each table's rows are staged as data files and appended, replacing the batch's items' old rows in
the same commit (the replace scopes `build_batch` computed): the same path (`staged.py`) as a Ray or
Beam worker's rows, so committing the same batch twice (a retried Beam bundle, a re-run after a
crash) leaves the store as committing it once. The `Committer` groups many encoder batches into one
commit per table (`runner.commit_rows` / `runner.commit_seconds`).
"""

from __future__ import annotations

import secrets
import time

import pyarrow as pa

from mmfs.stages.batch import BatchResult, BatchTally
from mmfs.stages.ledger import carry_attempts, with_row_versions
from mmfs.stages.staged import (
    StagedBatch,
    commit_staged_batch,
    merge_scopes,
    merge_staged,
    stage_batch,
    stages_on_workers,
)
from mmfs.store.db import Store
from mmfs.store.fragments import close_run

__all__ = ["carry_attempts", "with_row_versions"]  # importable from here too, as before


def commit_batch(store: Store, result: BatchResult, run_id: str | None = None) -> dict[str, int]:
    """Write a batch: data tables first, the media ledger last; returns rows written per table.

    The path every runner takes: the data rows are staged as Lance data files (`staged.stage_batch`,
    recorded under `run_id` until committed), then each table lands in one commit that appends them
    and deletes the stored rows of the same keys (`staged.commit_staged_batch`), so committing the
    same batch twice (a retried Beam bundle, a re-run after a crash) leaves the store as committing
    it once. The local runner stages on its commit thread; Ray and Beam workers stage themselves.
    """
    run = run_id or f"local-{secrets.token_hex(4)}"
    # a tally of its own: the caller times the whole commit (stage_batch adds its share to the tally)
    rows = BatchResult(tables=result.tables, tally=BatchTally(), scopes=result.scopes)
    staged = stage_batch(store, rows, run, stage=stages_on_workers(store))
    written = commit_staged_batch(store, staged)
    close_run(store, run)
    return written


class Committer:
    """Groups batches into one commit per table: when `max_rows` rows, `max_bytes` bytes of Arrow data
    or `max_seconds` have piled up. Encoder batches stay small (`runner.batch_media`); commits carry many
    of them, so a run makes a handful of versions per table instead of one per batch.

    Memory: rows waiting for their commit are written out as uncommitted Lance data files (the staged
    path of Ray and Beam workers) whenever `stage_bytes` of them are held, so what waits in memory is
    at most that many bytes of rows, plus fragment metadata and key columns, whatever the commit's
    size. A row of audio features or of a frame weighs kilobytes, so without this a commit of 64 MiB
    held that much, copied it once more to concatenate it and wrote it in one go, beside the encoders.
    Only local stores stage early: on object storage shared with other runs only a merge on keys is
    safe (`staged.stages_on_workers`), which needs the rows in hand at the commit.

    Batches not yet committed when a run dies hold items without a `media` row: the next run redoes
    them, and their staged files are orphans that `mmfs maintain` sweeps (`store.fragments`).
    """

    def __init__(
        self,
        store: Store,
        max_rows: int,
        max_seconds: float,
        run_id: str | None = None,
        max_bytes: int | None = None,
        stage_bytes: int | None = None,
    ) -> None:
        self.store, self.max_rows, self.max_seconds = store, max_rows, max_seconds
        self.max_bytes = max_bytes
        self.stage_bytes = stage_bytes if not store.remote else None
        self.run_id = run_id
        self.pending: list[BatchResult] = []  # rows in memory, not yet staged
        self.staged: list[StagedBatch] = []  # rows of this commit already written as data files
        self.buffered_rows = 0  # rows (all tables) waiting for the next commit, staged or not
        self.buffered_bytes = 0  # their Arrow buffers' size
        self.held_bytes = 0  # of those, the bytes still in memory (not staged)
        self.max_held_bytes = 0  # the most ever held: bounded by `stage_bytes` plus one batch
        self.since = time.monotonic()
        self.commits = 0
        self.stages = 0  # writes of held rows as data files (past `stage_bytes`, and at each commit)

    def add(self, result: BatchResult) -> dict[str, int]:
        """Buffer a batch; commit the buffer when it is due. Returns the rows committed now, per table."""
        if not (self.pending or self.staged):
            self.since = time.monotonic()
        self.pending.append(result)
        size = sum(t.nbytes for t in result.tables.values())
        self.buffered_rows += sum(t.num_rows for t in result.tables.values())
        self.buffered_bytes += size
        self.held_bytes += size
        self.max_held_bytes = max(self.max_held_bytes, self.held_bytes)
        due = (
            self.buffered_rows >= self.max_rows
            or (self.max_bytes is not None and self.buffered_bytes >= self.max_bytes)
            or time.monotonic() - self.since >= self.max_seconds
        )
        if due:
            return self.flush()
        if self.stage_bytes is not None and self.held_bytes >= self.stage_bytes:
            self._stage(stage=True)
        return {}

    def flush(self) -> dict[str, int]:
        """Commit what is buffered (nothing: no commit); returns rows written per table."""
        if not (self.pending or self.staged):
            return {}
        # the rest staged as the early parts were (a commit's parts all staged), else as `commit_batch`
        self._stage(stage=bool(self.staged) or stages_on_workers(self.store))
        batch = merge_staged(self.staged)
        self.staged, self.buffered_rows, self.buffered_bytes = [], 0, 0
        self.commits += 1
        written = commit_staged_batch(self.store, batch)
        close_run(self.store, self._run())
        return written

    def _stage(self, stage: bool) -> None:
        """The rows in memory as one staged part of the next commit (data files written when `stage`)."""
        if not self.pending:
            return
        merged = merge_results(self.pending)
        self.pending, self.held_bytes = [], 0
        rows = BatchResult(tables=merged.tables, tally=BatchTally(), scopes=merged.scopes)
        self.staged.append(stage_batch(self.store, rows, self._run(), stage=stage))
        self.stages += stage

    def _run(self) -> str:
        """The id the staged files are recorded under (`store.fragments.write_record`)."""
        if self.run_id is None:
            self.run_id = f"local-{secrets.token_hex(4)}"
        return self.run_id


def merge_results(results: list[BatchResult]) -> BatchResult:
    """Several batches as one: their rows concatenated per table, their replace scopes merged."""
    if len(results) == 1:
        return results[0]
    tables = {name: pa.concat_tables([r.tables[name] for r in results]) for name in results[0].tables}
    tally = BatchTally()
    for r in results:
        tally.merge(r.tally)
    return BatchResult(tables=tables, tally=tally, scopes=merge_scopes([r.scopes for r in results]))
