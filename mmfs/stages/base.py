"""The stage protocol: what every unit of the data path declares, and the one way it is applied.

A stage has a name (its failures' `quarantine.stage`), a timing key (`runs.stage_seconds`), the
resources it needs (so a runner knows where to place it: a CPU task, an actor holding a model, the
driver), an optional fault point, and `run(batch) -> (results, failures)`. It returns new frozen
items (`stages/items.py`) and never edits the ones it was given, so applying it twice to the same
batch gives the same result. `apply_stage` is how every runner applies one: timed, fault point hit,
and, when the whole batch fails, again item by item so one poison input degrades its own item only.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

from mmfs.errors import ConfigError, MmfsError
from mmfs.faults import Fault, hit
from mmfs.stages.items import Item, StageFailure


@dataclass(frozen=True)
class Resources:
    """What one instance of a stage holds while it runs: CPU cores, GPUs, the models it loads."""

    cpus: float = 1.0
    gpus: float = 0.0
    models: tuple[str, ...] = ()  # registered model names (encoders registry); empty: no model


@dataclass(frozen=True)
class ItemFailure:
    """A stage's failure for one item of its batch (by position in the batch)."""

    index: int
    failure: StageFailure


@dataclass(frozen=True)
class StageOutput:
    """What a stage returns: the batch's items with its result added, and the items it failed for."""

    items: list[Item]
    failures: list[ItemFailure] = field(default_factory=list)


@runtime_checkable
class Stage(Protocol):
    """One unit of the data path over a batch of items (see the module docstring)."""

    name: str
    timing: str
    resources: Resources
    fault: Fault | None

    def run(self, batch: list[Item]) -> StageOutput:
        """The stage over a batch: new items carrying its result, and its failures."""
        ...


class StageBase:
    """Defaults of the `Stage` attributes, typed, for stages to inherit: no fault point, one CPU."""

    name: str = ""
    timing: str = ""
    resources: Resources = Resources()
    fault: Fault | None = None


@dataclass
class StageTimes:
    """Seconds spent per timing key over a batch's stages."""

    seconds: dict[str, float] = field(default_factory=dict)

    def add(self, key: str, seconds: float) -> None:
        """Add time spent under `key`."""
        self.seconds[key] = self.seconds.get(key, 0.0) + seconds


def apply_stage(stage: Stage, batch: Sequence[Item], times: StageTimes | None = None) -> list[Item]:
    """Run `stage` over `batch` and fold its failures into the items; timed under `stage.timing`.

    When the stage raises for the whole batch, it runs again item by item (its result is a function
    of its input, so nothing is counted twice) and the item that raises is recorded as failed at
    `stage.name`. A configuration error is not an item's fault: it stops the run.
    """
    t0 = time.perf_counter()
    try:
        if stage.fault is not None:
            hit(stage.fault)
        items = list(batch)
        if not items:
            return []
        try:
            out = _folded(stage.run(items))
        except ConfigError:
            raise
        except MmfsError:
            out = []
            for item in items:
                try:
                    out += _folded(stage.run([item]))
                except ConfigError:
                    raise
                except MmfsError as err:
                    out.append(item.failing(StageFailure(stage.name, err)))
        return out
    finally:
        if times is not None:
            times.add(stage.timing, time.perf_counter() - t0)


def apply_stages(
    stages: Sequence[Stage], batch: Sequence[Item], times: StageTimes | None = None
) -> list[Item]:
    """Each stage in order over the batch's live items (failed ones pass through untouched)."""
    items = list(batch)
    for stage in stages:
        live = [i for i, it in enumerate(items) if not it.ex.failed]
        done = apply_stage(stage, [items[i] for i in live], times)
        for i, item in zip(live, done, strict=True):
            items[i] = item
    return items


def _folded(output: StageOutput) -> list[Item]:
    items = list(output.items)
    for f in output.failures:
        items[f.index] = items[f.index].failing(f.failure)
    return items
