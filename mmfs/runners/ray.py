"""The Ray runner: Ray Data decodes items in tasks, an actor pool embeds and writes, the driver commits.

Decode and transforms run as `map_batches` tasks, one item each. A task whose worker process dies is
retried by Ray (3 times, Ray's default); a decode error is data, returned as a failure inside the
result and never retried. Encoders run in an actor pool, one model load per actor, with a GPU each
when CUDA is present. Each actor turns a batch into rows and writes the data-table rows into the
store itself as uncommitted Lance data files (`stages/staged.py`); only fragment metadata, key
columns, the small `quarantine` and `media` rows and the tally travel to the driver. The driver's
one `StagedCommitter` lands many batches per table in one commit, data tables first and the media
ledger last: one committer keeps the ledger order that makes runs resumable and never races itself
into commit conflicts, and it now handles kilobytes per batch, not the batch's rows. A batch whose
actor died after writing its files is redone by Ray; the files it left are orphans that
`mmfs maintain` removes (`store.fragments`). Starts a local Ray unless `runner.address` names a
cluster; the workers must reach the store's path (a shared filesystem or object storage).
"""

from __future__ import annotations

import contextlib
import logging
import os
import pickle
import time
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np

from mmfs.config import PipelineConfig, RunnerConfig
from mmfs.errors import ConfigError
from mmfs.runners.budget import thread_budget
from mmfs.runners.progress import Progress
from mmfs.stages.batch import (
    BatchJob,
    BatchTally,
    add_counts,
    build_batch,
    pending_from_row,
    pending_to_row,
)
from mmfs.stages.decode_pool import extract_item
from mmfs.stages.encode import Enricher
from mmfs.stages.items import PendingItem
from mmfs.stages.path import data_path
from mmfs.stages.staged import StagedBatch, StagedCommitter, row_size, stage_batch, stages_on_workers
from mmfs.store.db import Store
from mmfs.store.fragments import close_run

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Transfer:
    """What one batch sent to the driver, beside the Arrow bytes of the rows it built."""

    driver_bytes: int
    row_bytes: int


# The last run's transfers, one per batch, in arrival order: benchmarks and tests read it.
TRANSFERS: list[Transfer] = []


def execute_ray(
    todo: list[PendingItem], job: BatchJob, store: Store, progress: Progress
) -> tuple[BatchTally, dict[str, int]]:
    """Run the items through Ray Data; the driver commits the staged batches as they arrive."""
    ray = _import_ray()
    runner = job.cfg.runner
    stage = stages_on_workers(store)
    with _quiet_ray_warnings():
        start_ray(runner)
        try:
            tally, written = BatchTally(), dict[str, int]()
            committer = StagedCommitter(store, runner.commit_rows, runner.commit_seconds)
            TRANSFERS.clear()
            for row in _dataset(ray, todo, job, stage).iter_rows():
                batch = StagedBatch.from_row(row)
                TRANSFERS.append(Transfer(driver_bytes=row_size(row), row_bytes=batch.row_bytes))
                t0 = time.perf_counter()
                add_counts(written, committer.add(batch))
                batch.tally.add_seconds("write", time.perf_counter() - t0)
                tally.merge(batch.tally)
                progress.advance(batch.n_items)
            t0 = time.perf_counter()
            add_counts(written, committer.flush())
            close_run(store, job.run_id)
            tally.add_seconds("write", time.perf_counter() - t0)
            log.info("ray: %d commits in %.2f s", committer.commits, committer.commit_seconds)
            return tally, written
        finally:
            release_ray()


def hash_on_ray(
    chunks: list[list[dict[str, Any]]], cfg: PipelineConfig, done: Callable[[int], None] | None = None
) -> list[dict[str, Any]]:
    """Hash the plan's new files in Ray tasks, one chunk of rows each (`identify.hash_chunk`): the
    driver sends paths and gets ids, stats and errors back, in the chunks' order, and reads no file.

    Starts Ray like a run does (it stays up for the run's execution; `release_ray` stops it).
    """
    from mmfs.stages.hash_files import hash_chunk

    ray = _import_ray()
    with _quiet_ray_warnings():
        start_ray(cfg.runner)
        task = ray.remote(num_cpus=1, max_retries=3)(hash_chunk)  # a dead worker's chunk is hashed again
        config = ray.put(cfg)
        refs = [task.remote(chunk, config) for chunk in chunks]
        out = []
        for chunk, ref in zip(chunks, refs, strict=True):
            out.append(ray.get(ref))
            if done is not None:
                done(len(chunk))  # files hashed so far, in order: the plan's progress bar
        return out


_OWNED: list[bool] = []  # holds True while a Ray that this module started is up


def start_ray(runner: RunnerConfig) -> None:
    """Connect to or start Ray (`_ensure_ray`), remembering whether this started it, so that
    `release_ray` stops only that one."""
    with _quiet_ray_warnings():
        if _ensure_ray(_import_ray(), runner):
            _OWNED.append(True)


def release_ray() -> None:
    """Stop the Ray that hashing or a run started here (one a caller started stays up)."""
    if _OWNED:
        _OWNED.clear()
        import ray

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


def _dataset(ray: Any, todo: list[PendingItem], job: BatchJob, stage: bool) -> Any:
    """The Ray Data plan: items → decode tasks → encoder actor pool (which writes) → one row a batch."""
    runner = job.cfg.runner
    gpus = runner.gpus_per_actor if runner.gpus_per_actor is not None else _default_gpus()
    path = data_path(job.cfg, gpus=gpus)  # what each kind of worker holds: read from the stages
    items = ray.data.from_items([pending_to_row(p) for p in todo], override_num_blocks=len(todo))
    decoded = items.map_batches(
        _decode_batch,
        fn_kwargs={"job": job},
        batch_size=1,
        batch_format="pyarrow",
        num_cpus=path.decode.cpus,
        # Ray retries a task whose worker died
        compute=ray.data.TaskPoolStrategy(size=_decode_tasks(job.cfg)),
    )
    return decoded.map_batches(
        _EncodeActor,
        fn_constructor_kwargs={"job": job, "stage": stage},
        batch_size=path.batch_size,
        batch_format="numpy",
        num_cpus=path.encode.cpus,
        num_gpus=path.encode.gpus,
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
    """Ray actor: holds the encoders (loaded once), turns a batch into rows and writes them."""

    def __init__(self, job: BatchJob, stage: bool) -> None:
        self.job, self.stage = job, stage
        self.enricher = Enricher(job.cfg)
        self.store = Store(str(job.store_uri), storage_options=job.cfg.store.storage_options)

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, list[Any]]:
        extracted = [pickle.loads(blob) for blob in batch["extracted"]]
        live = [ex for ex in extracted if not ex.failed]
        result = build_batch(extracted, self.enricher if live else None, self.job)
        staged = stage_batch(self.store, result, self.job.run_id, stage=self.stage)
        return {name: [value] for name, value in staged.to_row().items()}
