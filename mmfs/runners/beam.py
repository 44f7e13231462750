"""The Beam runner: the same stages as DoFns, a dead-letter branch for failed items, one committer.

The graph: items → Reshuffle → Decode (a DoFn around the transforms; an item that fails outright
goes to the `dead_letter` output) → BatchElements → Embed (a batched DoFn whose `setup()` loads the
encoders once per worker, the RunInference pattern over mmfs's own encoder interface, which embeds
three modalities per batch, then writes the batch's data rows into the store as uncommitted Lance
data files) → one key → GroupByKey → Commit. Dead letters are batched into quarantine and media rows
without touching a model and take the same way.

What reaches Commit is metadata (`stages/staged.py`): fragment metadata, key columns and the small
quarantine and media rows. Gathered under one key, it reaches one committer, which commits many
batches per table at once, data tables first and the media ledger last. A runner may execute a
bundle twice (a retry after a worker failure): a staged batch committed again replaces its first
commit's rows by key, and a batch written twice leaves orphan files that `mmfs maintain` removes.
Locally this runs on Beam's in-process FnApiRunner (`--direct_running_mode=multi_processing
--direct_num_workers=N` spreads it over processes); `runner.beam_options` (or `--beam-option`)
passes any pipeline option through, e.g. `--runner=FlinkRunner --flink_master=host:8081`,
`--runner=SparkRunner` or `--runner=DataflowRunner --project=… --region=… --temp_location=gs://…`
(workers then need the store's path: object storage).
"""

from __future__ import annotations

import contextlib
import json
import logging
import secrets
import time
from collections.abc import Iterator
from typing import Any

from mmfs.config import PipelineConfig
from mmfs.errors import ConfigError
from mmfs.runners.progress import Progress
from mmfs.stages.batch import (
    BatchJob,
    BatchTally,
    build_batch,
    pending_from_row,
    pending_to_row,
)
from mmfs.stages.decode_pool import extract_item
from mmfs.stages.encode import Enricher
from mmfs.stages.items import Extracted, PendingItem
from mmfs.stages.path import data_path
from mmfs.stages.staged import StagedBatch, StagedCommitter, stage_batch, stages_on_workers
from mmfs.store.db import Store
from mmfs.store.fragments import HASH_RESULTS, STAGED_DIR, close_run

log = logging.getLogger(__name__)

DEAD_LETTER = "dead_letter"
NAMESPACE = "mmfs"
_TALLY_COUNTERS = ("n_ok", "n_degraded", "n_quarantined")


def execute_beam(
    todo: list[PendingItem], job: BatchJob, store: Store, progress: Progress
) -> tuple[BatchTally, dict[str, int]]:
    """Build and run the Beam pipeline; commits happen inside it, the tally comes back as metrics."""
    beam = _import_beam()
    from apache_beam.options.pipeline_options import PipelineOptions

    try:
        pipeline = beam.Pipeline(options=PipelineOptions(_options(job.cfg.runner.beam_options)))
    except ValueError as err:  # an unknown runner name, a malformed option
        raise ConfigError(f"beam pipeline options rejected: {err}") from err
    n = data_path(job.cfg).batch_size  # the same stages and batches as the other runners (stages/path)
    stage = stages_on_workers(store)
    decoded = (
        pipeline
        | "Items" >> beam.Create([pending_to_row(p) for p in todo])
        | "Spread" >> beam.Reshuffle()
        | "Decode" >> beam.ParDo(DecodeFn(job)).with_outputs(DEAD_LETTER, main="decoded")
    )
    embedded = (
        decoded.decoded
        | "Batch" >> beam.BatchElements(min_batch_size=n, max_batch_size=n)
        | "Embed" >> beam.ParDo(EmbedFn(job, stage))
    )
    quarantined = (
        decoded[DEAD_LETTER]
        | "BatchFailed" >> beam.BatchElements(min_batch_size=n, max_batch_size=n)
        | "FailureRows" >> beam.ParDo(FailureRowsFn(job, stage))
    )
    _ = (
        (embedded, quarantined)
        | "Results" >> beam.Flatten()
        | "OneCommitter" >> beam.Map(lambda row: (0, row))
        | "Gather" >> beam.GroupByKey()
        | "Commit" >> beam.ParDo(CommitFn(job, str(store.uri), store.storage_options))
    )
    result = pipeline.run()
    result.wait_until_finish()
    tally, written = _collect_metrics(result)
    progress.advance(len(todo))
    return tally, written


def hash_on_beam(
    chunks: list[list[dict[str, Any]]], cfg: PipelineConfig, scratch: str | None
) -> list[dict[str, Any]]:
    """Hash the plan's new files in a Beam pipeline: ReadFromText → Reshuffle → HashFn
    (`hash_files.hash_chunk` per chunk) → WriteToText, as JSON lines in a folder under `scratch` (the
    store: a place every worker can read and write, local or object storage). The chunks go in as a
    file, not inside the pipeline (`Create` would carry every path in the job graph, which runners
    such as Dataflow cap); the driver reads the results back in the chunks' order and removes the
    folder (a plan that dies first leaves it to `mmfs maintain`).

    The driver sends paths and reads back ids, stats and errors, never the files. A bundle that Beam
    retries writes its chunk again; Beam's file sink keeps one copy, and the driver keeps the first
    result per chunk whatever it finds.
    """
    beam = _import_beam()
    from apache_beam.io.filesystems import FileSystems
    from apache_beam.options.pipeline_options import PipelineOptions

    if scratch is None:
        raise ValueError("hashing under Beam needs a folder the workers can write (the store)")
    folder = f"{scratch.rstrip('/')}/{STAGED_DIR}/{HASH_RESULTS}{secrets.token_hex(6)}"
    try:
        pipeline = beam.Pipeline(options=PipelineOptions(_options(cfg.runner.beam_options)))
    except ValueError as err:
        raise ConfigError(f"beam pipeline options rejected: {err}") from err
    with FileSystems.create(f"{folder}/chunks.jsonl") as sink:
        for index, chunk in enumerate(chunks):
            sink.write(json.dumps({"chunk": index, "rows": chunk}).encode("utf-8") + b"\n")
    _ = (
        pipeline
        | "Chunks" >> beam.io.ReadFromText(f"{folder}/chunks.jsonl")
        | "Spread" >> beam.Reshuffle()
        | "Hash" >> beam.ParDo(HashFn(cfg))
        | "Results" >> beam.io.WriteToText(f"{folder}/part", file_name_suffix=".jsonl")
    )
    try:
        pipeline.run().wait_until_finish()
        found: dict[int, dict[str, Any]] = {}
        files = [m.path for r in FileSystems.match([f"{folder}/part*"]) for m in r.metadata_list]
        for path in sorted(files):
            with FileSystems.open(path) as handle:
                for line in handle.read().decode("utf-8").splitlines():
                    doc = json.loads(line)
                    found.setdefault(int(doc["chunk"]), doc)
    finally:
        with contextlib.suppress(Exception):  # nothing written (a failed start): nothing to remove
            FileSystems.delete([folder])
    missing = [i for i in range(len(chunks)) if i not in found]
    if missing:
        raise RuntimeError(f"beam hashing returned no result for {len(missing)} of {len(chunks)} chunks")
    return [found[i] for i in range(len(chunks))]


def _import_beam() -> Any:
    """apache_beam, with its one import-time warning about optional GCP clients kept off the console."""
    root = logging.getLogger()
    quiet = _DropMessage("apitools not found")
    root.addFilter(quiet)
    try:
        import apache_beam as beam
    except ImportError as err:
        raise ConfigError("runner 'beam' needs Apache Beam: pip install 'mmfs[beam]'") from err
    finally:
        root.removeFilter(quiet)
    return beam


class _DropMessage(logging.Filter):
    """Drops log records whose message starts with a given prefix."""

    def __init__(self, prefix: str) -> None:
        super().__init__()
        self.prefix = prefix

    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.msg).startswith(self.prefix)


def _options(passed: list[str]) -> list[str]:
    """Pipeline options: what the user passed; Beam's in-process FnApiRunner when no runner is named.

    FnApiRunner is what DirectRunner itself falls back to; naming it skips DirectRunner's first try,
    Prism, which downloads a binary from GitHub and so fails (slowly) on machines without the internet.
    """
    if any(opt.startswith("--runner") for opt in passed):
        return list(passed)
    return ["--runner=FnApiRunner", *passed]


def _dofn_base() -> type:
    """Beam's DoFn base class (this module is imported only when the beam runner is chosen)."""
    return _import_beam().DoFn  # type: ignore[no-any-return]


class DecodeFn(_dofn_base()):  # type: ignore[misc]
    """Decode and transform one item; an item that failed outright goes to the dead-letter output."""

    def __init__(self, job: BatchJob) -> None:
        super().__init__()
        self.job = job

    def process(self, row: dict[str, Any]) -> Iterator[Any]:
        """One source row in; one Extracted out, on the main or the dead-letter output."""
        from apache_beam import pvalue

        ex = extract_item(pending_from_row(row), self.job.cfg)
        yield pvalue.TaggedOutput(DEAD_LETTER, ex) if ex.failed else ex


class HashFn(_dofn_base()):  # type: ignore[misc]
    """Hash one chunk of the plan's new files on a worker; one JSON line out (chunk index, results)."""

    def __init__(self, cfg: PipelineConfig) -> None:
        super().__init__()
        self.cfg = cfg

    def process(self, line: str) -> Iterator[str]:
        """`{"chunk": i, "rows": [...]}` in; `{"chunk": i, "host", "pid", "results": [...]}` out."""
        from mmfs.stages.hash_files import hash_chunk

        doc = json.loads(line)
        yield json.dumps({"chunk": doc["chunk"], **hash_chunk(doc["rows"], self.cfg)})


class _WriterFn(_dofn_base()):  # type: ignore[misc]
    """A DoFn that opens the store once per instance to write the batches it builds."""

    def __init__(self, job: BatchJob, stage: bool) -> None:
        super().__init__()
        self.job, self.stage = job, stage
        self.store: Store | None = None

    def setup(self) -> None:
        """Open the store once per DoFn instance (Beam reuses instances across bundles)."""
        self.store = Store(str(self.job.store_uri), storage_options=self.job.cfg.store.storage_options)

    def staged_row(self, batch: list[Extracted], enricher: Enricher | None) -> dict[str, Any]:
        """Build a batch's rows, write its data rows into the store, return what the committer needs."""
        assert self.store is not None
        result = build_batch(list(batch), enricher, self.job)
        return stage_batch(self.store, result, self.job.run_id, stage=self.stage).to_row()


class EmbedFn(_WriterFn):
    """Batched encoders: `setup()` loads them once per worker; each batch is written, then described."""

    def __init__(self, job: BatchJob, stage: bool = True) -> None:
        super().__init__(job, stage)
        self.enricher: Enricher | None = None

    def setup(self) -> None:
        """Load the encoders and open the store once per DoFn instance."""
        super().setup()
        self.enricher = Enricher(self.job.cfg)
        self.enricher.load_models()

    def process(self, batch: list[Extracted]) -> Iterator[dict[str, Any]]:
        """A batch of decoded items in; its staged metadata out."""
        yield self.staged_row(batch, self.enricher)


class FailureRowsFn(_WriterFn):
    """Dead letters: quarantine and media rows for items that failed outright (no model needed)."""

    def process(self, batch: list[Extracted]) -> Iterator[dict[str, Any]]:
        """A batch of failed items in; their rows out."""
        yield self.staged_row(batch, None)


class CommitFn(_dofn_base()):  # type: ignore[misc]
    """The one committer: every staged batch of the run, gathered under one key, grouped into commits."""

    def __init__(self, job: BatchJob, store_uri: str, storage_options: dict[str, str] | None = None) -> None:
        super().__init__()
        self.runner, self.run_id = job.cfg.runner, job.run_id
        self.store_uri = store_uri
        self.storage_options = storage_options
        self.store: Store | None = None

    def setup(self) -> None:
        """Open the store once per DoFn instance."""
        self.store = Store(self.store_uri, storage_options=self.storage_options)

    def process(self, keyed: tuple[int, Any]) -> Iterator[None]:
        """Commit the run's staged batches by rows and time, counting what each commit wrote."""
        assert self.store is not None
        committer = StagedCommitter(self.store, self.runner.commit_rows, self.runner.commit_seconds)
        items = 0
        for row in keyed[1]:
            batch = StagedBatch.from_row(row)
            t0 = time.perf_counter()
            _count_rows(committer.add(batch))
            batch.tally.add_seconds("write", time.perf_counter() - t0)
            _count_tally(batch.tally)
            items += batch.n_items
        t0 = time.perf_counter()
        _count_rows(committer.flush())
        close_run(self.store, self.run_id)
        last = BatchTally()
        last.add_seconds("write", time.perf_counter() - t0)
        _count_tally(last)
        log.info("beam: committed %d items in %d commits", items, committer.commits)
        yield from ()


def _count_rows(written: dict[str, int]) -> None:
    """Rows committed per table, as Beam counters."""
    from apache_beam.metrics import Metrics

    for name, n in written.items():
        Metrics.counter(f"{NAMESPACE}.rows", name).inc(n)


def _count_tally(tally: BatchTally) -> None:
    """A batch's tally, as Beam counters (the run's summary is read from them)."""
    from apache_beam.metrics import Metrics

    for name in _TALLY_COUNTERS:
        Metrics.counter(NAMESPACE, name).inc(getattr(tally, name))
    Metrics.counter(NAMESPACE, "media_ms").inc(round(tally.media_seconds * 1000))
    for stage, seconds in tally.stage_seconds.items():
        Metrics.counter(f"{NAMESPACE}.stage_ms", stage).inc(round(seconds * 1000))


def _collect_metrics(result: Any) -> tuple[BatchTally, dict[str, int]]:
    """The run's tally and rows per table from the pipeline's counters (committed when supported)."""
    tally, written = BatchTally(), dict[str, int]()
    for counter in result.metrics().query()["counters"]:
        value = _counter_value(counter)
        namespace, name = counter.key.metric.namespace, counter.key.metric.name
        if namespace == f"{NAMESPACE}.rows":
            written[name] = written.get(name, 0) + value
        elif namespace == f"{NAMESPACE}.stage_ms":
            tally.add_seconds(name, value / 1000)
        elif namespace == NAMESPACE and name == "media_ms":
            tally.media_seconds += value / 1000
        elif namespace == NAMESPACE and name in _TALLY_COUNTERS:
            setattr(tally, name, getattr(tally, name) + value)
    return tally, written


def _counter_value(counter: Any) -> int:
    with contextlib.suppress(Exception):  # some runners do not report committed values
        if counter.committed is not None:
            return int(counter.committed)
    return int(counter.attempted)
