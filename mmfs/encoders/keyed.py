"""Keyed model calls: every input goes in with its key, and every result comes back under that key.

Beam RunInference's keyed handler, as a function: a batched model returns its results in input order,
and one that drops, adds or reorders a result would shift every later result onto the wrong item, so
position arithmetic at the call site is how a face box lands on another video's frame. Every model
call of the stages goes through `run_keyed`, which refuses a result count that differs from the
input count and hands back `Keyed` results that a stage reads by its own keys (the item's media id,
with the frame, window or segment index).
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Iterable, Sequence
from typing import Any, Generic, TypeVar

import numpy as np

from mmfs.errors import EncoderError

K = TypeVar("K", bound=Hashable)
X = TypeVar("X")
R = TypeVar("R")


class Keyed(Generic[K, R]):
    """The results of one batched call by key, kept in input order (vectors stay one matrix)."""

    __slots__ = ("_position", "keys", "values")

    def __init__(self, keys: Sequence[K], values: Sequence[R] | np.ndarray) -> None:
        if len(keys) != len(values):
            raise ValueError(f"{len(values)} results for {len(keys)} keys")
        self.keys, self.values = tuple(keys), values
        self._position = {key: i for i, key in enumerate(self.keys)}
        if len(self._position) != len(self.keys):
            raise ValueError("keys of one batched call must be unique")

    def __len__(self) -> int:
        return len(self.keys)

    def __contains__(self, key: object) -> bool:
        return key in self._position

    def __getitem__(self, key: K) -> R:
        return self.values[self._position[key]]

    def get(self, key: K, default: R | None = None) -> R | None:
        """The result of `key`, or `default` when the call had no such input."""
        where = self._position.get(key)
        return default if where is None else self.values[where]

    def select(self, keys: Iterable[K]) -> list[R]:
        """The results of `keys`, in the order asked; a key not in the call raises KeyError."""
        return [self.values[self._position[key]] for key in keys]

    def rows(self, keys: Sequence[K]) -> np.ndarray:
        """The rows of `keys` from a matrix result: a view when they are contiguous, else a copy."""
        matrix = np.asarray(self.values)
        where = [self._position[key] for key in keys]
        if where and where == list(range(where[0], where[0] + len(where))):
            return matrix[where[0] : where[0] + len(where)]
        return matrix[where] if where else matrix[:0]


def run_keyed(name: str, pairs: Sequence[tuple[K, X]], call: Callable[[list[X]], Sequence[R]]) -> Keyed[K, R]:
    """`call` over the inputs of `pairs` as one batch; its results by key.

    A model that returns more or fewer results than it was given raises ENCODER_FAILED naming it (the
    batch's items are then retried one at a time by `apply_stage`), never a silent misattribution.
    """
    keys = [key for key, _ in pairs]
    results = call([value for _, value in pairs])
    if len(results) != len(keys):
        raise EncoderError(f"{name}: {len(results)} results for {len(keys)} inputs")
    return Keyed(keys, results)


def run_keyed_columns(
    name: str, pairs: Sequence[tuple[K, X]], call: Callable[[list[X]], tuple[Sequence[Any], ...]]
) -> tuple[Keyed[K, Any], ...]:
    """`run_keyed` for a model that returns several per-input outputs at once (vectors and labels)."""
    keys = [key for key, _ in pairs]
    columns = call([value for _, value in pairs])
    for column in columns:
        if len(column) != len(keys):
            raise EncoderError(f"{name}: {len(column)} results for {len(keys)} inputs")
    return tuple(Keyed(keys, column) for column in columns)
