"""Prometheus metrics of runs: items and rows by outcome and table, stage latencies, bytes read, GPU memory.

`RunMetrics` holds its own registry, fed two ways: live, per committed batch, through the run's
observer hooks (`mmfs.runners.hooks`, local runner), and at the end from the `RunSummary` (every
runner: outcomes, skips, rows per table, seconds per stage). `serve_metrics` exposes the registry
over HTTP during a run; `write_textfile` writes the node-exporter textfile-collector format.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    start_http_server,
    write_to_textfile,
)
from prometheus_client.core import GaugeMetricFamily

from mmfs.pipelines.run import RunSummary
from mmfs.runners.hooks import BatchEvent, Observer, add_observer

# seconds a batch spends in one stage: from milliseconds (text) to minutes (long videos)
STAGE_BUCKETS = (0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 180.0, 600.0)


class RunMetrics(Observer):
    """The metrics of the runs made in this process, in a registry of their own."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        r = self.registry
        self.items = Counter("mmfs_items", "Source items by outcome", ["outcome"], registry=r)
        self.rows = Counter("mmfs_rows_written", "Rows written by table", ["table"], registry=r)
        self.bytes_read = Counter("mmfs_bytes_read", "Input bytes of the items processed", registry=r)
        self.stage_seconds = Counter(
            "mmfs_stage_seconds", "Seconds spent per stage (all items)", ["stage"], registry=r
        )
        self.batch_stage = Histogram(
            "mmfs_batch_stage_seconds",
            "Seconds one batch spent in a stage",
            ["stage"],
            buckets=STAGE_BUCKETS,
            registry=r,
        )
        self.pending = Gauge(
            "mmfs_items_pending", "Items planned and not yet committed (the run's queue)", registry=r
        )
        self.runs = Counter("mmfs_runs", "Runs finished", registry=r)
        self.run_seconds = Gauge("mmfs_last_run_seconds", "Wall time of the last run", registry=r)
        self.last_success = Gauge("mmfs_last_run_timestamp_seconds", "When the last run finished", registry=r)
        self.model_load = Gauge(
            "mmfs_model_load_seconds", "Seconds the last load of each encoder took", ["encoder"], registry=r
        )
        self.gpu_bytes = Gauge(
            "mmfs_gpu_memory_peak_bytes", "Peak CUDA memory allocated by torch", ["device"], registry=r
        )
        self._live = False  # batches seen live: the summary then adds only what they did not carry
        self._live_quarantined = 0
        self._live_rows: dict[str, int] = {}

    def items_planned(self, n_items: int) -> None:
        """The local runner's queue: items still to commit."""
        self.pending.set(n_items)

    def batch_done(self, event: BatchEvent) -> None:
        """One committed batch, as it happens (local runner)."""
        self._live = True
        tally = event.tally
        self._live_quarantined += tally.n_quarantined
        for table, n in event.written.items():
            self._live_rows[table] = self._live_rows.get(table, 0) + n
        self.items.labels("ok").inc(tally.n_ok - tally.n_degraded)
        self.items.labels("degraded").inc(tally.n_degraded)
        self.items.labels("quarantined").inc(tally.n_quarantined)
        for table, n in event.written.items():
            self.rows.labels(table).inc(n)
        self.bytes_read.inc(event.n_bytes)
        for stage, seconds in tally.stage_seconds.items():
            self.stage_seconds.labels(stage).inc(seconds)
            self.batch_stage.labels(stage).observe(seconds)
        self.pending.dec(event.n_items)
        self._gpu()
        self._model_loads()

    def run_done(self, summary: RunSummary, finished_at: float) -> None:
        """The end of a run: what the batches did not report (all of it under Ray or Beam)."""
        self.items.labels("skipped").inc(summary.n_skipped)
        self.items.labels("duplicate").inc(summary.n_duplicates)
        if not self._live:
            self.items.labels("ok").inc(summary.n_ok - summary.n_degraded)
            self.items.labels("degraded").inc(summary.n_degraded)
            self.items.labels("quarantined").inc(summary.n_quarantined)
            for table, n in summary.rows.items():
                self.rows.labels(table).inc(n)
            for stage, seconds in summary.stage_seconds.items():
                self.stage_seconds.labels(stage).inc(seconds)
        else:  # items unreadable before any batch are quarantined by the driver, outside the batches
            self.items.labels("quarantined").inc(max(0, summary.n_quarantined - self._live_quarantined))
            for table, n in summary.rows.items():
                self.rows.labels(table).inc(max(0, n - self._live_rows.get(table, 0)))
        self.pending.set(0)
        self.runs.inc()
        self.run_seconds.set(summary.seconds)
        self.last_success.set(finished_at)
        self._gpu()
        self._model_loads()
        self._live, self._live_quarantined, self._live_rows = False, 0, {}

    def _model_loads(self) -> None:
        """Load time of every encoder loaded in this process (the local runner loads them here)."""
        from mmfs.encoders.base import LOAD_SECONDS

        for name, seconds in LOAD_SECONDS.items():
            self.model_load.labels(name).set(seconds)

    def _gpu(self) -> None:
        """Peak torch CUDA memory per device, when torch is loaded and a GPU is present."""
        torch: Any = sys.modules.get("torch")
        if torch is None or not torch.cuda.is_available():
            return
        for index in range(torch.cuda.device_count()):
            self.gpu_bytes.labels(f"cuda:{index}").set(torch.cuda.max_memory_allocated(index))

    def watch_runs(self) -> Callable[[], None]:
        """Receive the batches of runs in this process; returns the function that stops it."""
        return add_observer(self)


def serve_metrics(metrics: RunMetrics, port: int, host: str = "127.0.0.1") -> None:
    """Expose the metrics at http://host:port/metrics for the life of the process (a daemon thread)."""
    start_http_server(port, addr=host, registry=metrics.registry)


def write_textfile(metrics: RunMetrics, path: str | Path) -> None:
    """Write the textfile-collector format (atomically: a temp file, then a rename)."""
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    write_to_textfile(str(path), metrics.registry)


class StoreCollector:
    """Scrape-time metrics of a store for `mmfs serve`: rows and versions per table, the last run's counts."""

    def __init__(self, store_uri: str) -> None:
        self.store_uri = store_uri

    def describe(self) -> list[Any]:
        """No fixed description: each scrape reads the store (keeps registration from reading it)."""
        return []

    def collect(self) -> Iterator[Any]:
        """Read the store now; a store that cannot be read yields only `mmfs_store_up 0`."""
        from mmfs.store.db import Store

        up = GaugeMetricFamily("mmfs_store_up", "Whether the store could be read")
        try:
            store = Store(self.store_uri)
            rows = GaugeMetricFamily("mmfs_table_rows", "Rows per table", labels=["table"])
            versions = GaugeMetricFamily("mmfs_table_version", "Current version per table", labels=["table"])
            for table, version in sorted(store.versions().items()):
                rows.add_metric([table], store.count(table))
                versions.add_metric([table], version)
            last = _last_run(store)
        except Exception:  # a scrape must answer even when the store is missing or mid-write
            up.add_metric([], 0)
            yield up
            return
        up.add_metric([], 1)
        yield from (up, rows, versions)
        if last is not None:
            items = GaugeMetricFamily(
                "mmfs_last_run_items", "Items of the last recorded run", labels=["outcome"]
            )
            for outcome in ("ok", "quarantined", "skipped"):
                items.add_metric([outcome], last[f"n_{outcome}"] or 0)
            ended = GaugeMetricFamily(
                "mmfs_last_run_end_timestamp_seconds", "When the last recorded run ended"
            )
            ended.add_metric([], last["ended_at"].timestamp() if last["ended_at"] else 0.0)
            yield from (items, ended)


def _last_run(store: Any) -> dict[str, Any] | None:
    """The `runs` row that ended last, or None."""
    if not store.has("runs") or not store.count("runs"):
        return None
    rows = store.read("runs", ["run_id", "ended_at", "n_ok", "n_quarantined", "n_skipped"]).to_pylist()
    return max(rows, key=lambda r: (r["ended_at"] is not None, r["ended_at"] or 0, r["run_id"]))


def store_registry(store_uri: str) -> CollectorRegistry:
    """A registry with the store's scrape-time metrics, for `mmfs serve`'s /metrics."""
    registry = CollectorRegistry()
    registry.register(StoreCollector(store_uri))  # type: ignore[arg-type]
    return registry
