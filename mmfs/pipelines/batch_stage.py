"""Run a stage over a batch of enriched items so that one poison input degrades its own item only."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from mmfs.errors import ConfigError, MmfsError
from mmfs.pipelines.items import StageFailure

if TYPE_CHECKING:
    from mmfs.pipelines.enrich import Enriched


def run_stage(stage: str, fn: Callable[[list[Enriched]], None], items: Sequence[Enriched]) -> None:
    """`fn` on the whole batch; when it fails, again item by item, recording each failure as `stage`.

    A configuration error is not an item's fault: it stops the run, batched or not.
    """
    try:
        fn(list(items))
    except ConfigError:
        raise
    except MmfsError:
        for item in items:
            try:
                fn([item])
            except ConfigError:
                raise
            except MmfsError as err:
                item.ex.failures.append(StageFailure(stage, err))
