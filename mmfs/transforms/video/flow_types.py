"""The plain records of optical flow (`FlowStats`, `FlowPair`) and the flow table's motion columns.

They live apart from `video.flow` and `video.flow_stats` (OpenCV, numba, decord) because decoded items
carry them from the decode workers to the run's process: unpickling imports the module that defines a
class, and this one needs only numpy.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from mmfs.schemas.tables import MOTION_FEATURES

# the per-pair columns beside the magnitudes: work size, camera motion and residual (object) motion
FLOW_MOTION_COLUMNS = (
    "work_width",
    "work_height",
    "global_dx",
    "global_dy",
    "global_rotation_deg",
    "global_scale",
    "global_inlier_frac",
    "residual_mean_mag",
    "residual_moving_frac",
)


@dataclass
class FlowStats:
    """The statistics of one flow field, in pixels at the work size."""

    mean_mag: float
    median_mag: float
    p95_mag: float
    max_mag: float
    mean_dx: float
    mean_dy: float
    orient_hist: np.ndarray  # (8,) float32, magnitude-weighted, sums to 1 (zeros when nothing moves)
    moving_frac: float
    field: np.ndarray  # (field_rows, field_size, 2) float16
    global_dx: float  # camera motion: shift of the frame centre
    global_dy: float
    global_rotation_deg: float  # counter-clockwise on screen > 0
    global_scale: float  # > 1: zoom in
    global_inlier_frac: float
    residual_mean_mag: float  # object motion: the flow left once the camera motion is removed
    residual_moving_frac: float
    work_width: int
    work_height: int


@dataclass(kw_only=True)
class FlowPair(FlowStats):
    """Motion between two consecutive sampled frames: which frames, when, and its statistics."""

    frame_index: int
    next_frame_index: int
    t_s: float
    dt_s: float


def motion_vector(pair: FlowPair) -> np.ndarray:
    """The pair as a 16-d float32 vector in MOTION_FEATURES order (what `segments.motion` pools)."""
    values = [
        float(pair.orient_hist[int(name.removeprefix("orient_"))])
        if name.startswith("orient_")
        else float(getattr(pair, name))
        for name in MOTION_FEATURES
    ]
    return np.array(values, dtype=np.float32)
