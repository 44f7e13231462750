"""Which video frames to keep: the sampling policies, as target times or an index rule.

Every time-based policy (frames per second, N uniform, keyframes, scene starts) becomes a list of
target times; the frame kept for a target is the one on screen at it (the largest PTS <= t), so
variable-frame-rate video samples correctly. `every_k` is the one rule by decode order.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal

import numpy as np

Policy = Literal["fps", "every_k", "uniform", "keyframes", "scenes"]
Snap = Literal["on_screen", "nearest"]

# A frame is on screen at t when its PTS <= t + PTS_EPS_S (absorbs float32 and rounding noise).
PTS_EPS_S = 1e-6


@dataclass(frozen=True)
class Sampling:
    """A sampling policy and its parameters; `max_frames` caps every policy (the first ones are kept)."""

    policy: Policy = "fps"
    fps: float = 1.0
    max_frames: int = 600
    every_k: int = 1
    n_frames: int = 16
    snap: Snap = "on_screen"  # the frame shown at t, or the frame whose PTS is nearest t
    key_times: tuple[float, ...] = field(default=(), repr=False)  # keyframes: from the container
    scene_times: tuple[float, ...] = field(default=(), repr=False)  # scenes: the shots' starts

    @property
    def by_index(self) -> bool:
        """True for the rule by decode order (every_k), False for target times."""
        return self.policy == "every_k"

    def target(self, k: int) -> float:
        """The k-th target time of an open-ended fps sampling (duration unknown)."""
        return k / self.fps

    def targets(self, end_s: float | None) -> np.ndarray | None:
        """The target times for a stream that ends at end_s; None where the end is needed and unknown."""
        if self.policy == "fps":
            return target_times(end_s, self.fps, self.max_frames) if end_s else None
        if self.policy == "uniform":
            if not end_s:
                return None
            n = min(self.n_frames, self.max_frames)
            return (np.arange(n, dtype=np.float64) + 0.5) * end_s / n
        if self.policy == "keyframes":
            return _capped(self.key_times, self.max_frames)
        if self.policy == "scenes":
            return _capped(self.scene_times or (0.0,), self.max_frames)
        raise ValueError(f"{self.policy} samples by index, not by time")

    def indices(self, pts_s: np.ndarray, end_s: float | None) -> np.ndarray:
        """The frames to keep, given every frame's PTS (index-addressable decoders)."""
        if self.by_index:
            return np.arange(0, len(pts_s), self.every_k, dtype=np.int64)[: self.max_frames]
        end = end_s if end_s else float(pts_s[-1]) + 1e-3
        targets = self.targets(end)
        assert targets is not None
        return choose(pts_s, targets, nearest=self.snap == "nearest")


def _capped(times: Sequence[float], max_frames: int) -> np.ndarray:
    return np.unique(np.asarray(times, dtype=np.float64))[:max_frames]


def target_times(duration_s: float | None, fps: float, max_frames: int) -> np.ndarray:
    """0, 1/fps, 2/fps, ... strictly before duration_s (at least one), at most max_frames of them."""
    n = int(np.ceil(round(duration_s * fps, 9))) if duration_s and duration_s > 0 else 1
    return np.arange(max(1, min(n, max_frames)), dtype=np.float64) / fps


def choose(pts_s: np.ndarray, targets: np.ndarray, *, nearest: bool = False) -> np.ndarray:
    """Index of the frame on screen at each target (largest PTS <= t), or with `nearest` of the frame
    whose PTS is closest (a tie goes to the earlier), de-duplicated, increasing."""
    order = np.argsort(pts_s, kind="stable")
    sorted_pts = pts_s[order]
    pos = np.clip(np.searchsorted(sorted_pts, targets + PTS_EPS_S, side="right") - 1, 0, len(order) - 1)
    if nearest:
        after = np.clip(pos + 1, 0, len(order) - 1)
        later = (sorted_pts[after] - targets) < (targets - sorted_pts[pos]) - PTS_EPS_S
        pos = np.where(later, after, pos)
    return np.unique(order[pos]).astype(np.int64)
