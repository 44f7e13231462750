"""Online features: one item through the run's own stages, with the store's recorded config, nothing written.

Serving must compute what training read from the store, so this module lays out no rows itself: an
item goes through `extract` (in a decode worker process, under the run's time budget, when the config
isolates decoding) and `build_batch` with the config of the store's last run (`runs.config`), exactly
as `mmfs run` would process it, and the batch's rows are returned instead of committed. The one step a
run does after committing, the corpus step's sparse text columns, is applied with the store's own
vocabulary (frozen: an online item never changes the corpus).

The models load once per process (`OnlineFeatures` is shared per store, `shared_online`), and items that
arrive within `max_wait_s` of each other go through the encoders together (`MicroBatcher`).
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from queue import Empty, Queue
from typing import Any, Generic, TypeVar

import pyarrow as pa
import pyarrow.compute as pc

from mmfs.config import PipelineConfig, config_from_dict
from mmfs.errors import (
    ConfigError,
    EmptyFile,
    ErrorCode,
    MediaLimitExceeded,
    SourceRejected,
    UnsupportedMedia,
)
from mmfs.media.hashing import sha256_file
from mmfs.pipelines.corpus import stored_vocabulary
from mmfs.pipelines.sources import SourceItem, sidecar_for
from mmfs.runners.budget import thread_budget
from mmfs.stages.batch import BatchJob, build_batch
from mmfs.stages.decode import extract
from mmfs.stages.decode_pool import DecodePool
from mmfs.stages.encode import Enricher
from mmfs.stages.items import Extracted, PendingItem
from mmfs.stages.model_meta import run_schemas
from mmfs.stages.versions import feature_versions
from mmfs.store.db import Store
from mmfs.transforms.text.captions import SIDECAR_SUFFIXES
from mmfs.transforms.text.vocabulary import Vocabulary, terms_of, vectorize

ONLINE_RUN_ID = "online"  # the run_id column of rows computed online (they belong to no run)
REFRESH_S = 2.0  # how often the store's last run is looked up (a new run may bring a new config)
_SPARSE = ("bow_indices", "bow_counts", "tfidf", "vocab_version")

T = TypeVar("T")
R = TypeVar("R")


@dataclass(frozen=True)
class OnlineItem:
    """One item to compute: its bytes in a local file, the uri its media row names, its captions."""

    path: Path
    uri: str
    sidecar: Path | None = None


@dataclass
class ItemFeatures:
    """An item's rows in every table the run would write for it, and how they were computed."""

    media_id: str
    kind: str
    status: str
    tables: dict[str, pa.Table]
    run_id: str  # the recorded run whose config computed them
    config_hash: str
    batch_size: int = 1  # items that went through the encoders together with this one
    seconds: dict[str, float] = field(default_factory=dict)

    @property
    def failed(self) -> bool:
        """True when nothing usable came out of the item (its quarantine rows say why)."""
        return self.status == "failed"


class MicroBatcher(Generic[T, R]):
    """Calls `fn` on the items submitted within `max_wait_s` of the first (at most `max_batch`).

    One thread runs the batches, so `fn` (the encoders) is never called concurrently; while it runs,
    new items queue up and make the next batch. `fn` returns one result per item, in order.
    """

    def __init__(self, fn: Callable[[list[T]], list[R]], *, max_batch: int, max_wait_s: float) -> None:
        self.fn, self.max_batch, self.max_wait_s = fn, max_batch, max_wait_s
        self._queue: Queue[tuple[T, Future[R]] | None] = Queue()
        self._thread = threading.Thread(target=self._loop, name="mmfs-online-batcher", daemon=True)
        self._thread.start()

    def submit(self, item: T) -> Future[R]:
        """Queue an item; its future gets its result (or the batch's exception)."""
        future: Future[R] = Future()
        self._queue.put((item, future))
        return future

    def close(self) -> None:
        """Stop the thread once the queued items are done."""
        self._queue.put(None)
        self._thread.join(timeout=60)

    def _loop(self) -> None:
        while (first := self._queue.get()) is not None:
            batch, closing = [first], False
            deadline = time.monotonic() + self.max_wait_s
            while len(batch) < self.max_batch:
                try:
                    more = self._queue.get(timeout=max(0.0, deadline - time.monotonic()))
                except Empty:
                    break
                if more is None:
                    closing = True
                    break
                batch.append(more)
            self._run(batch)
            if closing:
                return

    def _run(self, batch: list[tuple[T, Future[R]]]) -> None:
        try:
            results = self.fn([item for item, _ in batch])
        except BaseException as err:  # every waiter hears of it; the thread goes on with the next batch
            for _, future in batch:
                future.set_exception(err)
            return
        for (_, future), result in zip(batch, results, strict=True):
            future.set_result(result)


@dataclass(frozen=True)
class RecordedRun:
    """The store's last completed run: the config every online item is computed with."""

    run_id: str
    config_hash: str
    cfg: PipelineConfig


def last_run(store: Store) -> RecordedRun:
    """The newest completed run of the store, its config parsed; ConfigError when there is none."""
    if not store.has("runs") or not store.count("runs"):
        raise ConfigError(f"{store.uri}: no run recorded yet, so no config to compute features with")
    rows = store.read("runs", ["run_id", "config", "config_hash", "status", "started_at"]).to_pylist()
    done = [r for r in rows if r["status"] == "completed" and r["config"]]
    if not done:
        raise ConfigError(f"{store.uri}: no completed run recorded, so no config to compute features with")
    row = max(done, key=lambda r: (r["started_at"], r["run_id"]))
    return RecordedRun(row["run_id"], row["config_hash"], config_from_dict(json.loads(row["config"])))


class _Pipeline:
    """One recorded config's stages: its decode workers, its models, its schemas and vocabulary.

    Decoding runs on this object's own threads, which live as long as it does: a decode worker
    process is killed when the thread that started it exits (PR_SET_PDEATHSIG is per thread), and a
    web server's request threads come and go.
    """

    def __init__(self, run: RecordedRun, vocabulary: Vocabulary | None) -> None:
        cfg = run.cfg
        self.run, self.vocabulary = run, vocabulary
        versions = feature_versions(cfg)
        self.job = BatchJob(
            cfg=cfg, run_id=ONLINE_RUN_ID, versions=versions, schemas=run_schemas(cfg, versions)
        )
        self.enricher = Enricher(cfg)
        self.users = 0  # requests using it now (a pipeline replaced by a new config closes at 0)
        workers = cfg.runner.workers or thread_budget(cfg).decode  # unset: the run's own thread budget
        self._threads = ThreadPoolExecutor(workers, thread_name_prefix="mmfs-online-decode")
        self.pool: DecodePool | None = None
        if cfg.runner.isolate_decode:
            self.pool = self._threads.submit(DecodePool, cfg, workers).result()

    def extract(self, pending: PendingItem) -> Extracted:
        """The item's CPU stages, as the run's local runner does them (`runner.workers` at once)."""
        return self._threads.submit(self._extract, pending).result()

    def _extract(self, pending: PendingItem) -> Extracted:
        if self.pool is not None:
            return self.pool.extract(pending)
        return extract(pending, self.job.cfg)

    def close(self) -> None:
        """Stop the decode workers and threads."""
        if self.pool is not None:
            self.pool.close()
        self._threads.shutdown(wait=False, cancel_futures=True)


@dataclass
class _Job:
    """An extracted item on its way through the batcher."""

    pipeline: _Pipeline
    ex: Extracted


class OnlineFeatures:
    """Computes the features of single items for one store; thread-safe, one per process and store."""

    def __init__(
        self,
        store_uri: str | Path,
        *,
        max_wait_s: float = 0.005,
        max_batch: int | None = None,
        refresh_s: float = REFRESH_S,
    ) -> None:
        self.store_uri, self.refresh_s = str(store_uri), refresh_s
        self._lock = threading.Lock()
        self._pipeline: _Pipeline | None = None
        self._checked = 0.0
        self._retired: list[_Pipeline] = []
        pipeline = self._current()  # fails here, with its reason, for a store without a run
        self.batcher: MicroBatcher[_Job, tuple[dict[str, pa.Table], int, float]] = MicroBatcher(
            self._embed, max_batch=max_batch or pipeline.job.cfg.runner.batch_media, max_wait_s=max_wait_s
        )

    def _acquire(self) -> _Pipeline:
        """The current pipeline, counted as in use until `_release`."""
        with self._lock:
            pipeline = self._current()
            pipeline.users += 1
            return pipeline

    def _release(self, pipeline: _Pipeline) -> None:
        """Done with a pipeline: one replaced by a newer config closes when its last user leaves."""
        with self._lock:
            pipeline.users -= 1
            idle = [p for p in self._retired if p.users == 0]
            self._retired = [p for p in self._retired if p.users > 0]
        for old in idle:
            old.close()

    def _current(self) -> _Pipeline:
        """The stages of the store's last run's config (looked up every `refresh_s`); under the lock."""
        now = time.monotonic()
        if self._pipeline is not None and now - self._checked < self.refresh_s:
            return self._pipeline
        store = Store(self.store_uri)
        run = last_run(store)
        self._checked = now
        current = self._pipeline
        if current is not None and current.run.run_id == run.run_id:
            return current
        if current is not None and current.run.config_hash == run.config_hash:
            current.run, current.vocabulary = run, stored_vocabulary(store)  # same stages, new corpus
            return current
        self._pipeline = _Pipeline(run, stored_vocabulary(store))
        if current is not None:  # requests may still be using it: closed by the last of them
            self._retired.append(current)
        return self._pipeline

    def features(self, item: OnlineItem) -> ItemFeatures:
        """The item's rows, as `mmfs run` with the recorded config would write them; nothing is written."""
        t0 = time.perf_counter()
        pipeline = self._acquire()
        try:
            pending = _pending(item, pipeline.job.cfg)
            ex = pipeline.extract(pending)
            t1 = time.perf_counter()
            tables, batch_size, batch_s = self.batcher.submit(_Job(pipeline, ex)).result()
            t2 = time.perf_counter()
        finally:
            self._release(pipeline)
        media = tables["media"].to_pylist()[0]
        return ItemFeatures(
            media_id=pending.media_id,
            kind=media["kind"],
            status=media["status"],
            tables=tables,
            run_id=pipeline.run.run_id,
            config_hash=pipeline.run.config_hash,
            batch_size=batch_size,
            seconds={"extract": t1 - t0, "embed_batch": batch_s, "wait": t2 - t1 - batch_s, "total": t2 - t0},
        )

    def _embed(self, jobs: list[_Job]) -> list[tuple[dict[str, pa.Table], int, float]]:
        """A batch through `build_batch`, per pipeline; each item's rows cut out of the batch's tables."""
        out: dict[int, tuple[dict[str, pa.Table], int, float]] = {}
        for pipeline in {id(j.pipeline): j.pipeline for j in jobs}.values():
            mine = [j for j in jobs if j.pipeline is pipeline]
            unique = list({j.ex.pending.media_id: j.ex for j in mine}.values())  # the same bytes twice: once
            t0 = time.perf_counter()
            live = any(not ex.failed for ex in unique)
            result = build_batch(unique, pipeline.enricher if live else None, pipeline.job)
            seconds = time.perf_counter() - t0
            for j in mine:
                tables = {  # the item's tables (the vocabulary is the corpus's, not an item's)
                    name: _rows_of(table, j.ex.pending.media_id)
                    for name, table in result.tables.items()
                    if "media_id" in table.schema.names
                }
                tables["text"] = _with_sparse(tables["text"], pipeline.vocabulary, pipeline.job.cfg)
                out[id(j)] = (tables, len(unique), seconds)
        return [out[id(j)] for j in jobs]

    def close(self) -> None:
        """Stop the batcher and every decode worker."""
        self.batcher.close()
        with self._lock:
            for pipeline in [*self._retired, *([self._pipeline] if self._pipeline else [])]:
                pipeline.close()
            self._pipeline, self._retired = None, []


def item_at(raw: str, roots: list[Path]) -> OnlineItem:
    """A path the client named, as an item, when it is a file under one of the allowed roots.

    The path is resolved (symlinks followed) before the check, so a link out of a root is refused;
    the caption file beside it (`sidecar_for`, as a run finds it) must be under a root too.
    """
    if not roots:
        raise SourceRejected("this server reads no paths (start it with --allow-root DIR); upload the file")
    try:
        local = Path(raw)
        if not local.is_absolute():
            raise SourceRejected(f"{raw[:300]!r}: give an absolute path")
        resolved = local.resolve()
        inside = _inside(resolved, roots)
        is_file = inside and resolved.is_file()
        sidecar = sidecar_for(resolved) if is_file else None
        sidecar = sidecar.resolve() if sidecar is not None else None
    except (OSError, ValueError, RuntimeError) as err:  # a NUL byte, a symlink loop, an over-long name
        raise SourceRejected(f"{raw[:300]!r}: not a usable path ({str(err)[:300]})") from None
    if not inside:
        raise SourceRejected(f"{raw[:300]}: outside the allowed roots")
    if not is_file:
        raise SourceRejected(f"{raw[:300]}: no such file", code=ErrorCode.NOT_FOUND)
    if sidecar is not None and not _inside(sidecar, roots):
        raise SourceRejected(f"{raw[:300]}: its caption file links outside the allowed roots")
    return OnlineItem(resolved, str(resolved), sidecar)


def _inside(path: Path, roots: list[Path]) -> bool:
    return any(path == root or root in path.parents for root in roots)


def _pending(item: OnlineItem, cfg: PipelineConfig) -> PendingItem:
    """The item as the run's planner would hand it on: its content hash is its media_id."""
    n_bytes = item.path.stat().st_size
    if n_bytes == 0:
        raise EmptyFile(f"{item.path.name}: empty file")
    if n_bytes > cfg.limits.max_bytes:
        raise MediaLimitExceeded(
            f"{item.path.name}: {n_bytes} bytes is over the limit of {cfg.limits.max_bytes}",
            code=ErrorCode.LIMIT_BYTES,
        )
    if item.sidecar is not None and item.sidecar.suffix.lower() not in SIDECAR_SUFFIXES:
        raise UnsupportedMedia(f"{item.sidecar.name}: captions must be one of {', '.join(SIDECAR_SUFFIXES)}")
    source = SourceItem(path=item.path, uri=item.uri, sidecar=item.sidecar, size=n_bytes)
    return PendingItem(media_id=sha256_file(item.path), item=source, uris=[item.uri], n_bytes=n_bytes)


def _rows_of(table: pa.Table, media_id: str) -> pa.Table:
    """The rows of one item."""
    return table.filter(pc.equal(table.column("media_id"), media_id))


def _with_sparse(text: pa.Table, vocabulary: Vocabulary | None, cfg: PipelineConfig) -> pa.Table:
    """Text rows with the corpus step's columns, vectorised with the stored vocabulary as it is."""
    if vocabulary is None or text.num_rows == 0 or "bow_indices" not in text.schema.names:
        return text
    ids, idf = vocabulary.ids, vocabulary.idf
    columns: dict[str, list[Any]] = {name: [] for name in _SPARSE}
    for tokens in text.column("tokens").to_pylist():
        indices, counts, tfidf = vectorize(terms_of(tokens or [], cfg.text.ngram_max), ids, idf)
        for name, value in zip(_SPARSE, (indices, counts, tfidf, vocabulary.version), strict=True):
            columns[name].append(value)
    for name, values in columns.items():
        index = text.schema.get_field_index(name)
        field_ = text.schema.field(index)
        text = text.set_column(index, field_, pa.array(values, field_.type))
    return text


_SHARED: dict[str, OnlineFeatures] = {}
_SHARED_LOCK = threading.Lock()


def shared_online(store_uri: str | Path) -> OnlineFeatures:
    """The process's `OnlineFeatures` of a store (models loaded once, kept between requests)."""
    key = str(store_uri)
    with _SHARED_LOCK:
        online = _SHARED.get(key)
        if online is None:
            online = _SHARED[key] = OnlineFeatures(key)
        return online


def close_shared() -> None:
    """Close every shared `OnlineFeatures` (server shutdown, tests)."""
    with _SHARED_LOCK:
        for online in _SHARED.values():
            online.close()
        _SHARED.clear()
