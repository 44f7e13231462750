"""The Beam runner: the same stages as DoFns, a dead-letter branch for failed items, idempotent writes.

The graph: items → Reshuffle → Decode (a DoFn around the transforms; an item that fails outright
goes to the `dead_letter` output) → BatchElements → Embed (a batched DoFn whose `setup()` loads the
encoders once per worker, the RunInference pattern over mmfs's own encoder interface, which embeds
three modalities per batch) → Commit. Dead letters are batched into quarantine and media rows
without touching a model, then committed the same way.

Commit writes a batch with merge-insert on each table's keys, data tables first and the media
ledger last. A runner may execute a bundle twice (a retry after a worker failure); the keys are
deterministic, so the second write replaces the first instead of duplicating it. Locally this runs
on Beam's in-process FnApiRunner; `runner.beam_options` (or `--beam-option`) passes any pipeline option
through, e.g. `--runner=FlinkRunner --flink_master=host:8081`, `--runner=SparkRunner` or
`--runner=DataflowRunner --project=… --region=… --temp_location=gs://…`.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Iterator
from typing import Any

from mmfs.errors import ConfigError
from mmfs.runners.progress import Progress
from mmfs.stages.batch import (
    BatchJob,
    BatchResult,
    BatchTally,
    build_batch,
    commit_batch,
    pending_from_row,
    pending_to_row,
)
from mmfs.stages.decode_pool import extract_item
from mmfs.stages.encode import Enricher
from mmfs.stages.items import Extracted, PendingItem
from mmfs.store.db import Store

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
    n = job.cfg.runner.batch_media
    decoded = (
        pipeline
        | "Items" >> beam.Create([pending_to_row(p) for p in todo])
        | "Spread" >> beam.Reshuffle()
        | "Decode" >> beam.ParDo(DecodeFn(job)).with_outputs(DEAD_LETTER, main="decoded")
    )
    embedded = (
        decoded.decoded
        | "Batch" >> beam.BatchElements(min_batch_size=n, max_batch_size=n)
        | "Embed" >> beam.ParDo(EmbedFn(job))
    )
    quarantined = (
        decoded[DEAD_LETTER]
        | "BatchFailed" >> beam.BatchElements(min_batch_size=n, max_batch_size=n)
        | "FailureRows" >> beam.ParDo(FailureRowsFn(job))
    )
    _ = (
        (embedded, quarantined)
        | "Results" >> beam.Flatten()
        | "Commit" >> beam.ParDo(CommitFn(str(store.uri), store.storage_options))
    )
    result = pipeline.run()
    result.wait_until_finish()
    tally, written = _collect_metrics(result)
    progress.advance(len(todo))
    return tally, written


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


class EmbedFn(_dofn_base()):  # type: ignore[misc]
    """Batched encoders: `setup()` loads them once per worker, each batch becomes one BatchResult."""

    def __init__(self, job: BatchJob) -> None:
        super().__init__()
        self.job = job
        self.enricher: Enricher | None = None

    def setup(self) -> None:
        """Load the encoders once per DoFn instance (Beam reuses instances across bundles)."""
        self.enricher = Enricher(self.job.cfg)
        for modality in ("image", "text", "audio"):
            self.enricher.encoder(modality).load()

    def process(self, batch: list[Extracted]) -> Iterator[dict[str, Any]]:
        """A batch of decoded items in; its rows per table out, as Arrow IPC."""
        yield build_batch(list(batch), self.enricher, self.job).to_row()


class FailureRowsFn(_dofn_base()):  # type: ignore[misc]
    """Dead letters: quarantine and media rows for items that failed outright (no model needed)."""

    def __init__(self, job: BatchJob) -> None:
        super().__init__()
        self.job = job

    def process(self, batch: list[Extracted]) -> Iterator[dict[str, Any]]:
        """A batch of failed items in; their rows out."""
        yield build_batch(list(batch), None, self.job).to_row()


class CommitFn(_dofn_base()):  # type: ignore[misc]
    """Writes each batch to the store (merge-insert: a retried bundle rewrites, never duplicates)."""

    def __init__(self, store_uri: str, storage_options: dict[str, str] | None = None) -> None:
        super().__init__()
        self.store_uri = store_uri
        self.storage_options = storage_options
        self.store: Store | None = None
        self.items = 0

    def setup(self) -> None:
        """Open the store once per DoFn instance."""
        self.store = Store(self.store_uri, storage_options=self.storage_options)

    def process(self, row: dict[str, Any]) -> Iterator[None]:
        """Commit one batch and count what it wrote."""
        from apache_beam.metrics import Metrics

        assert self.store is not None
        result = BatchResult.from_row(row)
        t0 = time.perf_counter()
        written = commit_batch(self.store, result)
        result.tally.add_seconds("write", time.perf_counter() - t0)
        for name, n in written.items():
            Metrics.counter(f"{NAMESPACE}.rows", name).inc(n)
        for name in _TALLY_COUNTERS:
            Metrics.counter(NAMESPACE, name).inc(getattr(result.tally, name))
        Metrics.counter(NAMESPACE, "media_ms").inc(round(result.tally.media_seconds * 1000))
        for stage, seconds in result.tally.stage_seconds.items():
            Metrics.counter(f"{NAMESPACE}.stage_ms", stage).inc(round(seconds * 1000))
        self.items += result.n_items
        log.info("beam: committed %d items (%d by this worker)", result.n_items, self.items)
        yield from ()


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
