"""How encoders run on the hardware they get: batch sizes, CPU threads, CUDA autocast, a prefetch queue,
and lanes on CPUs that the decoders leave idle.

Kept apart from the encoder contract so every encoder gets the same speed habits: the CPU stage of a
chunk (decoding-side preprocessing, tokenising) runs in one background thread while the model works
on the previous chunk (a bounded queue, so memory stays at `depth` chunks ahead), and on CUDA the
forward runs under bf16 (or fp16) autocast with channels-last inputs and pinned host memory.

Lanes: a runner that gave some cores to decoders says how many of them are idle right now
(`lending_cpus`); an encoder that allows it then runs that many more chunks side by side, one
thread each with torch's own intra-op threads (one on a small machine), so the cores a finished
decoder leaves do encoder work. Whole chunks in parallel share no OpenMP barrier: unlike more
intra-op threads, a descheduled lane slows only its own chunk.
"""

from __future__ import annotations

import contextlib
import os
import queue
import sys
import threading
from collections.abc import Callable, Iterator, Sequence
from typing import Any, TypeVar

T = TypeVar("T")
P = TypeVar("P")

_DONE = object()
_LANE_POLL_S = 0.05  # how often a waiting lane looks whether a CPU was lent to it

_lent: tuple[Callable[[], int], int] | None = None  # set by `lending_cpus` (the local runner)


def available_cpus() -> int:
    """CPUs this process may run on (its affinity mask, not the machine's count)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def apply_cpu_threads(threads: int | None) -> int:
    """Give torch exactly `threads` intra-op threads (None: the CPUs this process may use); returns it."""
    import torch

    n = threads if threads is not None else available_cpus()
    if torch.get_num_threads() != n:
        torch.set_num_threads(n)
    return n


def apply_blas_threads(threads: int | None) -> int:
    """Give BLAS (NumPy's products, for the NumPy engines) `threads` threads (None: the CPUs this process
    may use); returns it. Small products per step (an LSTM's) on more threads than the budget only wait
    on each other, and the decoders own the other cores."""
    from threadpoolctl import threadpool_limits

    n = threads if threads is not None else available_cpus()
    threadpool_limits(limits=n, user_api="blas")
    return n


@contextlib.contextmanager
def lending_cpus(spare: Callable[[], int], at_most: int) -> Iterator[None]:
    """While inside, `spare()` says how many CPUs beside the encoders' own are idle right now (decoders
    with nothing to decode; never more than `at_most`): encoders that allow lanes use them."""
    global _lent
    previous, _lent = _lent, (spare, at_most)
    try:
        yield
    finally:
        _lent = previous


def spare_cpus() -> int:
    """CPUs lent to the encoders right now (0 outside `lending_cpus`)."""
    lent = _lent
    return min(lent[1], max(0, lent[0]())) if lent is not None else 0


def lendable_cpus() -> int:
    """The most CPUs that may be lent to the encoders during this run (0 outside `lending_cpus`)."""
    lent = _lent
    return lent[1] if lent is not None else 0


def autocast(device: str, enabled: bool = True) -> contextlib.AbstractContextManager[Any]:
    """bf16 autocast on a CUDA device that supports it, fp16 on older ones; a no-op on the CPU."""
    if not enabled or not device.startswith("cuda"):
        return contextlib.nullcontext()
    import torch

    dtype = torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    return torch.autocast("cuda", dtype=dtype)


def chunks(batch: Sequence[Any], size: int) -> list[tuple[int, Sequence[Any]]]:
    """(start, slice) of `batch` in pieces of at most `size`."""
    return [(start, batch[start : start + size]) for start in range(0, len(batch), size)]


def prefetched(
    parts: list[tuple[int, Sequence[Any]]], prepare: Callable[[Sequence[Any]], P], depth: int
) -> Iterator[tuple[int, Sequence[Any], P | BaseException]]:
    """(start, chunk, prepare(chunk)) in order, prepared up to `depth` chunks ahead in one thread.

    An exception from `prepare` is yielded in place of its result (the consumer raises it with the
    chunk's position); stopping early (the consumer raised) ends the thread at its next put.
    """
    if depth < 1 or len(parts) < 2:
        for start, chunk in parts:
            yield start, chunk, _call(prepare, chunk)
        return
    ready: queue.Queue[Any] = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def put(item: Any) -> bool:
        while not stop.is_set():
            try:
                ready.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def work() -> None:
        for start, chunk in parts:
            if not put((start, chunk, _call(prepare, chunk))):
                return
        put(_DONE)

    thread = threading.Thread(target=work, name="mmfs-encoder-prefetch", daemon=True)
    thread.start()
    try:
        while (item := ready.get()) is not _DONE:
            yield item
    finally:
        stop.set()
        thread.join()


def _call(fn: Callable[[Sequence[Any]], P], chunk: Sequence[Any]) -> P | BaseException:
    """fn(chunk), or the exception it raised (carried to the consumer's thread); under torch's
    inference mode when torch is loaded (a torch-free encoder's chunks do not import it)."""
    try:
        torch = sys.modules.get("torch")
        if torch is None:
            return fn(chunk)
        with torch.inference_mode():
            return fn(chunk)
    except Exception as err:  # re-raised by the consumer, in its own thread, with context
        return err


def laned(
    parts: list[tuple[int, Sequence[Any]]],
    work: Callable[[Sequence[Any]], P],
    extra: Callable[[], int],
    most: int,
) -> list[tuple[int, Sequence[Any], P | BaseException]]:
    """(start, chunk, work(chunk) or its exception) for every chunk, in order, run by the calling thread
    and up to `most` - 1 helper threads, helper k taking a chunk only while `extra()` >= k.

    A helper that finds no CPU lent waits and looks again until the chunks are taken. After an
    exception no lane takes a new chunk; the chunks before the failed one are all done, those after
    it may be missing (the list then ends at the first exception in order).
    """
    helpers = min(most, len(parts)) - 1
    if helpers < 1:
        return [(start, chunk, _call(work, chunk)) for start, chunk in parts]
    lock = threading.Lock()
    results: dict[int, P | BaseException] = {}
    taken = [0]  # the next chunk's index
    stop = threading.Event()  # a chunk failed, or the calling thread found nothing left to take

    def take() -> int | None:
        with lock:
            if stop.is_set() or taken[0] >= len(parts):
                return None
            taken[0] += 1
            return taken[0] - 1

    def run(index: int) -> None:
        out = _call(work, parts[index][1])
        results[index] = out
        if isinstance(out, BaseException):
            stop.set()

    def lane(rank: int) -> None:
        while not stop.is_set():
            if extra() < rank:  # no CPU for this lane now: look again soon (or leave once all is taken)
                stop.wait(_LANE_POLL_S)
                continue
            if (index := take()) is None:
                return
            run(index)

    threads = [
        threading.Thread(target=lane, args=(rank,), name=f"mmfs-encoder-lane-{rank}", daemon=True)
        for rank in range(1, helpers + 1)
    ]
    for thread in threads:
        thread.start()
    try:
        while (index := take()) is not None:
            run(index)
    finally:  # all taken, a chunk failed, or Ctrl-C in this thread: the helpers take no new chunk
        stop.set()
        for thread in threads:
            thread.join()
    out: list[tuple[int, Sequence[Any], P | BaseException]] = []
    for index, (start, chunk) in enumerate(parts):
        if index not in results:
            break
        out.append((start, chunk, results[index]))
        if isinstance(results[index], BaseException):
            break
    return out
