"""Which rows a training reader yields and in what order: index arithmetic only, no I/O.

An epoch's order depends on (eligible rows, seed, epoch) alone, so every rank and worker computes
the same order without talking to the others. The order is cut into equal contiguous shares, one per
rank (the remainder dropped or wrapped), and each share is dealt to DataLoader workers one unit at a
time, a unit being what the loader receives per item. A loader that returns items in order (the
default) therefore delivers a rank's share in plan order whatever the number of workers, so "rows
delivered" is a prefix of the share, and resuming is skipping that prefix.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np


def epoch_order(n: int, *, shuffle: bool, seed: int, epoch: int, block: int = 1) -> np.ndarray:
    """Positions 0..n-1 in this epoch's order: as stored, a uniform permutation, or shuffled blocks.

    With `block` > 1, runs of `block` consecutive positions move together (rows inside a run are
    shuffled too): neighbours on disk stay neighbours, which makes random reads several times faster.
    """
    if not shuffle:
        return np.arange(n, dtype=np.int64)
    rng = np.random.default_rng([seed, epoch])
    if block <= 1:
        return rng.permutation(n).astype(np.int64)
    n_blocks = -(-n // block)
    starts = rng.permutation(n_blocks).astype(np.int64) * block
    inside = np.argsort(rng.random((n_blocks, block)), axis=1)
    order = (starts[:, None] + inside).ravel()
    return order[order < n]


def rank_count(n: int, world_size: int, *, drop_last: bool) -> int:
    """Rows each rank gets out of n: the same for every rank."""
    return n // world_size if drop_last else -(-n // world_size)


def rank_share(stream: np.ndarray, rank: int, world_size: int, *, drop_last: bool) -> np.ndarray:
    """This rank's contiguous share of the epoch; the tail is dropped, or padded from the head."""
    per = rank_count(len(stream), world_size, drop_last=drop_last)
    if per * world_size != len(stream):
        stream = np.resize(stream, per * world_size)  # truncates, or repeats cyclically from the head
    return stream[rank * per : (rank + 1) * per]


def worker_positions(n: int, start: int, worker: int, n_workers: int, unit: int) -> np.ndarray:
    """Positions in [start, n) that one worker yields: every n_workers-th unit of `unit` rows."""
    positions = np.arange(start, n, dtype=np.int64)
    return positions[((positions - start) // unit) % n_workers == worker]


def chunks(values: np.ndarray, size: int) -> Iterator[np.ndarray]:
    """Consecutive slices of at most `size` values."""
    for begin in range(0, len(values), size):
        yield values[begin : begin + size]
