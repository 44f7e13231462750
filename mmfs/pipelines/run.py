"""A pipeline run: discover, hash, skip what is done, process in batches, commit each batch, report.

Exactly-once comes from three rules. Every write is an upsert on the table's keys. The `media` row of
an item is written last, after all its other rows, so it is the ledger: an item without it is
re-processed by the next run and its half-written rows are overwritten, not duplicated. And an item
whose `media` row already has this config's feature_version is skipped, so a re-run with the same
input and config writes nothing to the data tables.
"""

from __future__ import annotations

import json
import logging
import resource
import secrets
import sys
import time
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pyarrow as pa

from mmfs import __version__
from mmfs.config import PipelineConfig
from mmfs.errors import StoreConflict
from mmfs.pipelines.corpus import update_vocabulary
from mmfs.pipelines.identify import release_workers
from mmfs.pipelines.inputs import Inputs
from mmfs.pipelines.plan import PreFailure, find_work, read_ledger
from mmfs.pipelines.sources import RejectedSource, check_arguments, list_inputs
from mmfs.runners import allocator
from mmfs.runners.progress import Progress
from mmfs.schemas.rows import rows_to_table
from mmfs.schemas.tables import runs_schema
from mmfs.stages.items import PendingItem, StageFailure
from mmfs.stages.rows import RowBuilder
from mmfs.stages.versions import feature_versions
from mmfs.store.db import Store
from mmfs.store.filters import in_list
from mmfs.store.indexes import ensure_indexes, ensure_key_indexes
from mmfs.store.lock import active_writers, writer_lock
from mmfs.store.maintain import maintain
from mmfs.store.versions import tag_versions

if TYPE_CHECKING:  # the batch path (stages, encoders' registry, hooks) is imported when a run has work
    from mmfs.stages.batch import BatchJob, BatchTally

log = logging.getLogger(__name__)


@dataclass
class RunSummary:
    """What a run did: the `--json` output of `mmfs run` and the body of the `runs` row."""

    run_id: str
    n_inputs: int = 0
    n_ok: int = 0
    n_degraded: int = 0
    n_quarantined: int = 0
    n_skipped: int = 0
    n_duplicates: int = 0
    rows: dict[str, int] = field(default_factory=dict)
    table_versions: dict[str, int] = field(default_factory=dict)
    stage_seconds: dict[str, float] = field(default_factory=dict)
    seconds: float = 0.0
    media_seconds: float = 0.0
    vocabulary: dict[str, Any] = field(default_factory=dict)
    threads: dict[str, int] = field(default_factory=dict)  # local runner: decode workers, model threads
    # local runner: batches, most items held (stream.py); commits, most row bytes held (stages/commit.py)
    stream: dict[str, int] = field(default_factory=dict)
    peak_rss_mb: float = 0.0  # this process, at the end of the run (its whole life so far)
    peak_rss_children_mb: float = 0.0  # the largest ended child (decode processes), 0 when none

    def as_dict(self) -> dict[str, Any]:
        """JSON-able form."""
        return asdict(self)

    def absorb(self, tally: BatchTally, written: dict[str, int]) -> None:
        """Add what the runner processed: outcomes, rows written per table, time per stage."""
        self.n_ok += tally.n_ok
        self.n_degraded += tally.n_degraded
        self.n_quarantined += tally.n_quarantined
        self.media_seconds += tally.media_seconds
        for name, n in written.items():
            self.rows[name] = self.rows.get(name, 0) + n
        for stage, seconds in tally.stage_seconds.items():
            self.stage_seconds[stage] = self.stage_seconds.get(stage, 0.0) + seconds


def peak_rss_mb() -> tuple[float, float]:
    """Peak resident memory in MB of this process and of its largest ended child (Linux counts KiB)."""
    scale = 1 / 1024 if sys.platform != "darwin" else 1 / (1024 * 1024)
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * scale
    children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * scale
    return round(own, 1), round(children, 1)


def new_run_id() -> str:
    """A sortable, unique run id: UTC time plus random hex."""
    return datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ") + "-" + secrets.token_hex(3)


def run_pipeline(
    paths: list[str],
    cfg: PipelineConfig,
    store_uri: str | Path,
    *,
    show_progress: bool = True,
    rehash: bool = False,
) -> RunSummary:
    """Run the configured pipeline over `paths` into the store at `store_uri`, under `cfg.runner`.

    `rehash`: hash every input again instead of trusting the ledger's hash cache.
    """
    # before the store's and the runner's threads take malloc arenas (glibc fixes the cap once 8 exist)
    allocator.limit_arenas()
    found = list_inputs(paths, cfg.sources, exclude=store_uri)
    check_arguments(paths, found[1])  # nothing at all to read: a usage error, and no store is made
    # an unusable location fails here, with a clear message, before registering
    Store(store_uri, storage_options=cfg.store.storage_options)
    with writer_lock(str(store_uri), cfg.store.storage_options):
        try:
            summary = _run(found, cfg, store_uri, show_progress, rehash)
        finally:
            release_workers()  # a Ray that hashing started, when no execution stopped it
    if summary.rows:
        _upkeep(cfg, store_uri)
    return summary


def _upkeep(cfg: PipelineConfig, store_uri: str | Path) -> None:
    """Fresh indexes and compaction after a run that wrote, unless other runs are still writing.

    The data is committed by now, so upkeep never fails the run: when another run is writing, or an
    index build conflicts with one that just started, it is left to the next run (logged).
    """
    others = active_writers(str(store_uri), cfg.store.storage_options)
    if others:
        log.info("other runs (pids %s) are writing to the store: indexes and compaction left to them", others)
        return
    try:
        with writer_lock(str(store_uri), cfg.store.storage_options):
            store = Store(store_uri, storage_options=cfg.store.storage_options)
            if cfg.index.auto:
                ensure_indexes(store, min_rows=cfg.index.min_rows, kind=cfg.index.kind)
            else:  # the key indexes are the commits' lookups, not search's: kept either way
                ensure_key_indexes(store)
        if cfg.maintenance.auto:
            m = cfg.maintenance
            store = Store(store_uri, storage_options=cfg.store.storage_options)
            maintain(store, retention_days=m.retention_days, min_fragments=m.min_fragments)
    except StoreConflict as err:
        log.warning("index or compaction left to the next run: %s", err)


def _run(
    found: tuple[Inputs, list[RejectedSource]],
    cfg: PipelineConfig,
    store_uri: str | Path,
    show_progress: bool,
    rehash: bool = False,
) -> RunSummary:
    """The run itself, under the writer lock: plan on the driver, then the runner processes the rest."""
    started, t0 = datetime.now(UTC), time.perf_counter()
    summary = RunSummary(run_id=new_run_id())
    items, rejected = found
    summary.n_inputs = len(items) + len(rejected)
    store = Store(store_uri, storage_options=cfg.store.storage_options)
    before = store.versions()
    versions = feature_versions(cfg)
    pre_failures = [(f"uri:{r.uri}", r.uri, StageFailure("read", r.error)) for r in rejected]
    work = find_work(
        items, cfg, store, read_ledger(store), rehash=rehash, show_progress=show_progress
    )  # the per-item work is for the items that have some: the rest is joins over the ledger
    todo, media_only, stats = work.todo, work.media_only, work.stats
    summary.n_duplicates = work.duplicates
    pre_failures += work.unreadable
    summary.n_quarantined += len(pre_failures)
    pre_failures = _unrecorded(store, pre_failures)
    uri_stats = {uri: stat.as_row(uri) for uri, stat in stats.items()}
    summary.n_skipped = work.n_skipped
    if not (todo or media_only or pre_failures) and store.has("media"):
        return _finish(store, cfg, summary, started, t0, before)
    from mmfs.runners import hooks
    from mmfs.stages.batch import BatchJob
    from mmfs.stages.model_meta import run_schemas

    schemas = run_schemas(cfg, versions, store)  # from the models' metadata: the driver loads no model
    store.ensure_tables(schemas)
    job = BatchJob(
        cfg=cfg,
        run_id=summary.run_id,
        versions=versions,
        schemas=schemas,
        store_uri=str(store_uri),
        uri_stats={u: row for p in todo for u in p.uris if (row := uri_stats.get(u)) is not None},
    )
    _write_pre_failures(store, job, summary, pre_failures)
    _update_uris(store, media_only, uri_stats)
    if todo:
        hooks.items_planned(len(todo))  # observers (metrics): see mmfs.runners.hooks
        progress = Progress(len(todo), "media", enabled=show_progress)
        tally, written = _execute(todo, job, store, progress, summary)
        progress.close()
        summary.absorb(tally, written)
    return _finish(store, cfg, summary, started, t0, before)


def _execute(
    todo: list[PendingItem], job: BatchJob, store: Store, progress: Progress, summary: RunSummary
) -> tuple[BatchTally, dict[str, int]]:
    """Process the items under the configured runner; every runner commits through `commit_batch`."""
    kind = job.cfg.runner.kind
    if kind == "ray":
        from mmfs.runners.ray import execute_ray

        return execute_ray(todo, job, store, progress)
    if kind == "beam":
        from mmfs.runners.beam import execute_beam

        return execute_beam(todo, job, store, progress)
    return _execute_local(todo, job, store, progress, summary)


def _execute_local(
    todo: list[PendingItem], job: BatchJob, store: Store, progress: Progress, summary: RunSummary
) -> tuple[BatchTally, dict[str, int]]:
    """In-process, through the streaming executor (`runner_local.py`); its thread budget and stream
    figures go into the summary."""
    from mmfs.runners.local import execute_local  # the stages and torch load only for work

    outcome = execute_local(todo, job, store, progress)
    summary.threads, summary.stream = outcome.budget.as_dict(), {**outcome.stats.as_dict(), **outcome.commit}
    return outcome.tally, outcome.written


def _update_uris(
    store: Store, media_only: list[tuple[PendingItem, list[str]]], stats: dict[str, dict[str, Any]]
) -> None:
    """Record new paths of already-processed bytes, and their hash-time stats, without reprocessing.

    The write adds to the stored row's `uris` (see `store.append`), so paths recorded meanwhile by a
    concurrent run are kept.
    """
    if not media_only:
        return
    rows = store.read("media", where=in_list("media_id", [p.media_id for p, _ in media_only]))
    uris = {p.media_id: u for p, u in media_only}
    updated = [dict(r, uris=uris[r["media_id"]]) for r in rows.to_pylist()]
    media = rows_to_table(updated, store.table("media").schema, "media")
    from mmfs.stages.batch import with_uri_stats

    store.write("media", with_uri_stats(media, stats))


def _unrecorded(store: Store, failures: list[PreFailure]) -> list[PreFailure]:
    """Failures of unreadable inputs not already in `quarantine` with the same code (logged either way)."""
    for _, uri, failure in failures:
        log.warning("quarantined %s at %s: %s", uri, failure.stage, failure.error)  # as batch.log_failure
    if not failures or not store.count("quarantine"):
        return failures
    keys = [key for key, _, _ in failures]
    rows = store.read("quarantine", ["media_id", "stage", "error_code"], where=in_list("media_id", keys))
    existing = {(r["media_id"], r["stage"], r["error_code"]) for r in rows.to_pylist()}
    return [f for f in failures if (f[0], f[2].stage, int(f[2].error.code)) not in existing]


def _write_pre_failures(store: Store, job: BatchJob, summary: RunSummary, failures: list[PreFailure]) -> None:
    """Quarantine rows for inputs that could not be read at all."""
    if not failures:
        return
    rows = RowBuilder(job.cfg, job.run_id, job.versions)
    for key, uri, failure in failures:
        rows.add_failure(key, uri, failure)
        rows.add_unread(key, uri, failure)
    tables = rows.tables(job.schemas)
    for name in ("quarantine", "media"):  # the ledger row last, as for every other item
        store.write(name, tables[name])
        summary.rows[name] = summary.rows.get(name, 0) + tables[name].num_rows


def _finish(
    store: Store,
    cfg: PipelineConfig,
    summary: RunSummary,
    started: datetime,
    t0: float,
    before: dict[str, int],
) -> RunSummary:
    """Tag the versions the run started from and produced (when it wrote), and record the run."""
    summary.vocabulary = update_vocabulary(store, cfg, summary.run_id)
    summary.seconds = time.perf_counter() - t0
    summary.peak_rss_mb, summary.peak_rss_children_mb = peak_rss_mb()
    store.ensure_tables({"runs": runs_schema()})
    summary.table_versions = store.versions()
    if any(v != before.get(t) for t, v in summary.table_versions.items() if t != "runs"):
        tag_versions(store, "pre", summary.run_id, before)
        tag_versions(store, "run", summary.run_id, summary.table_versions)
    store.write("runs", _run_row(cfg, summary, started, before))
    summary.table_versions["runs"] = int(store.table("runs").version)
    return summary


def _run_row(cfg: PipelineConfig, summary: RunSummary, started: datetime, before: dict[str, int]) -> pa.Table:
    row = {
        "run_id": summary.run_id,
        "config": cfg.canonical_json(),
        "config_hash": cfg.config_hash(),
        "runner": cfg.runner.kind,
        "status": "completed",
        "started_at": started,
        "ended_at": datetime.now(UTC),
        "n_items": summary.n_inputs,
        "n_ok": summary.n_ok,
        "n_quarantined": summary.n_quarantined,
        "n_skipped": summary.n_skipped,
        "rows": json.dumps(summary.rows, sort_keys=True),
        "stage_seconds": json.dumps({k: round(v, 3) for k, v in summary.stage_seconds.items()}),
        "table_versions": json.dumps(summary.table_versions, sort_keys=True),
        "versions_before": json.dumps({t: v for t, v in before.items() if t != "runs"}, sort_keys=True),
        "mmfs_version": __version__,
        "vocabulary": json.dumps(summary.vocabulary, sort_keys=True),
        "feature_version": cfg.config_hash(),
    }
    return rows_to_table([row], runs_schema(), "runs")
