"""Shared-memory batch buffers that a DataLoader worker recycles, so a batch costs no fresh pages.

Profiling the 2-worker loader showed where its time went: every batch was a fresh shared-memory
segment, and writing 10 MB into fresh pages took ~10 ms (a page fault per 4 KiB, each page zeroed by
the kernel) against ~0.3 ms into pages already mapped, as long as reading the rows. So each worker
keeps a few segments (memfd) and reuses one once the consumer is done with it. The first byte of a
segment is its flag: the worker sets it when it fills the segment; the consumer clears it when the
last tensor over its mapping is gone (a finalizer on the mapping, which every view keeps alive). A
segment still flagged is never touched, so a batch the training loop holds stays intact; with every
segment in use, a batch falls back to a one-off torch shared buffer, as before.
"""

from __future__ import annotations

import mmap
import os
import threading
import weakref
from dataclasses import dataclass
from typing import Any

HEADER = 64  # bytes before the data; byte 0 is the in-use flag; 64 keeps the data cache-line aligned
MAX_SEGMENTS = 8  # per worker: prefetch (2 per worker by default) plus what the loop holds


@dataclass
class Segment:
    """One reusable memfd segment, mapped in the worker that owns it."""

    fd: int
    size: int  # data bytes, after the header
    mapping: mmap.mmap

    @property
    def free(self) -> bool:
        """Whether no consumer holds the segment (its flag is clear)."""
        return self.mapping[0] == 0


class _Pool:
    """This process's segments (one pool per DataLoader worker process)."""

    def __init__(self) -> None:
        self.segments: list[Segment] = []
        self.lock = threading.Lock()

    def acquire(self, nbytes: int) -> Segment | None:
        """A free segment of at least `nbytes`, flagged in use; None when all are held."""
        with self.lock:
            for segment in self.segments:
                if segment.size >= nbytes and segment.free:
                    segment.mapping[0] = 1
                    return segment
            if len(self.segments) >= MAX_SEGMENTS:
                return None
            size = -(-nbytes // mmap.PAGESIZE) * mmap.PAGESIZE
            fd = os.memfd_create("mmfs-batch", os.MFD_CLOEXEC)
            os.ftruncate(fd, HEADER + size)
            segment = Segment(fd, size, mmap.mmap(fd, HEADER + size))
            segment.mapping[0] = 1
            self.segments.append(segment)
            return segment


_POOL = _Pool()


def available() -> bool:
    """Whether this platform has memfd (Linux); elsewhere batches use torch's shared buffers."""
    return hasattr(os, "memfd_create")


def acquire(nbytes: int) -> tuple[Segment, Any] | None:
    """A recycled segment and a uint8 tensor over its first `nbytes` (> 0) data bytes, or None."""
    import torch

    segment = _POOL.acquire(nbytes)
    if segment is None:
        return None
    tensor = torch.frombuffer(segment.mapping, dtype=torch.uint8, count=nbytes, offset=HEADER)
    return segment, tensor


def reduce_segment(segment: Segment, nbytes: int) -> tuple[Any, ...]:
    """What a batch pickles as: a duplicate of the segment's descriptor and its size."""
    from multiprocessing.reduction import DupFd

    return (DupFd(segment.fd), nbytes)


class _Mapping(mmap.mmap):
    """An mmap that can carry a finalizer (plain mmap objects take no attributes)."""


def _release(flag: mmap.mmap) -> None:
    """The consumer is done: clear the flag, so the worker may refill the segment."""
    flag[0] = 0
    flag.close()


def attach(dup_fd: Any, nbytes: int) -> Any:
    """In the consumer: a uint8 tensor over the segment; its flag clears when the tensor's last view dies."""
    import torch

    fd = dup_fd.detach()
    try:
        mapping = _Mapping(fd, HEADER + nbytes)
        flag = mmap.mmap(fd, mmap.PAGESIZE)  # a segment is at least a page past its header
    finally:
        os.close(fd)
    weakref.finalize(mapping, _release, flag)
    return torch.frombuffer(mapping, dtype=torch.uint8, count=nbytes, offset=HEADER)
