"""Action features (the `segments.clip` column): one vector per time window (segment or shot).

Appearance and motion over the window, pooled over time so that a window of any length gives a vector of
one width: the mean and the standard deviation (population, per dimension) of the frame embeddings whose
times fall inside it, then the mean and the per-feature maximum of the motion vectors (MOTION_FEATURES)
of the flow pairs whose midpoint falls inside it. Mean + std keeps how much the picture changes inside the
window, which a mean alone averages away; mean + max of motion keeps a short burst of movement. The mean
is not re-normalised (its norm falls below 1 as the frames differ). A window without frames has no clip
vector; a window with frames but no flow pair has zeros in its motion half.
"""

from __future__ import annotations

import numpy as np

from mmfs.schemas.tables import MOTION_DIM


def action_vector(frame_vectors: np.ndarray | None, motion_vectors: np.ndarray | None) -> np.ndarray | None:
    """[mean, std] of the window's (n, d) frame vectors then [mean, max] of its (m, 16) motion vectors."""
    if frame_vectors is None or len(frame_vectors) == 0:
        return None
    frames = np.asarray(frame_vectors, dtype=np.float32)
    if motion_vectors is not None and len(motion_vectors):
        motion = np.asarray(motion_vectors, dtype=np.float32)
        motion_part = np.concatenate([motion.mean(axis=0), motion.max(axis=0)])
    else:
        motion_part = np.zeros(2 * MOTION_DIM, dtype=np.float32)
    return np.concatenate([frames.mean(axis=0), frames.std(axis=0), motion_part]).astype(np.float32)


def window_groups(times_s: np.ndarray, window_s: float) -> list[tuple[np.ndarray, float]]:
    """The sampled frames cut into clips for a video encoder: one per `window_s` window with frames.

    Returns each clip's frame positions and its time (the middle of its frames' span), so that the
    clip vectors align like any timed vector: into whatever window (segment or shot) holds that time.
    """
    times = np.asarray(times_s, dtype=np.float64)
    if times.size == 0:
        return []
    keys = np.floor(np.round(times / window_s, 9)).astype(np.int64)
    out = []
    for key in np.unique(keys):
        idx = np.flatnonzero(keys == key)
        out.append((idx, float((times[idx[0]] + times[idx[-1]]) / 2)))
    return out
