"""How encoders run on the hardware they get: batch sizes, CPU threads, CUDA autocast, a prefetch queue.

Kept apart from the encoder contract so every encoder gets the same speed habits: the CPU stage of a
chunk (decoding-side preprocessing, tokenising) runs in one background thread while the model works
on the previous chunk (a bounded queue, so memory stays at `depth` chunks ahead), and on CUDA the
forward runs under bf16 (or fp16) autocast with channels-last inputs and pinned host memory.
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
