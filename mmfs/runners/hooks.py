"""Observers of a local run's progress (metrics, dashboards): called per batch, never able to fail it.

The runner calls `items_planned` once and `batch_done` after each committed batch (the local runner
from its commit thread, one batch at a time, not the thread that started the run); observers are
registered by whoever wants them (`mmfs.ops.metrics`) and removed when done. An observer that
raises is logged and dropped, so a broken exporter never fails a run.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass

from mmfs.stages.batch import BatchTally

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class BatchEvent:
    """One committed batch: items, their input bytes, the batch's tally and rows written per table."""

    n_items: int
    n_bytes: int
    tally: BatchTally
    written: dict[str, int]


class Observer:
    """Base observer: override what you need."""

    def items_planned(self, n_items: int) -> None:
        """The run has `n_items` items to process (after skipping what is done)."""

    def batch_done(self, event: BatchEvent) -> None:
        """A batch was committed."""


_OBSERVERS: list[Observer] = []


def add_observer(observer: Observer) -> Callable[[], None]:
    """Register an observer; returns the function that removes it."""
    _OBSERVERS.append(observer)
    return lambda: _OBSERVERS.remove(observer) if observer in _OBSERVERS else None


def items_planned(n_items: int) -> None:
    """Tell every observer how many items the run will process."""
    _notify(lambda o: o.items_planned(n_items))


def batch_done(event: BatchEvent) -> None:
    """Tell every observer that a batch was committed."""
    _notify(lambda o: o.batch_done(event))


def _notify(call: Callable[[Observer], None]) -> None:
    for observer in list(_OBSERVERS):
        try:
            call(observer)
        except Exception:  # an exporter's bug must not fail the run
            log.warning("run observer %r failed; removed", observer, exc_info=True)
            _OBSERVERS.remove(observer)
