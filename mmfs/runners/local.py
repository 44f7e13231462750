"""The local runner: the run's items through the streaming executor (`stream.py`), in this process.

Decode is `extract` in threads (or in isolated decode processes, `runner.isolate_decode`), encode is
`build_batch` in this thread, commit is the `Committer` on the executor's commit thread (the staged
write path of Ray and Beam: rows staged as data files, then one commit per table); the thread
budget (`budget.py`) sizes the decoders and torch, a decoder with nothing to decode lends its core to
the encoders (`encoders.execution.lending_cpus`: whole chunks side by side), and the encoders load
beside the first decodes (`warm.py`). Exactly-once is the committer's: the `media` ledger rows of a
commit go last, and items not committed when a run dies have none, so the next run redoes them.
"""

from __future__ import annotations

import contextlib
import functools
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from mmfs.config import PipelineConfig
from mmfs.encoders.execution import lending_cpus
from mmfs.runners import allocator, hooks
from mmfs.runners.budget import ThreadBudget, thread_budget
from mmfs.runners.progress import Progress
from mmfs.runners.stream import StreamLimits, StreamStats, run_stream
from mmfs.runners.warm import AUDIO_SUFFIXES, VIDEO_SUFFIXES, Warmup, likely_needs
from mmfs.stages.batch import BatchJob, BatchResult, BatchTally, add_counts, build_batch
from mmfs.stages.commit import Committer
from mmfs.stages.decode_pool import AUDIO_DECODERS, FLOW_DECODER, FRAME_DECODER, DecodePool
from mmfs.stages.encode import Enricher
from mmfs.stages.items import Extracted, PendingItem
from mmfs.store.db import Store


@dataclass
class _Encoded:
    """An encoded batch on its way to the committer, with what the observers are told about it."""

    result: BatchResult
    n_items: int
    n_bytes: int


class DecodesUnderWay:
    """How many decodes are running now: the decode workers' cores that are not idle."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.count = 0

    def wrap(self, decode: Callable[[PendingItem], Extracted]) -> Callable[[PendingItem], Extracted]:
        """`decode`, counted while it runs."""

        def counted(item: PendingItem) -> Extracted:
            with self._lock:
                self.count += 1
            try:
                return decode(item)
            finally:
                with self._lock:
                    self.count -= 1

        return counted

    def idle(self, workers: int) -> int:
        """Workers of `workers` with nothing to decode now (waiting for a slot, or done)."""
        return max(0, workers - self.count)


@dataclass
class LocalOutcome:
    """What the local runner did: outcomes, rows written per table, its thread budget and stream stats
    (the executor's, and the committer's: commits, early-staged parts, most row bytes held)."""

    tally: BatchTally
    written: dict[str, int]
    budget: ThreadBudget
    stats: StreamStats
    commit: dict[str, int]


def stream_limits(cfg: PipelineConfig, budget: ThreadBudget) -> StreamLimits:
    """The executor's bounds for this config: `runner.queue_media` items held (default two batches
    plus one per decoder, so the decoders fill the next batch while the encoders run this one)."""
    r = cfg.runner
    held = r.queue_media if r.queue_media is not None else 2 * r.batch_media + budget.decode
    return StreamLimits(
        workers=budget.decode, batch_size=r.batch_media, batch_wait_s=r.batch_wait_s, max_in_flight=held
    )


def decoder_preload(todo: list[PendingItem], cfg: PipelineConfig) -> tuple[str, ...]:
    """The decoders' modules the items will likely need (guessed from their names, as warm.py does),
    imported when each decode worker starts rather than inside its first such item's time budget; a
    worker of photos and notes imports none of them. A wrong guess costs only time."""
    suffixes = {p.item.path.suffix.lower() for p in todo}
    video, audio = bool(suffixes & VIDEO_SUFFIXES), bool(suffixes & AUDIO_SUFFIXES)
    modules = [FRAME_DECODER] if video else []
    if video and cfg.flow.enabled:
        modules.append(FLOW_DECODER)
    if audio or (video and cfg.video.audio):
        modules += AUDIO_DECODERS
    return tuple(modules)


def execute_local(todo: list[PendingItem], job: BatchJob, store: Store, progress: Progress) -> LocalOutcome:
    """Decode, embed and commit `todo` with the streaming executor; the last buffered rows committed."""
    cfg = job.cfg
    budget = thread_budget(cfg)
    encoder_cfg = cfg.model_copy(
        update={"encoders": cfg.encoders.model_copy(update={"threads": budget.torch})}
    )
    warm = Warmup(lambda: Enricher(encoder_cfg), likely_needs(todo, cfg))
    tally, written = BatchTally(), dict[str, int]()
    trim = allocator.Trimmer()
    committer = Committer(
        store,
        cfg.runner.commit_rows,
        cfg.runner.commit_seconds,
        run_id=job.run_id,
        max_bytes=cfg.runner.commit_bytes,
        stage_bytes=cfg.runner.stage_bytes,
    )

    def encode(batch: list[Extracted]) -> _Encoded:
        live = any(not ex.failed for ex in batch)  # a batch of failed items needs no model
        result = build_batch(batch, warm.enricher() if live else None, job)
        return _Encoded(result, len(batch), sum(ex.pending.n_bytes for ex in batch))

    def commit(done: _Encoded) -> None:
        t0 = time.perf_counter()
        committed = committer.add(done.result)  # rows written when a commit happened, else {}
        add_counts(written, committed)
        done.result.tally.add_seconds("write", time.perf_counter() - t0)
        tally.merge(done.result.tally)
        trim()  # freed activations, rows and write buffers back to the system, every few batches
        hooks.batch_done(hooks.BatchEvent(done.n_items, done.n_bytes, done.result.tally, committed))
        progress.advance(done.n_items)

    with contextlib.ExitStack() as stack:
        decode: Callable[[PendingItem], Extracted]
        if cfg.runner.isolate_decode:  # the decoders' libraries load in the workers, not here
            pool = DecodePool(cfg, budget.decode, decoder_preload(todo, cfg))
            decode = stack.enter_context(pool).extract
        else:
            from mmfs.stages.decode import extract

            decode = functools.partial(extract, cfg=cfg)
        under_way = DecodesUnderWay()
        stack.enter_context(lending_cpus(lambda: under_way.idle(budget.decode), budget.decode))
        stats = run_stream(todo, under_way.wrap(decode), encode, commit, stream_limits(cfg, budget))
    t0 = time.perf_counter()
    flushed = committer.flush()
    add_counts(written, flushed)
    last = BatchTally()  # the last commit: its rows and its time, for the observers too
    last.add_seconds("write", time.perf_counter() - t0)
    tally.merge(last)
    hooks.batch_done(hooks.BatchEvent(0, 0, last, flushed))
    held = {"commits": committer.commits, "staged_parts": committer.stages}
    held["max_held_row_bytes"] = committer.max_held_bytes
    return LocalOutcome(tally, written, budget, stats, held)
