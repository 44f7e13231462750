"""The local run's C-heap calls: glibc takes them (elsewhere they are no-ops), trims come every n-th batch."""

from __future__ import annotations

import platform
import sys

import pytest

from mmfs.runners import allocator

GLIBC = sys.platform.startswith("linux") and platform.libc_ver()[0] == "glibc"


@pytest.mark.skipif(not GLIBC, reason="mallopt and malloc_trim are glibc's")
def test_glibc_takes_the_arena_cap_and_the_trim() -> None:
    assert allocator.limit_arenas(allocator.ARENAS) is True
    blocks = [bytearray(1 << 20) for _ in range(64)]  # 64 MiB freed: pages for the trim to return
    del blocks
    assert isinstance(allocator.trim(), bool)


def test_a_trimmer_trims_every_nth_batch() -> None:
    trimmer = allocator.Trimmer(every=3)
    for _ in range(7):
        trimmer()
    assert trimmer.calls == 7 and trimmer.trims == 2
