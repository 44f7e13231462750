"""The Ray runner: Ray Data decodes items in tasks, an actor pool runs the encoders, the driver commits.

Decode and transforms run as `map_batches` tasks, one item each. A task whose worker process dies is
retried by Ray (3 times, Ray's default); a decode error is data, returned as a failure inside the
result and never retried. Encoders run in an actor pool, one
model load per actor, with a GPU each when CUDA is present. Each actor turns a batch into Arrow rows
per table; the driver merge-inserts every batch as it streams back, data tables first and the media
ledger last. One committer is deliberate: it keeps the ledger order that makes runs resumable,
never races itself into commit conflicts, and costs little beside decoding and models (the rows of
a batch are a few MB). Starts a local Ray unless `runner.address` names a cluster.
"""

from __future__ import annotations

import contextlib
import logging
import os
import pickle
import time
import warnings
from collections.abc import Iterator
from typing import Any

import numpy as np

from mmfs.config import PipelineConfig, RunnerConfig
from mmfs.errors import ConfigError
from mmfs.runners.budget import thread_budget
from mmfs.runners.progress import Progress
from mmfs.stages.batch import (
    BatchJob,
    BatchResult,
    BatchTally,
    add_counts,
    build_batch,
    commit_batch,
    pending_from_row,
    pending_to_row,
)
from mmfs.stages.decode_pool import extract_item
from mmfs.stages.encode import Enricher
from mmfs.stages.items import PendingItem
from mmfs.store.db import Store

log = logging.getLogger(__name__)


def execute_ray(
    todo: list[PendingItem], job: BatchJob, store: Store, progress: Progress
) -> tuple[BatchTally, dict[str, int]]:
    """Run the items through Ray Data and commit each batch from the driver as it arrives."""
    ray = _import_ray()
    with _quiet_ray_warnings():
        started_here = _ensure_ray(ray, job.cfg.runner)
        try:
            tally, written = BatchTally(), dict[str, int]()
            for row in _dataset(ray, todo, job).iter_rows():
                result = BatchResult.from_row(row)
                t0 = time.perf_counter()
                add_counts(written, commit_batch(store, result))
                result.tally.add_seconds("write", time.perf_counter() - t0)
                tally.merge(result.tally)
                progress.advance(result.n_items)
            return tally, written
        finally:
            if started_here:
                ray.shutdown()


@contextlib.contextmanager
def _quiet_ray_warnings() -> Iterator[None]:
    """Silence warnings that do not apply to how mmfs uses Ray.

    Ray starts its processes with fork+exec: the child execs at once and never touches the lance
    runtime that lance's fork hooks warn about. Ray's own deprecations are Ray's to fix.
    """
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="lancedb fork support", category=RuntimeWarning)
        warnings.filterwarnings("ignore", message="lance is not fork-safe", category=UserWarning)
        warnings.filterwarnings("ignore", category=DeprecationWarning, module="ray")
        yield


def _import_ray() -> Any:
    try:
        import ray
        import ray.data
    except ImportError as err:
        raise ConfigError("runner 'ray' needs Ray: pip install 'mmfs[ray]'") from err
    return ray


def _ensure_ray(ray: Any, runner: RunnerConfig) -> bool:
    """Connect to `runner.address`, or start a local Ray; True when this call started it.

    A local Ray gets at least one logical CPU per encoder actor plus one for decode tasks: actors
    hold their CPU for the whole run, and with fewer slots the decode tasks would never be scheduled.
    """
    if ray.is_initialized():
        return False
    kwargs: dict[str, Any] = {"logging_level": logging.WARNING, "log_to_driver": False}
    if runner.address:
        ray.init(address=runner.address, runtime_env={"env_vars": _worker_env()}, **kwargs)
    else:
        # Workers run this interpreter, so a local Ray sees the same installed mmfs as the driver.
        cpus = max(os.cpu_count() or 1, runner.encoder_actors + 1)
        ray.init(num_cpus=cpus, include_dashboard=False, runtime_env={"env_vars": _worker_env()}, **kwargs)
    ray.data.DataContext.get_current().enable_progress_bars = False  # mmfs prints its own progress
    return True


def _worker_env() -> dict[str, str]:
    """Environment variables workers need to behave like the driver (offline hubs, fault hooks)."""
    keys = ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "MMFS_FAULT", "OMP_NUM_THREADS")
    return {k: os.environ[k] for k in keys if k in os.environ}


def _decode_tasks(cfg: PipelineConfig) -> int:
    """Decode tasks at a time: `runner.workers`, else the thread budget's decoders of this machine, at
    least 2 (with one, Ray fuses the decode tasks into the encoder actors: decoding stops overlapping)."""
    return cfg.runner.workers if cfg.runner.workers is not None else max(2, thread_budget(cfg).decode)


def _dataset(ray: Any, todo: list[PendingItem], job: BatchJob) -> Any:
    """The Ray Data plan: items → decode tasks → encoder actor pool → one row per committed batch."""
    runner = job.cfg.runner
    gpus = runner.gpus_per_actor if runner.gpus_per_actor is not None else _default_gpus()
    items = ray.data.from_items([pending_to_row(p) for p in todo], override_num_blocks=len(todo))
    decoded = items.map_batches(
        _decode_batch,
        fn_kwargs={"job": job},
        batch_size=1,
        batch_format="pyarrow",
        num_cpus=1,
        # Ray retries a task whose worker died
        compute=ray.data.TaskPoolStrategy(size=_decode_tasks(job.cfg)),
    )
    return decoded.map_batches(
        _EncodeActor,
        fn_constructor_kwargs={"job": job},
        batch_size=runner.batch_media,
        batch_format="numpy",
        num_cpus=1,
        num_gpus=gpus,
        compute=ray.data.ActorPoolStrategy(size=runner.encoder_actors),  # restarted when they die
    )


def _default_gpus() -> float:
    """One GPU per encoder actor when the driver sees CUDA (a cluster's GPU nodes set it explicitly)."""
    import torch

    return 1.0 if torch.cuda.is_available() else 0.0


def _decode_batch(batch: Any, job: BatchJob) -> dict[str, list[Any]]:
    """Ray task: decode and transform items (errors become failures inside the result, not raises)."""
    out: list[bytes] = []
    for row in batch.to_pylist():
        ex = extract_item(pending_from_row(row), job.cfg)
        # Pickle crosses between this run's own workers only: trusted bytes, never user input.
        out.append(pickle.dumps(ex, protocol=pickle.HIGHEST_PROTOCOL))
    return {"extracted": out}


class _EncodeActor:
    """Ray actor: holds the encoders (loaded once) and turns a batch of decoded items into rows."""

    def __init__(self, job: BatchJob) -> None:
        self.job = job
        self.enricher = Enricher(job.cfg)

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, list[Any]]:
        extracted = [pickle.loads(blob) for blob in batch["extracted"]]
        live = [ex for ex in extracted if not ex.failed]
        result = build_batch(extracted, self.enricher if live else None, self.job)
        return {name: [value] for name, value in result.to_row().items()}
