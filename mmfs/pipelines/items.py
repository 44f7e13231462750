"""The item model every stage shares: what is pending, what extraction produced, why a stage failed.

Kept apart from the stages themselves so that any stage (and any runner) can name these types
without importing another stage: no stage module imports another one back.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from mmfs.errors import MmfsError
from mmfs.media.probe import ProbeInfo
from mmfs.pipelines.recompute import computed_tables, degrading_flag
from mmfs.pipelines.sources import SourceItem
from mmfs.transforms.audio import AudioWindow
from mmfs.transforms.captions import TextSegment
from mmfs.transforms.flow import FlowPair
from mmfs.transforms.frames import SampledFrames
from mmfs.transforms.shots import Shot

__all__ = ["Extracted", "PendingItem", "StageFailure"]


@dataclass(frozen=True)
class StageFailure:
    """Why a stage failed for an item: becomes one `quarantine` row."""

    stage: str
    error: MmfsError


@dataclass
class PendingItem:
    """A unique item to process: its content hash and every uri that had these bytes."""

    media_id: str
    item: SourceItem
    uris: list[str]
    n_bytes: int
    only: tuple[str, ...] | None = None  # a stale item's tables to recompute; None: everything


@dataclass
class Extracted:
    """Everything the CPU stages produced for one item, before models run."""

    pending: PendingItem
    kind: str = "unknown"
    probe: ProbeInfo | None = None
    duration_s: float | None = None
    width: int | None = None
    height: int | None = None
    rotation: int = 0
    frames: SampledFrames | None = None
    flow: list[FlowPair] = field(default_factory=list)
    shots: list[Shot] | None = None  # None: shot detection did not run for this item
    audio_windows: list[AudioWindow] = field(default_factory=list)
    audio_samples: np.ndarray | None = None
    audio_rate: int = 0
    audio_columns: dict[str, list[Any]] = field(default_factory=dict)  # per-window extras (speech.py)
    audio_raw: np.ndarray | None = None  # the samples before audio.denoise, when it is on (speech.py)
    texts: list[TextSegment] = field(default_factory=list)
    failures: list[StageFailure] = field(default_factory=list)
    flags: list[str] = field(default_factory=list)
    stage_seconds: dict[str, float] = field(default_factory=dict)

    @property
    def computed(self) -> frozenset[str]:
        """The modality tables this extraction produces rows for (all, or a stale item's stale ones)."""
        return computed_tables(self.pending.only)

    @property
    def failed(self) -> bool:
        """True when nothing usable came out (the item-level stage failed)."""
        return any(f.stage in ("read", "probe", "decode") for f in self.failures)

    @property
    def status(self) -> str:
        """`ok`, `degraded` (a modality failed, or lost content: damaged audio packets) or `failed`."""
        if self.failed:
            return "failed"
        return "degraded" if self.failures or any(map(degrading_flag, self.flags)) else "ok"
