"""One batch of items, runner-neutral: extracted items in, the batch stages, Arrow rows per table out.

Every runner (local, Ray, Beam) calls `build_batch` where the encoders live (a thread, a Ray actor,
a Beam DoFn). The local runner commits the rows with the commit stage (`stages/commit.py`); under
Ray and Beam the worker writes the data rows itself and one committer commits their metadata
(`stages/staged.py`). A `BatchResult` crosses process boundaries as Arrow IPC plus JSON, so nothing
in it needs unpickling, and items cross them as plain rows (`pending_to_row`).
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import pyarrow as pa

from mmfs.config import PipelineConfig
from mmfs.stages.base import StageTimes
from mmfs.stages.encode import Enricher
from mmfs.stages.items import Extracted, Item, PendingItem, SourceItem, StageFailure
from mmfs.stages.kept_rows import load_stored, scope_clause
from mmfs.stages.recompute import TABLE_STAGES, owned_stages
from mmfs.stages.rows import RowBuilder
from mmfs.store.db import Store

log = logging.getLogger(__name__)

DATA_TABLES = ("frames", "flow", "shots", "audio", "text", "segments", "quarantine")
LEDGER_TABLE = "media"  # written last: an item without its media row is redone by the next run


@dataclass
class BatchTally:
    """What a batch did, for the run summary: outcomes, media seconds, time per stage."""

    n_ok: int = 0
    n_degraded: int = 0
    n_quarantined: int = 0
    media_seconds: float = 0.0
    stage_seconds: dict[str, float] = field(default_factory=dict)

    def add_item(self, ex: Extracted, item: Item | None = None) -> None:
        """Count one item (decoded, and after the batch stages when it got there); log its failures."""
        for stage, seconds in ex.stage_seconds.items():
            self.stage_seconds[stage] = self.stage_seconds.get(stage, 0.0) + seconds
        for failure in item.all_failures if item is not None else ex.failures:
            log_failure(ex.pending.item.uri, failure)
        status = item.status if item is not None else ex.status
        if status == "failed":
            self.n_quarantined += 1
            return
        self.n_ok += 1
        self.n_degraded += status == "degraded"
        self.media_seconds += ex.duration_s or 0.0

    def merge(self, other: BatchTally) -> None:
        """Add another batch's tally into this one."""
        self.n_ok += other.n_ok
        self.n_degraded += other.n_degraded
        self.n_quarantined += other.n_quarantined
        self.media_seconds += other.media_seconds
        for stage, seconds in other.stage_seconds.items():
            self.add_seconds(stage, seconds)

    def add_seconds(self, stage: str, seconds: float) -> None:
        """Add time spent in a stage."""
        self.stage_seconds[stage] = self.stage_seconds.get(stage, 0.0) + seconds

    def to_json(self) -> str:
        """Serialised form (crosses to the driver from Ray actors)."""
        return json.dumps(asdict(self), sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> BatchTally:
        """Inverse of `to_json`."""
        return cls(**json.loads(text))


@dataclass(frozen=True)
class BatchJob:
    """What every batch of a run shares; picklable, so a runner ships it to its workers once."""

    cfg: PipelineConfig
    run_id: str
    versions: dict[str, str]
    schemas: dict[str, pa.Schema]
    store_uri: str | None = None  # read for the kept rows of partly recomputed items
    uri_stats: dict[str, dict[str, Any]] = field(default_factory=dict)  # uri → stat when hashed


@dataclass
class BatchResult:
    """The rows of one batch, per table in the store's schemas, and its tally."""

    tables: dict[str, pa.Table]
    tally: BatchTally
    scopes: dict[str, str] = field(default_factory=dict)  # per table: the rows this batch replaces

    @property
    def n_items(self) -> int:
        """Items in the batch (one `media` row each)."""
        return self.tables[LEDGER_TABLE].num_rows

    def to_row(self) -> dict[str, Any]:
        """One flat row (a binary Arrow IPC stream per table, the tally as JSON) for an engine."""
        row: dict[str, Any] = {name: table_to_ipc(t) for name, t in self.tables.items()}
        row["tally"] = self.tally.to_json()
        row["scopes"] = json.dumps(self.scopes, sort_keys=True)
        return row

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> BatchResult:
        """Inverse of `to_row`."""
        tables = {name: ipc_to_table(row[name]) for name in (*DATA_TABLES, LEDGER_TABLE)}
        scopes = json.loads(row.get("scopes") or "{}")
        return cls(tables=tables, tally=BatchTally.from_json(row["tally"]), scopes=scopes)


def table_to_ipc(table: pa.Table) -> bytes:
    """An Arrow table as IPC stream bytes (schema metadata, i.e. provenance, included)."""
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table)
    return bytes(sink.getvalue().to_pybytes())


def ipc_to_table(data: bytes) -> pa.Table:
    """Inverse of `table_to_ipc`."""
    with pa.ipc.open_stream(pa.py_buffer(data)) as reader:
        return reader.read_all()


def build_batch(extracted: list[Extracted], enricher: Enricher | None, job: BatchJob) -> BatchResult:
    """Embed and align a batch, then lay its rows out per table (`enricher` None: failed items only)."""
    tally = BatchTally()
    live = [ex for ex in extracted if not ex.failed]
    if live and enricher is None:
        raise ValueError("build_batch needs an enricher for items that did not fail")
    partial = {ex.pending.media_id: ex.computed for ex in live if ex.pending.only is not None}
    stored = load_stored(Store(job.store_uri), partial) if partial and job.store_uri else {}
    times = StageTimes()
    items = enricher.run(live, times, stored) if enricher is not None and live else []
    for key, seconds in times.seconds.items():
        tally.add_seconds(key, seconds)
    done = {id(it.ex): it for it in items}
    t0 = time.perf_counter()
    fusion = enricher.fusion() if enricher is not None and live else None
    rows = RowBuilder(job.cfg, job.run_id, job.versions, stored, fusion)
    for ex in extracted:
        item = done.get(id(ex))
        rows.add_item(ex, item)
        tally.add_item(ex, item)
    tables = rows.tables(job.schemas)
    tables[LEDGER_TABLE] = with_uri_stats(tables[LEDGER_TABLE], job.uri_stats)
    tally.add_seconds("rows", time.perf_counter() - t0)
    return BatchResult(tables=tables, tally=tally, scopes=batch_scopes(extracted, done))


def batch_scopes(extracted: list[Extracted], done: dict[int, Item] | None = None) -> dict[str, str]:
    """Per table, the rows of this batch's items that its rows replace (absent ones are deleted).

    An item replaces the rows of each table it recomputed, unless that table's stage failed this
    time (its old rows stay, beside the quarantine row); its segments always; its quarantine rows
    of the stages it re-ran. A failed item replaces nothing: what it had before is kept.
    """
    owners: dict[str, list[tuple[str, frozenset[str] | None]]] = {t: [] for t in DATA_TABLES}
    for ex in extracted:
        if ex.failed:
            continue
        item = (done or {}).get(id(ex))
        media_id = ex.pending.media_id
        failed = {f.stage for f in (item.all_failures if item is not None else ex.failures)}
        for table in ex.computed:
            if not failed & set(TABLE_STAGES[table]):
                owners[table].append((media_id, None))
        owners["segments"].append((media_id, None))
        if ex.shots is not None:  # shots were detected this time: they replace the item's old ones
            owners["shots"].append((media_id, None))
        stages = None if ex.pending.only is None else owned_stages(ex.computed)
        owners["quarantine"].append((media_id, stages))
    scopes = {table: scope_clause(items) for table, items in owners.items()}
    return {table: clause for table, clause in scopes.items() if clause}


def join_scopes(parts: list[dict[str, str]]) -> dict[str, str]:
    """Per table, the replace scopes of several batches as one clause (OR-ed)."""
    scopes: dict[str, list[str]] = {}
    for part in parts:
        for name, clause in part.items():
            scopes.setdefault(name, []).append(clause)
    return {name: " OR ".join(f"({c})" for c in clauses) for name, clauses in scopes.items()}


def with_uri_stats(media: pa.Table, stats: dict[str, dict[str, Any]]) -> pa.Table:
    """`media` rows with `uri_stats` set to the hash-time stats of their paths (the hash cache)."""
    if media.num_rows == 0 or "uri_stats" not in media.schema.names or not stats:
        return media
    column = [[stats[u] for u in uris or [] if u in stats] for uris in media.column("uris").to_pylist()]
    index = media.schema.get_field_index("uri_stats")
    field_ = media.schema.field(index)
    return media.set_column(index, field_, pa.array(column, field_.type))


def add_counts(total: dict[str, int], more: dict[str, int]) -> None:
    """Add per-table row counts into `total`."""
    for name, n in more.items():
        total[name] = total.get(name, 0) + n


def log_failure(uri: str, failure: StageFailure) -> None:
    """One log line per quarantined stage."""
    log.warning("quarantined %s at %s: %s", uri, failure.stage, failure.error)


def pending_to_row(p: PendingItem) -> dict[str, Any]:
    """A pending item as a flat, JSON-able row (the unit a distributed runner schedules)."""
    item = p.item
    return {
        "media_id": p.media_id,
        "path": str(item.path),
        "uri": item.uri,
        "sidecar": str(item.sidecar) if item.sidecar is not None else None,
        "manifest_text": item.manifest_text,
        "metadata": json.dumps(item.metadata, sort_keys=True, default=str),
        "uris": json.dumps(p.uris),
        "n_bytes": p.n_bytes,
        "only": json.dumps(p.only),
        "size": item.size,
        "sidecar_uri": item.sidecar_uri,
    }


def pending_from_row(row: dict[str, Any]) -> PendingItem:
    """Inverse of `pending_to_row`."""
    sidecar = row.get("sidecar")
    item = SourceItem(
        path=Path(row["path"]),
        uri=row["uri"],
        sidecar=Path(sidecar) if sidecar else None,
        manifest_text=row.get("manifest_text"),
        metadata=json.loads(row["metadata"]),
        size=None if row.get("size") is None else int(row["size"]),
        sidecar_uri=row.get("sidecar_uri"),
    )
    only = json.loads(row.get("only") or "null")
    return PendingItem(
        media_id=row["media_id"],
        item=item,
        uris=json.loads(row["uris"]),
        n_bytes=int(row["n_bytes"]),
        only=None if only is None else tuple(only),
    )
