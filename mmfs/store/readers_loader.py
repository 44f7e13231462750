"""A DataLoader that counts what the training loop took, so `FeatureDataset.state_dict()` is exact.

Behind DataLoader workers the dataset object in the main process never iterates: the workers hold
their own copies, and what they have read (prefetched included) is not what the loop has taken.
`FeatureLoader` counts the rows of every item as it leaves the loader, in the main process, and
hands the count to its dataset; the dataset's plan delivers a prefix of the rank's share whatever
the number of workers (`readers_plan`), so the count is a position and a resume continues exactly.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from torch.utils.data import DataLoader

from mmfs.errors import ConfigError

if TYPE_CHECKING:
    from mmfs.store.readers import FeatureDataset

__all__ = ["FeatureLoader", "rows_in"]


def rows_in(item: Any, *, batched: bool) -> int:
    """Rows in one item a loader yields: one for a row, its columns' length for a batch."""
    if not batched:
        return 1
    for key, value in item.items():
        if not key.startswith("_"):
            return int(value.shape[0]) if hasattr(value, "shape") else len(value)
    return 0


class FeatureLoader(DataLoader):  # type: ignore[type-arg]
    """`torch.utils.data.DataLoader` over a `FeatureDataset` that keeps its `state_dict()` exact.

    Use it as a DataLoader; `loader.state_dict()` (or `dataset.state_dict()`) is where the loop
    stands, and a dataset given that state to `load_state_dict` yields exactly the rest. With workers,
    set `batch_size` on the dataset and leave the loader's at None (the default here): a loader that
    collated rows from several workers would interleave them and no count could name a position.
    """

    def __init__(self, dataset: FeatureDataset, batch_size: int | None = None, **kwargs: Any) -> None:
        if batch_size is not None and kwargs.get("num_workers", 0) > 0:
            raise ConfigError(
                "FeatureLoader with workers takes batch_size on the FeatureDataset, not on the loader: "
                "collated across workers, the rows taken are no longer a prefix of the plan"
            )
        super().__init__(dataset, batch_size=batch_size, **kwargs)
        dataset.counted_by_loader = True

    def __iter__(self) -> Iterator[Any]:  # type: ignore[override]
        dataset: FeatureDataset = self.dataset  # type: ignore[assignment]
        dataset.note_consumed(0)
        taken, batched = 0, dataset.batch_size is not None or self.batch_size is not None
        for item in super().__iter__():
            taken += rows_in(item, batched=batched)
            dataset.note_consumed(taken)  # before the hand-over: an item taken is an item delivered
            yield item

    def state_dict(self) -> dict[str, Any]:
        """The dataset's resumable state at the rows this loader has handed to the loop."""
        dataset: FeatureDataset = self.dataset  # type: ignore[assignment]
        return dataset.state_dict()
