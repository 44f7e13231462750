"""Dense optical flow between consecutive sampled frames, with its motion statistics (docs/motion.md).

Frames are turned grey and resized to `work_width` first: flow cost grows with pixels, and motion
statistics at 160 px wide describe a scene as well as at full size. The engine is `flow.method`
(Farneback, DIS fast or DIS medium); the statistics of each pair are a `FlowStats`, taken in batches by
`video.flow_stats.FlowBatch` as the flows are computed. The records (`FlowPair`, `FlowStats`) are defined
in `video.flow_types`, which imports no OpenCV or numba, and re-exported here.
"""

from __future__ import annotations

import cv2
import numpy as np

from mmfs.config import FlowConfig
from mmfs.transforms.video.flow_methods import flow_fn
from mmfs.transforms.video.flow_stats import FlowBatch
from mmfs.transforms.video.flow_types import FLOW_MOTION_COLUMNS, FlowPair, FlowStats, motion_vector
from mmfs.transforms.video.frames import SampledFrames

__all__ = [
    "FLOW_MOTION_COLUMNS",
    "FlowPair",
    "FlowStats",
    "flow_between",
    "flow_sequence",
    "motion_vector",
    "to_work_grey",
]

_BATCH = 32  # pairs whose statistics are taken together: fewer calls per pair, still cache-sized


def to_work_grey(rgb: np.ndarray, work_width: int) -> np.ndarray:
    """Grey uint8 image resized to the work width, aspect kept."""
    grey = cv2.cvtColor(np.ascontiguousarray(rgb), cv2.COLOR_RGB2GRAY)
    h, w = grey.shape
    if w == work_width:
        return grey
    interpolation = cv2.INTER_AREA if w > work_width else cv2.INTER_LINEAR
    return cv2.resize(grey, (work_width, max(1, round(h * work_width / w))), interpolation=interpolation)


def flow_between(prev_rgb: np.ndarray, next_rgb: np.ndarray, cfg: FlowConfig) -> np.ndarray:
    """The (h, w, 2) float32 flow from prev to next at the work width, in pixels, by `cfg.method`."""
    return flow_fn(cfg)(to_work_grey(prev_rgb, cfg.work_width), to_work_grey(next_rgb, cfg.work_width))


def flow_sequence(frames: SampledFrames, cfg: FlowConfig) -> list[FlowPair]:
    """Flow between each pair of consecutive sampled frames (n - 1 pairs; none for one frame).

    Each flow goes into a `FlowBatch` as soon as it is computed (so at most one full flow is held at a
    time) and the statistics are taken for up to `_BATCH` pairs at once, in batches of equal size.
    """
    n_pairs = len(frames.frames) - 1
    if n_pairs < 1:
        return []
    compute = flow_fn(cfg)
    pairs: list[FlowPair] = []
    starts: list[int] = []
    batch: FlowBatch | None = None
    prev = None
    for i, rgb in enumerate(frames.frames):
        grey = to_work_grey(rgb, cfg.work_width)  # each frame made grey once, not once per pair
        if prev is not None:
            flow = compute(prev, grey)
            if batch is None:
                batches = -(-n_pairs // _BATCH)  # equal batches: no short last batch paying a whole call
                batch = FlowBatch(flow.shape[:2], -(-n_pairs // batches), cfg)
            batch.add(flow)
            starts.append(i - 1)
            if batch.full or i == n_pairs:
                _emit(batch, starts, frames, pairs)
                batch.clear()
                starts = []
        prev = grey
    return pairs


def _emit(batch: FlowBatch, starts: list[int], frames: SampledFrames, pairs: list[FlowPair]) -> None:
    """Append the batch's pairs, each with its frames, times and statistics."""
    columns = batch.columns()
    names = tuple(columns)
    first = starts[0]  # the batch's frames as Python numbers, once: starts run first, first + 1, ...
    indices = frames.indices[first : starts[-1] + 2].tolist()
    times = frames.times_s[first : starts[-1] + 2].tolist()
    for k, values in zip(starts, zip(*columns.values(), strict=True), strict=True):
        at = k - first
        pairs.append(
            FlowPair(
                frame_index=indices[at],
                next_frame_index=indices[at + 1],
                t_s=times[at],
                dt_s=times[at + 1] - times[at],
                **dict(zip(names, values, strict=True)),
            )
        )
