"""The cluster write path of `bench_scale.py`: rows to one committer, or fragments by the workers.

Workers (Ray tasks, or Beam DoFns under `--direct_running_mode=multi_processing`) build synthetic
batches laid out as `bench_scale.batch_rows` lays them out, then either send the batch's rows to the
committer as Arrow IPC (`rows`: the path before, `batch.Committer` → `commit_batch`) or write them
into the store as uncommitted Lance data files and send their metadata (`staged`: the path now,
`staged.StagedCommitter`). Measured at the committer: bytes received per batch, commit seconds per
batch (the committer's own time), commits made. Under Ray a two-node cluster on this machine
(`ray.cluster_utils.Cluster`: a head and a second node with a `node2` resource, tasks pinned to it)
shows that the files are written on the second node while the driver commits.
"""

from __future__ import annotations

import os
import tempfile
import time
import warnings
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from mmfs.config import PipelineConfig
from mmfs.schemas import Dims, all_schemas
from mmfs.stages.batch import BatchResult
from mmfs.stages.commit import Committer
from mmfs.stages.staged import StagedBatch, StagedCommitter, row_size, stage_batch
from mmfs.store.db import Store

MODES = ("rows", "staged")
# Beam's process workers start by fork+exec: the child execs at once, lance's fork hook need not warn
warnings.filterwarnings("ignore", message="lancedb fork support", category=RuntimeWarning)


DIMS = Dims(image=1280, text=384, audio=64)  # EfficientNet-Lite0 and MiniLM widths: real row sizes


def synthetic_batch(index: int, items: int, frames: int) -> BatchResult:
    """Batch `index`: `items` items with `frames` frame rows and one segment each (bench layout)."""
    from bench_scale import batch_rows

    cfg = PipelineConfig()
    pending = [
        SimpleNamespace(
            media_id=f"b{index:06d}-{i:04d}",
            item=SimpleNamespace(uri=f"file:///bench/{index}/{i}"),
            uris=[f"file:///bench/{index}/{i}"],
            n_bytes=10,
        )
        for i in range(items)
    ]
    return batch_rows(pending, cfg, all_schemas(DIMS), frames, {}, DIMS)


def worker_row(store_uri: str, index: int, items: int, frames: int, mode: str) -> dict[str, Any]:
    """What a worker sends on for one batch: its rows (`rows`) or its staged metadata (`staged`)."""
    result = synthetic_batch(index, items, frames)
    if mode == "rows":
        return result.to_row()
    return stage_batch(Store(store_uri), result, "bench-cluster").to_row()


class Meter:
    """The committer's side of one mode: bytes received, commit seconds, commits."""

    def __init__(self, store: Store, mode: str, cfg: PipelineConfig) -> None:
        self.mode, self.batches, self.bytes_in, self.seconds = mode, 0, 0, 0.0
        cls = Committer if mode == "rows" else StagedCommitter
        self.committer = cls(store, cfg.runner.commit_rows, cfg.runner.commit_seconds)

    def add(self, row: dict[str, Any]) -> None:
        """Receive one batch's row and hand it to the committer."""
        self.batches += 1
        self.bytes_in += row_size(row)
        t0 = time.perf_counter()
        if self.mode == "rows":
            self.committer.add(BatchResult.from_row(row))  # type: ignore[arg-type]
        else:
            self.committer.add(StagedBatch.from_row(row))  # type: ignore[arg-type]
        self.seconds += time.perf_counter() - t0

    def finish(self, wall_s: float) -> dict[str, Any]:
        """Flush, and the figures per batch."""
        t0 = time.perf_counter()
        self.committer.flush()
        self.seconds += time.perf_counter() - t0
        n = max(1, self.batches)
        return {
            "mode": self.mode,
            "batches": self.batches,
            "driver_kb_per_batch": round(self.bytes_in / n / 1024, 1),
            "commit_ms_per_batch": round(self.seconds * 1000 / n, 2),
            "commits": self.committer.commits,
            "wall_s": round(wall_s, 2),
        }


def fresh_store(root: Path, name: str) -> Store:
    """An empty store with the bench's tables."""
    store = Store(root / name)
    store.ensure_tables(all_schemas(DIMS))
    return store


def ray_compare(batches: int, items: int, frames: int, two_nodes: bool) -> list[dict[str, Any]]:
    """Both modes under Ray (2 worker CPUs): tasks build and send, the driver commits."""
    import ray

    bench_dir = str(Path(__file__).resolve().parent)
    env = {"env_vars": {"PYTHONPATH": os.pathsep.join([bench_dir, str(Path(bench_dir).parent)])}}
    cluster = None
    if two_nodes:
        from ray.cluster_utils import Cluster

        cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 1})
        cluster.add_node(num_cpus=2, resources={"node2": 2})
        ray.init(address=cluster.address, runtime_env=env, logging_level="WARNING", log_to_driver=False)
    else:
        ray.init(
            num_cpus=2, include_dashboard=False, runtime_env=env, logging_level="WARNING", log_to_driver=False
        )
    driver_node = ray.get_runtime_context().get_node_id()
    task = ray.remote(num_cpus=1, resources={"node2": 1} if two_nodes else None)(_ray_task)
    warm = ray.remote(num_cpus=1, resources={"node2": 1} if two_nodes else None)(_ray_warm)
    ray.get([warm.remote() for _ in range(4)])  # worker processes started and imports done: not timed
    out = []
    try:
        with tempfile.TemporaryDirectory(prefix="bench-cluster-") as tmp:
            for mode in MODES:
                store = fresh_store(Path(tmp), f"ray-{mode}")
                meter = Meter(store, mode, PipelineConfig())
                t0 = time.perf_counter()
                refs = [task.remote(store.uri, i, items, frames, mode) for i in range(batches)]
                nodes = set()
                while refs:
                    done, refs = ray.wait(refs, num_returns=1)
                    node, row = ray.get(done[0])
                    nodes.add(node)
                    meter.add(row)
                figures = meter.finish(time.perf_counter() - t0)
                figures["rows"] = store.count("frames")
                figures["runner"] = "ray, two nodes" if two_nodes else "ray, local (2 CPUs)"
                figures["writer_nodes_other_than_driver"] = len(nodes - {driver_node})
                out.append(figures)
    finally:
        ray.shutdown()
        if cluster is not None:
            cluster.shutdown()
    return out


def _ray_warm() -> bool:
    """Ray task: import what the batch tasks import."""
    import bench_scale  # noqa: F401

    return True


def _ray_task(store_uri: str, index: int, items: int, frames: int, mode: str) -> tuple[str, dict[str, Any]]:
    """Ray task: one batch built (and written, when staged) on whichever node runs it."""
    import ray

    return ray.get_runtime_context().get_node_id(), worker_row(store_uri, index, items, frames, mode)


def beam_compare(batches: int, items: int, frames: int) -> list[dict[str, Any]]:
    """Both modes under Beam's FnApiRunner with 2 worker processes; one keyed committer."""
    import apache_beam as beam
    from apache_beam.options.pipeline_options import PipelineOptions

    out = []
    with tempfile.TemporaryDirectory(prefix="bench-cluster-") as tmp:
        for mode in MODES:
            store = fresh_store(Path(tmp), f"beam-{mode}")
            options = PipelineOptions(
                ["--runner=FnApiRunner", "--direct_running_mode=multi_processing", "--direct_num_workers=2"]
            )
            t0 = time.perf_counter()
            with beam.Pipeline(options=options) as p:
                _ = (
                    p
                    | beam.Create(list(range(batches)))
                    | beam.Reshuffle()
                    | beam.Map(_beam_row, store.uri, items, frames, mode)
                    | beam.Map(lambda row: (0, row))
                    | beam.GroupByKey()
                    | beam.ParDo(_BeamCommit(store.uri, mode))
                )
            wall = time.perf_counter() - t0
            figures = _beam_figures(p.result if hasattr(p, "result") else None)
            figures |= {"mode": mode, "rows": Store(store.uri).count("frames"), "wall_s": round(wall, 2)}
            figures["runner"] = "beam, multi_processing x2"
            out.append(figures)
    return out


def _beam_row(index: int, store_uri: str, items: int, frames: int, mode: str) -> dict[str, Any]:
    """Beam map: one batch built (and written, when staged) in whichever worker process runs it."""
    return worker_row(store_uri, index, items, frames, mode)


class _BeamCommit(__import__("apache_beam").DoFn):  # type: ignore[misc]
    """The one committer of the Beam comparison; reports through Beam counters."""

    def __init__(self, store_uri: str, mode: str) -> None:
        super().__init__()
        self.store_uri, self.mode = store_uri, mode

    def process(self, keyed: tuple[int, Any]) -> Any:
        from apache_beam.metrics import Metrics

        meter = Meter(Store(self.store_uri), self.mode, PipelineConfig())
        for row in keyed[1]:
            meter.add(row)
        figures = meter.finish(0.0)
        Metrics.counter("bench", "batches").inc(figures["batches"])
        Metrics.counter("bench", "bytes_in").inc(meter.bytes_in)
        Metrics.counter("bench", "commit_us").inc(round(meter.seconds * 1e6))
        Metrics.counter("bench", "commits").inc(figures["commits"])
        yield from ()


def _beam_figures(result: Any) -> dict[str, Any]:
    """Per-batch figures from the committer's counters."""
    if result is None:
        return {}
    counters = {
        c.key.metric.name: int(c.committed or c.attempted) for c in result.metrics().query()["counters"]
    }
    n = max(1, counters.get("batches", 0))
    return {
        "batches": counters.get("batches", 0),
        "driver_kb_per_batch": round(counters.get("bytes_in", 0) / n / 1024, 1),
        "commit_ms_per_batch": round(counters.get("commit_us", 0) / 1000 / n, 2),
        "commits": counters.get("commits", 0),
    }
