"""The dense optical-flow engines `flow.method` selects: OpenCV Farneback, or DIS at its fast / medium preset.

Each takes two grey uint8 images of the same size and returns the (h, w, 2) float32 flow from the first
to the second, in pixels of those images. A DIS instance is built once per thread and reused: building
one allocates its pyramids, and it is not safe to share between threads.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

import cv2
import numpy as np

from mmfs.config import FlowConfig

FlowFn = Callable[[np.ndarray, np.ndarray], np.ndarray]

_DIS_PRESETS = {
    "dis_fast": cv2.DISOPTICAL_FLOW_PRESET_FAST,
    "dis_medium": cv2.DISOPTICAL_FLOW_PRESET_MEDIUM,
}
_local = threading.local()


def farneback(prev_grey: np.ndarray, next_grey: np.ndarray, cfg: FlowConfig) -> np.ndarray:
    """Farneback flow between two grey images with the configured parameters."""
    out = np.zeros((*prev_grey.shape[:2], 2), dtype=np.float32)
    return cv2.calcOpticalFlowFarneback(
        prev_grey,
        next_grey,
        out,
        cfg.pyr_scale,
        cfg.levels,
        cfg.winsize,
        cfg.iterations,
        cfg.poly_n,
        cfg.poly_sigma,
        0,
    )


def dis_instance(method: str) -> cv2.DISOpticalFlow:
    """This thread's DIS object for a preset (`dis_fast` or `dis_medium`)."""
    cache: dict[str, cv2.DISOpticalFlow] = _local.__dict__.setdefault("dis", {})
    dis = cache.get(method)
    if dis is None:
        dis = cache[method] = cv2.DISOpticalFlow.create(_DIS_PRESETS[method])
    return dis


def flow_fn(cfg: FlowConfig) -> FlowFn:
    """The configured engine as a function of two grey images."""
    if cfg.method == "farneback":
        return lambda prev, nxt: farneback(prev, nxt, cfg)
    dis = dis_instance(cfg.method)
    return lambda prev, nxt: dis.calc(prev, nxt, None)  # type: ignore[call-overload]  # None: a new array
