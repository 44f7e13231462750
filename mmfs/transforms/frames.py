"""Sample video frames by presentation time, decoded at a reduced size, upright.

For each target time t = k / fps the chosen frame is the one on screen at t: the largest PTS <= t.
Times come from the decoder's timestamps, never index / nominal fps, so variable-frame-rate video
samples correctly. decord decodes (at the reduced size, inside the decoder); PyAV takes over when
decord cannot open a file (Theora, some AVI) and for rotated streams, which decord mis-rotates.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from mmfs.errors import ErrorCode, MediaDecodeError


@dataclass
class SampledFrames:
    """Chosen frames with their decoder indices and presentation times."""

    indices: np.ndarray  # int64, strictly increasing
    times_s: np.ndarray  # float64 seconds
    frames: np.ndarray  # (n, h, w, 3) uint8 RGB, upright
    backend: str


def target_times(duration_s: float, fps: float, max_frames: int) -> np.ndarray:
    """0, 1/fps, 2/fps, ... strictly before duration_s, at most max_frames of them."""
    n = int(np.ceil(round(duration_s * fps, 9))) if duration_s > 0 else 1
    return np.arange(max(1, min(n, max_frames)), dtype=np.float64) / fps


def choose(pts_s: np.ndarray, targets: np.ndarray) -> np.ndarray:
    """Index of the frame on screen at each target (largest PTS <= t), de-duplicated, increasing."""
    order = np.argsort(pts_s, kind="stable")
    sorted_pts = pts_s[order]
    pos = np.searchsorted(sorted_pts, targets + 1e-6, side="right") - 1
    return np.unique(order[np.clip(pos, 0, len(order) - 1)])


def coded_size(width: int, height: int, short_side: int) -> tuple[int, int]:
    """Even (w, h) with the short side at most `short_side`, aspect kept, never upscaled."""
    scale = min(1.0, short_side / min(width, height))
    return max(2, round(width * scale / 2) * 2), max(2, round(height * scale / 2) * 2)


def rotate(frames: np.ndarray, clockwise: int) -> np.ndarray:
    """Rotate a (n, h, w, c) stack clockwise by 0/90/180/270 degrees."""
    k = (clockwise // 90) % 4
    return np.ascontiguousarray(np.rot90(frames, k=-k, axes=(1, 2))) if k else frames


def sample_frames(
    path: str | Path,
    *,
    fps: float,
    max_frames: int,
    decode_short_side: int,
    rotation: int = 0,
    duration_s: float | None = None,
) -> SampledFrames:
    """Decode the frames on screen at t = 0, 1/fps, ... (decord, else PyAV), upright."""
    try:
        if rotation % 360:  # decord mis-rotates streams with a display matrix (dmlc/decord#24)
            raise _DecordUnavailable("rotated stream")
        sampled = _with_decord(path, fps, max_frames, decode_short_side, duration_s)
    except _DecordUnavailable:
        sampled = sample_with_pyav(
            path,
            fps=fps,
            max_frames=max_frames,
            decode_short_side=decode_short_side,
            duration_s=duration_s,
        )
    if len(sampled.indices) == 0:
        raise MediaDecodeError(f"{Path(path).name}: no decodable video frame", code=ErrorCode.VIDEO_DECODE)
    sampled.frames = rotate(sampled.frames, rotation)
    return sampled


class _DecordUnavailable(Exception):
    """decord could not open this file; PyAV is tried next."""


def _with_decord(
    path: str | Path, fps: float, max_frames: int, short: int, duration_s: float | None
) -> SampledFrames:
    import decord

    w, h = _coded_dims(path)
    size = coded_size(w, h, short)
    try:  # an explicit size also keeps decord from mis-reading rotated streams
        reader = decord.VideoReader(str(path), width=size[0], height=size[1], num_threads=2)
        pts = reader.get_frame_timestamp(range(len(reader)))[:, 0].astype(np.float64)
    except (decord.DECORDError, RuntimeError, IndexError) as err:
        raise _DecordUnavailable(str(err)) from err
    if len(pts) == 0:
        raise _DecordUnavailable("no frames")
    end = duration_s if duration_s else float(pts.max()) + 1e-3
    indices = choose(pts, target_times(end, fps, max_frames))
    try:
        batch = reader.get_batch(indices.tolist()).asnumpy()
    except decord.DECORDError as err:
        raise MediaDecodeError(f"{Path(path).name}: {err}", code=ErrorCode.VIDEO_DECODE) from err
    return SampledFrames(indices.astype(np.int64), pts[indices], batch[..., :3], "decord")


def _coded_dims(path: str | Path) -> tuple[int, int]:
    """The coded (pre-rotation) frame size, read with PyAV."""
    import av

    try:
        with av.open(str(path)) as container:
            ctx = container.streams.video[0].codec_context
            return int(ctx.width), int(ctx.height)
    except (av.FFmpegError, IndexError, OSError) as err:
        raise MediaDecodeError(
            f"{Path(path).name}: no readable video stream ({err})", code=ErrorCode.VIDEO_DECODE
        ) from err


def sample_with_pyav(
    path: str | Path,
    *,
    fps: float,
    max_frames: int,
    decode_short_side: int,
    duration_s: float | None = None,
) -> SampledFrames:
    """Sequential PyAV decode keeping the frames on screen at the target times."""
    import av

    try:
        with av.open(str(path)) as container:
            stream = container.streams.video[0]
            w, h = coded_size(stream.codec_context.width, stream.codec_context.height, decode_short_side)
            end = duration_s if duration_s else _stream_duration(container, stream)
            targets = target_times(end, fps, max_frames) if end else None
            return _scan(container.decode(stream), targets, fps, max_frames, w, h)
    except (av.FFmpegError, IndexError, OSError) as err:
        raise MediaDecodeError(
            f"{Path(path).name}: cannot decode video ({err})", code=ErrorCode.VIDEO_DECODE
        ) from err


def _stream_duration(container: Any, stream: Any) -> float | None:
    if container.duration:
        return float(container.duration) / 1_000_000
    if stream.duration and stream.time_base:
        return float(stream.duration * stream.time_base)
    return None


def _scan(
    frames: Any, targets: np.ndarray | None, fps: float, max_frames: int, w: int, h: int
) -> SampledFrames:
    """Walk decoded frames once; for each target keep the last frame whose PTS <= target."""
    kept: dict[int, tuple[float, np.ndarray]] = {}
    previous: tuple[int, float, Any] | None = None
    k = 0
    for index, frame in enumerate(frames):
        t = float(frame.time) if frame.time is not None else index / fps
        while (
            previous is not None
            and (targets is None or k < len(targets))
            and t > _target(targets, k, fps) + 1e-6
        ):
            kept.setdefault(
                previous[0],
                (previous[1], previous[2].to_ndarray(width=w, height=h, format="rgb24")),
            )
            k += 1
        if k >= max_frames or (targets is not None and k >= len(targets)):
            break
        previous = (index, t, frame)
    if previous is not None and k < max_frames and (targets is None or k < len(targets)):
        kept.setdefault(previous[0], (previous[1], previous[2].to_ndarray(width=w, height=h, format="rgb24")))
    order = sorted(kept)
    if not order:
        return SampledFrames(np.zeros(0, np.int64), np.zeros(0), np.zeros((0, h, w, 3), np.uint8), "pyav")
    return SampledFrames(
        np.array(order, dtype=np.int64),
        np.array([kept[i][0] for i in order]),
        np.stack([kept[i][1] for i in order]),
        "pyav",
    )


def _target(targets: np.ndarray | None, k: int, fps: float) -> float:
    return float(targets[k]) if targets is not None else k / fps
