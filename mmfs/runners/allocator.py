"""The C heap of a local run: few malloc arenas, and freed memory handed back to the system per batch.

What grew a local run's peak RSS with its item count was not Python objects (tracemalloc: flat from
100 to 1,000 items) nor Arrow's pool (a few MB), but glibc's heap keeping memory that had been freed:
torch's activations (tens of MB per image batch, freed after each forward), Lance's write buffers
(freed after each commit) and decoded items, each freed in the arena of the thread that allocated
it. glibc gives every new thread its own arena, up to 8 per core (the encoder lanes, the decode and
commit threads, Lance's tokio workers), and keeps what is freed there: at the end of a 400-item run
the arenas held ~300 MB free, whole heaps of 20-50 MB among them, while live memory stayed ~400 MB.
So the run caps the arenas (`limit_arenas`, as `MALLOC_ARENA_MAX` would) and returns free pages
every few committed batches (`Trimmer`: `malloc_trim`, ~20 ms; each trim makes the next batch fault
its activations' pages in again, so not after every batch). Both are no-ops off glibc.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import logging
import sys

log = logging.getLogger(__name__)

ARENAS = 2  # malloc arenas at most (glibc's default: 8 per core)
TRIM_EVERY = 8  # committed batches between trims
_M_ARENA_MAX = -8  # mallopt's parameter number (malloc.h)


@functools.cache
def _libc() -> ctypes.CDLL | None:
    """glibc, or None where the C library is another (macOS, musl: neither has these calls)."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        libc.gnu_get_libc_version.restype = ctypes.c_char_p
        libc.gnu_get_libc_version()
        return libc
    except (OSError, AttributeError):
        return None


def limit_arenas(arenas: int = ARENAS) -> bool:
    """Cap the arenas new threads get (existing ones stay); True when the C library took it."""
    libc = _libc()
    if libc is None:
        return False
    done = bool(libc.mallopt(_M_ARENA_MAX, arenas))
    if not done:
        log.debug("mallopt(M_ARENA_MAX, %d) refused", arenas)
    return done


def trim() -> bool:
    """Hand the heap's free pages back to the system (every arena); True when glibc released any."""
    libc = _libc()
    return bool(libc.malloc_trim(0)) if libc is not None else False


class Trimmer:
    """`trim` on every `every`-th call: what a run calls after each committed batch."""

    def __init__(self, every: int = TRIM_EVERY) -> None:
        self.every, self.calls, self.trims = every, 0, 0

    def __call__(self) -> None:
        self.calls += 1
        if self.calls % self.every == 0:
            trim()
            self.trims += 1
