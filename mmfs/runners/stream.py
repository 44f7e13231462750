"""A streaming executor: decode workers feed the encoder through a bounded queue, commits run behind.

Three callables make a run: `decode(item)` per item (worker threads), `encode(batch)` per batch (the
calling thread, where the models live) and `commit(result)` per encoded batch (one commit thread, so
the store sees one writer and the ledger order of each commit holds). Nothing here knows what an
item is, so any stage objects plug in.

The encoder takes a batch as soon as `batch_size` decoded items wait, or when the first of them has
waited `batch_wait_s`, or when decoding is over. Memory is bounded by design: a decode worker takes
an item only when one of `max_in_flight` slots is free, and a slot comes back once the item's batch
is encoded; encoded batches wait for the committer in a queue of `commit_queue`. So a slow encoder
stops the decoders, a slow store stops the encoder, and the input's length never sets the peak.

The first exception of any thread stops the run: every thread sees the stop at its next queue step,
the encoder thread re-raises that exception (its traceback is kept), and no thread is left waiting.
An item that was decoded but not committed has no ledger row, so the next run redoes it.
"""

from __future__ import annotations

import contextlib
import queue
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Generic, TypeVar

__all__ = ["StreamLimits", "StreamStats", "run_stream"]

T = TypeVar("T")  # an input item
D = TypeVar("D")  # a decoded item
R = TypeVar("R")  # an encoded batch

_TICK_S = 0.1  # how often a waiting thread looks at the stop flag (and the main thread sees Ctrl-C)
_STOP_WAIT_S = 2.0  # how long a stopping run waits for decodes under way before leaving them
_END = object()


@dataclass(frozen=True)
class StreamLimits:
    """The executor's bounds: decode threads, batch size and deadline, items and batches held."""

    workers: int
    batch_size: int
    batch_wait_s: float
    max_in_flight: int  # decoded items held at most: decoding, queued, or in the batch being encoded
    commit_queue: int = 2  # encoded batches waiting for the committer at most

    def __post_init__(self) -> None:
        if min(self.workers, self.batch_size, self.max_in_flight, self.commit_queue) < 1:
            raise ValueError(f"stream limits must all be >= 1: {self}")


@dataclass
class StreamStats:
    """What the executor did: items, batches (and how many the deadline cut short), most items held."""

    items: int = 0
    batches: int = 0
    deadline_batches: int = 0
    max_in_flight: int = 0
    in_flight_limit: int = 0  # the bound max_in_flight stays within (`StreamLimits.max_in_flight`)
    max_commit_backlog: int = 0  # encoded batches queued for the committer at most

    def as_dict(self) -> dict[str, int]:
        """JSON-able form (the run summary's `stream`)."""
        return dict(vars(self))


class _Stop(Exception):
    """Raised inside a waiting thread when the run is stopping (another thread failed)."""


class _Run(Generic[T, D, R]):
    """The shared state of one `run_stream` call: queues, slots, the stop flag, the first error."""

    def __init__(self, items: Sequence[T], limits: StreamLimits) -> None:
        self.items, self.limits = items, limits
        self.next_index = 0
        self.lock = threading.Lock()
        self.slots = threading.Semaphore(limits.max_in_flight)
        self.decoded: queue.Queue[object] = queue.Queue(maxsize=limits.max_in_flight + limits.workers)
        self.encoded: queue.Queue[object] = queue.Queue(maxsize=limits.commit_queue)
        self.stop = threading.Event()
        self.error: BaseException | None = None
        self.decoders_left = limits.workers
        self.decoded_all = threading.Event()
        self.in_flight = 0
        self.stats = StreamStats(in_flight_limit=limits.max_in_flight)

    def fail(self, err: BaseException) -> None:
        """Record the first error and tell every thread to stop."""
        with self.lock:
            if self.error is None:
                self.error = err
        self.stop.set()

    def take(self) -> tuple[int, T] | None:
        """A free slot and the next item, or None when the input is used up (or the run stops)."""
        while not self.slots.acquire(timeout=_TICK_S):
            if self.stop.is_set():
                return None
        with self.lock:
            if self.stop.is_set() or self.next_index >= len(self.items):
                self.slots.release()
                return None
            index = self.next_index
            self.next_index += 1
            self.in_flight += 1
            self.stats.max_in_flight = max(self.stats.max_in_flight, self.in_flight)
        return index, self.items[index]

    def release(self, n: int) -> None:
        """`n` items are encoded: their slots are free for the decoders."""
        with self.lock:
            self.in_flight -= n
        for _ in range(n):
            self.slots.release()

    def put(self, q: queue.Queue[object], value: object) -> None:
        """Put into a bounded queue, waiting for room unless the run stops meanwhile (raises _Stop)."""
        while True:
            if self.stop.is_set():
                raise _Stop
            try:
                q.put(value, timeout=_TICK_S)
                return
            except queue.Full:
                continue

    def get(self, q: queue.Queue[object], timeout: float | None) -> object | None:
        """The next value, or None once `timeout` passes (None: wait); raises _Stop when stopping."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            if self.stop.is_set():
                raise _Stop
            wait = _TICK_S if deadline is None else min(_TICK_S, deadline - time.monotonic())
            if wait <= 0:  # past the deadline: what is already there, else nothing
                try:
                    return q.get_nowait()
                except queue.Empty:
                    return None
            try:
                return q.get(timeout=wait)
            except queue.Empty:
                continue


def run_stream(
    items: Sequence[T],
    decode: Callable[[T], D],
    encode: Callable[[list[D]], R],
    commit: Callable[[R], None],
    limits: StreamLimits,
) -> StreamStats:
    """Decode every item, encode them in batches, commit each batch; returns what it did.

    `encode` runs in the calling thread (models, and Ctrl-C, stay there), `decode` in `limits.workers`
    threads, `commit` in one thread, in the order the batches were encoded. Items reach the encoder
    in the order their decoding ends. The first exception raised anywhere is raised here once every
    thread has stopped (a decode still running is left to finish on its own: its thread is a daemon).
    """
    run: _Run[T, D, R] = _Run(items, limits)
    decoders = [
        threading.Thread(target=_decode_loop, args=(run, decode), name=f"mmfs-stream-decode-{i}", daemon=True)
        for i in range(limits.workers)
    ]
    committer = threading.Thread(
        target=_commit_loop, args=(run, commit), name="mmfs-stream-commit", daemon=True
    )
    for thread in (*decoders, committer):
        thread.start()
    try:
        try:
            _encode_loop(run, encode)
            run.put(run.encoded, _END)
        except _Stop:  # another thread failed: its error is raised below
            pass
        _join(run, committer)
    except BaseException as err:  # the encoder failed, or Ctrl-C: stop the others, then re-raise
        run.fail(err)
        _join(run, committer)  # a commit under way completes (its ledger rows last); no new one starts
        _join_decoders(decoders, _STOP_WAIT_S)
        raise
    _join_decoders(decoders, _STOP_WAIT_S if run.error is not None else None)
    if run.error is not None:
        raise run.error
    return run.stats


def _join_decoders(decoders: list[threading.Thread], limit_s: float | None) -> None:
    """Wait for the decode threads; when stopping, at most `limit_s` (a decode under way cannot be
    cut short: its daemon thread ends with it, or with the process)."""
    end = None if limit_s is None else time.monotonic() + limit_s
    for thread in decoders:
        while thread.is_alive() and (end is None or time.monotonic() < end):
            thread.join(timeout=_TICK_S)


def _join(run: _Run[T, D, R], thread: threading.Thread) -> None:
    """Wait for a thread in short steps (Ctrl-C is seen between them)."""
    while thread.is_alive():
        thread.join(timeout=_TICK_S)


def _decode_loop(run: _Run[T, D, R], decode: Callable[[T], D]) -> None:
    """A decode worker: take a slot and an item, decode it, queue it; the last one out ends the queue."""
    try:
        while (taken := run.take()) is not None:
            _, item = taken
            run.put(run.decoded, decode(item))
    except _Stop:
        pass
    except BaseException as err:
        run.fail(err)
    finally:
        with run.lock:
            run.decoders_left -= 1
            last = run.decoders_left == 0
        if last:
            run.decoded_all.set()
            if not run.stop.is_set():
                with contextlib.suppress(_Stop):
                    run.put(run.decoded, _END)
        # Stay until every decoder is done: a decode process started from this thread (a replacement
        # after a crash) dies with it (PR_SET_PDEATHSIG follows the thread), and another may use it.
        while not (run.decoded_all.is_set() or run.stop.is_set()):
            run.decoded_all.wait(_TICK_S)


def _encode_loop(run: _Run[T, D, R], encode: Callable[[list[D]], R]) -> None:
    """Batch decoded items (full, deadline or end of input), encode each batch, queue it for commit."""
    limits = run.limits
    batch: list[D] = []
    deadline = 0.0
    done = False
    while not done:
        timeout = None if not batch else deadline - time.monotonic()
        value = run.get(run.decoded, timeout)  # None: the deadline passed with nothing more queued
        if value is _END:
            done = True
        elif value is not None:
            batch.append(value)  # type: ignore[arg-type]
            if len(batch) == 1:
                deadline = time.monotonic() + limits.batch_wait_s
        full = len(batch) >= limits.batch_size
        if batch and (full or done or value is None):
            result = encode(batch)
            n = len(batch)
            batch = []  # the decoded items can go once encoded
            run.release(n)
            with run.lock:
                run.stats.items += n
                run.stats.batches += 1
                run.stats.deadline_batches += not full and not done
            run.put(run.encoded, result)
            with run.lock:
                run.stats.max_commit_backlog = max(run.stats.max_commit_backlog, run.encoded.qsize())


def _commit_loop(run: _Run[T, D, R], commit: Callable[[R], None]) -> None:
    """The committer: one encoded batch at a time, in order, until the end marker or a stop."""
    try:
        while (value := run.get(run.encoded, None)) is not _END:
            commit(value)  # type: ignore[arg-type]
    except _Stop:
        pass
    except BaseException as err:
        run.fail(err)
