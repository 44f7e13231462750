"""The align stage: each item's modalities onto its segment grid (DESIGN.md, Alignment).

The one place the grid is made: from the item's duration (a fixed `align.segment_s` grid, or one
window per shot with `align.grid: shots`), frame and clip vectors by time, flow pairs by their
middles, audio windows by span, text by overlap (`transforms/align.py` does the pooling). A partly
recomputed item takes the vectors of the tables it did not recompute from the store (`stored`), on
the grid its stored rows are on. Returns each item with an `Aligned` result; rows are made later.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from mmfs.config import PipelineConfig
from mmfs.schemas.tables import MOTION_DIM
from mmfs.stages.base import Resources, StageBase, StageOutput
from mmfs.stages.items import Aligned, Item
from mmfs.stages.recompute import MODALITY_TABLES, StoredItem, merge_inputs
from mmfs.transforms.align import AlignInputs, SpanVector, TimedVectors, align
from mmfs.transforms.video.flow_types import motion_vector  # numpy only: not OpenCV or numba
from mmfs.transforms.video.shots import shot_bounds


class AlignStage(StageBase):
    """Segments of every live item of a batch (no model; CPU only)."""

    name, timing = "align", "align"
    resources = Resources()

    def __init__(self, cfg: PipelineConfig, stored: Mapping[str, StoredItem] | None = None) -> None:
        self.cfg, self.stored = cfg, stored or {}

    def run(self, batch: list[Item]) -> StageOutput:
        """Each item with its `Aligned` segments."""
        return StageOutput([it.with_(aligned=self.aligned(it)) for it in batch])

    def aligned(self, it: Item) -> Aligned:
        """One item's segments: this run's vectors, and the store's for the tables not recomputed."""
        a, kept = self.cfg.align, self.stored.get(it.media_id)
        duration = kept.duration_s if kept is not None and kept.duration_s is not None else it.ex.duration_s
        inputs, tables = align_inputs(it, duration), set(modality_tables(it))
        if kept is not None:  # a partial recompute: the other tables' vectors come from the store
            inputs = merge_inputs(inputs, kept.inputs, it.ex.computed)
            tables = (tables & it.ex.computed) | (kept.tables - it.ex.computed)
        shots = it.ex.shots
        bounds = shot_bounds(list(shots)) if a.grid == "shots" and shots else None
        segments = align(inputs, segment_s=a.segment_s, max_segments=a.max_segments, bounds=bounds)
        return Aligned(tuple(segments), duration, frozenset(tables))


def modality_tables(it: Item) -> list[str]:
    """The modality tables an item has rows in this run."""
    frames = it.frames
    has = {
        "frames": frames is not None and len(frames.times_s) > 0,
        "flow": bool(it.flow),
        "audio": bool(it.ex.audio_windows),
        "text": bool(it.texts),
    }
    return [t for t in MODALITY_TABLES if has[t]]


def align_inputs(it: Item, duration_s: float | None) -> AlignInputs:
    """What alignment pools, from one item's stage results."""
    v, frames = it.vectors, it.frames
    inputs = AlignInputs(duration_s=duration_s, is_image=it.ex.kind == "image")
    if frames is not None and v.frame is not None:
        inputs.visual = TimedVectors(frames.times_s, v.frame)
    if frames is not None and v.label is not None:
        lines = list(v.bridge_texts) or [", ".join(n for n, _ in labels) for labels in v.frame_labels]
        inputs.label_vectors = TimedVectors(frames.times_s, v.label, lines)
    if it.flow:
        mids = np.array([p.t_s + p.dt_s / 2 for p in it.flow])
        inputs.motion = TimedVectors(mids, np.stack([motion_vector(p) for p in it.flow]))
        assert inputs.motion.vectors.shape[1] == MOTION_DIM
    if v.clip is not None and v.clip_times is not None:
        inputs.video = TimedVectors(v.clip_times, v.clip)
    inputs.audio = [
        SpanVector(w.start_s, w.end_s, v.audio[i] if i < len(v.audio) else None)
        for i, w in enumerate(it.ex.audio_windows)
    ]
    inputs.text = [
        SpanVector(
            seg.start_s, seg.end_s, None if v.text is None or i >= len(v.text) else v.text[i], seg.text
        )
        for i, seg in enumerate(it.texts)
    ]
    return inputs
