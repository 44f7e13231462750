"""Sample video frames by presentation time, decoded at a reduced size, upright.

For each target time t = k / fps the chosen frame is the one on screen at t: the largest PTS <= t.
Times come from the decoder's timestamps (seconds from the stream's start), never index / nominal
fps, so variable-frame-rate video samples correctly. decord decodes at the reduced size inside the
decoder, but only where it is frame-accurate: MP4/MOV and Matroska/WebM with one video stream and no
rotation. In MPEG-TS, MPEG-PS, FLV, ASF and H.264-in-AVI, decord 0.6 returns wrong frames or
timestamps, and it half-applies display matrices, so those files (and any decord cannot open or
read) are decoded sequentially with PyAV.

PyAV decodes packet by packet: a packet that fails to decode (mid-stream corruption) is counted and
skipped, a frame the decoder marks corrupt (concealed) is kept and counted, and so is each packet the
container's index lists but the file lacks (a cut-off download). `decode_errors` carries the count;
a stream where more than half of it fails is undecodable. Frames without a PTS get one from a
counter, counted in `synthetic_pts`. decord conceals damage without saying so: a file it reads
whole is not checked for it.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import av
import decord
import numpy as np

from mmfs.errors import ErrorCode, MediaDecodeError
from mmfs.media.probe import first_line, pick_stream

Backend = Literal["auto", "decord", "pyav"]

# PyAV format names (one of the comma-separated aliases) where decord's seeking is frame-exact.
DECORD_FORMATS = frozenset({"mov", "mp4", "matroska", "webm"})
# A frame is on screen at t when its PTS <= t + PTS_EPS_S (absorbs float32 and rounding noise).
PTS_EPS_S = 1e-6
# Over this share of bad packets and corrupt frames among those read, a stream is undecodable, not damaged.
MAX_DECODE_ERROR_SHARE = 0.5


@dataclass
class SampledFrames:
    """Chosen frames with their decoder indices and presentation times."""

    indices: np.ndarray  # int64, strictly increasing
    times_s: np.ndarray  # float64 seconds from the stream start
    frames: np.ndarray  # (n, h, w, 3) uint8 RGB, upright
    backend: str
    decode_errors: int = 0  # packets that failed to decode plus frames the decoder marked corrupt
    synthetic_pts: int = 0  # frames that had no PTS and were timed by the nominal frame rate


@dataclass
class _DecodeLog:
    """What went wrong while decoding one stream with PyAV."""

    packets: int = 0
    frames: int = 0
    errors: int = 0
    synthetic_pts: int = 0

    def undecodable(self) -> bool:
        """Whether errors outweigh what decoded: the stream is broken, not damaged."""
        return self.errors > MAX_DECODE_ERROR_SHARE * (self.frames + self.errors)


@dataclass(frozen=True)
class _Stream:
    """What the sampler needs to know about the chosen video stream."""

    formats: frozenset[str]
    position: int  # among the container's video streams
    n_video: int
    width: int
    height: int
    start_s: float
    duration_s: float | None
    rate: float


def target_times(duration_s: float, fps: float, max_frames: int) -> np.ndarray:
    """0, 1/fps, 2/fps, ... strictly before duration_s (at least one), at most max_frames of them."""
    n = int(np.ceil(round(duration_s * fps, 9))) if duration_s > 0 else 1
    return np.arange(max(1, min(n, max_frames)), dtype=np.float64) / fps


def choose(pts_s: np.ndarray, targets: np.ndarray) -> np.ndarray:
    """Index of the frame on screen at each target (largest PTS <= t), de-duplicated, increasing."""
    order = np.argsort(pts_s, kind="stable")
    pos = np.searchsorted(pts_s[order], targets + PTS_EPS_S, side="right") - 1
    return np.unique(order[np.clip(pos, 0, len(order) - 1)]).astype(np.int64)


def coded_size(width: int, height: int, short_side: int) -> tuple[int, int]:
    """Even (w, h) with the short side at most `short_side`, aspect kept, never upscaled."""
    scale = min(1.0, short_side / min(width, height))
    return max(2, round(width * scale / 2) * 2), max(2, round(height * scale / 2) * 2)


def rotate(frames: np.ndarray, clockwise: int) -> np.ndarray:
    """Rotate a (n, h, w, c) stack clockwise by 0/90/180/270 degrees."""
    k = (clockwise // 90) % 4
    # np.rot90 turns counter-clockwise for positive k, so clockwise is negative k.
    return np.ascontiguousarray(np.rot90(frames, k=-k, axes=(1, 2))) if k else frames


def sample_frames(
    path: str | Path,
    *,
    fps: float,
    max_frames: int,
    decode_short_side: int,
    rotation: int = 0,
    duration_s: float | None = None,
    backend: Backend = "auto",
) -> SampledFrames:
    """Decode the frames on screen at t = 0, 1/fps, ... (decord where exact, else PyAV), upright."""
    stream = _inspect(path)
    size = coded_size(stream.width, stream.height, decode_short_side)
    end = duration_s if duration_s else stream.duration_s
    sampled = None
    if backend == "decord" or (backend == "auto" and _decord_suits(stream, rotation)):
        sampled = _sample_decord(path, size, fps, max_frames, end)
        if sampled is None and backend == "decord":
            raise MediaDecodeError(f"{Path(path).name}: decord cannot read it", code=ErrorCode.VIDEO_DECODE)
    if sampled is None:
        sampled = _sample_pyav(path, stream, size, fps, max_frames, end)
    if len(sampled.indices) == 0:
        raise MediaDecodeError(f"{Path(path).name}: no decodable video frame", code=ErrorCode.VIDEO_DECODE)
    sampled.frames = rotate(sampled.frames, rotation)
    return sampled


def sample_with_pyav(
    path: str | Path, *, fps: float, max_frames: int, decode_short_side: int, duration_s: float | None = None
) -> SampledFrames:
    """The PyAV path alone, without rotation: the reference the decord path is checked against."""
    stream = _inspect(path)
    size = coded_size(stream.width, stream.height, decode_short_side)
    return _sample_pyav(path, stream, size, fps, max_frames, duration_s or stream.duration_s)


def _decord_suits(stream: _Stream, rotation: int) -> bool:
    return bool(stream.formats & DECORD_FORMATS) and stream.n_video == 1 and rotation % 360 == 0


def _inspect(path: str | Path) -> _Stream:
    """Read the chosen video stream's coded size, start, duration and rate with PyAV."""
    try:
        with av.open(str(path)) as container:
            videos = list(container.streams.video)
            chosen = pick_stream(videos)
            if chosen is None or not chosen.codec_context.width or not chosen.codec_context.height:
                raise MediaDecodeError(
                    f"{Path(path).name}: no video stream with a frame size", code=ErrorCode.VIDEO_DECODE
                )
            tb = chosen.time_base
            duration = float(container.duration) / av.time_base if container.duration else None
            if duration is None and chosen.duration and tb is not None:
                duration = float(chosen.duration * tb)
            return _Stream(
                formats=frozenset(str(container.format.name).split(",")),
                position=videos.index(chosen),
                n_video=len(videos),
                width=int(chosen.codec_context.width),
                height=int(chosen.codec_context.height),
                start_s=float(chosen.start_time * tb) if chosen.start_time is not None and tb else 0.0,
                duration_s=duration,
                rate=float(chosen.guessed_rate or chosen.average_rate or 25),
            )
    except (av.FFmpegError, OSError, ValueError) as err:
        raise MediaDecodeError(
            f"{Path(path).name}: cannot open video ({first_line(err)})", code=ErrorCode.VIDEO_DECODE
        ) from err


def _sample_decord(
    path: str | Path, size: tuple[int, int], fps: float, max_frames: int, end_s: float | None
) -> SampledFrames | None:
    """Sample with decord; None when decord cannot open the file or its timestamps are not usable."""
    try:
        reader = decord.VideoReader(str(path), width=size[0], height=size[1])
        n = len(reader)
        pts = reader.get_frame_timestamp(range(n))[:, 0].astype(np.float64) if n else np.zeros(0)
    except (decord.DECORDError, RuntimeError, IndexError):
        return None  # PyAV gets its turn; its error, if any, is the one reported
    if n == 0 or not np.all(np.isfinite(pts)) or pts[0] < -1e-3 or np.any(np.diff(pts) <= 0):
        return None
    end = end_s if end_s else float(pts[-1]) + 1e-3
    indices = choose(pts, target_times(end, fps, max_frames))
    try:
        batch = reader.get_batch(indices.tolist()).asnumpy()
    except decord.DECORDError:
        return None  # a corrupt packet on the way, or a frame too small for its scaler: PyAV skips or copes
    return SampledFrames(indices, pts[indices], np.ascontiguousarray(batch[..., :3]), "decord")


def _sample_pyav(
    path: str | Path, stream: _Stream, size: tuple[int, int], fps: float, max_frames: int, end_s: float | None
) -> SampledFrames:
    """Sequential PyAV decode keeping the frames on screen at the target times; stops past the last."""
    picker = _Picker(fps, max_frames, end_s, size)
    log = _DecodeLog()
    name = Path(path).name
    try:
        with av.open(str(path)) as container:
            video = container.streams.video[stream.position]
            video.thread_type = "AUTO"
            for index, t, frame in _timed(_decoded(container, video, log), stream, log):
                if picker.offer(index, t, frame):
                    break
            else:  # the whole stream was read: what its index promised and the file lacks is lost too
                log.errors += max(0, int(video.frames or 0) - log.packets)
                picker.finish()
    except (av.FFmpegError, OSError, ValueError) as err:
        raise MediaDecodeError(
            f"{name}: cannot decode video ({first_line(err)})", code=ErrorCode.VIDEO_DECODE
        ) from err
    if log.undecodable():
        raise MediaDecodeError(
            f"{name}: {log.errors} of {log.frames + log.errors} packets or frames are missing or undecodable",
            code=ErrorCode.VIDEO_DECODE,
        )
    result = picker.result()
    result.decode_errors, result.synthetic_pts = log.errors, log.synthetic_pts
    return result


def _decoded(container: Any, video: Any, log: _DecodeLog) -> Iterator[Any]:
    """The stream's frames, packet by packet: a packet that fails to decode is counted and skipped.

    A demuxer that gives up mid-file (a cut-off or corrupt tail) ends the stream after one more count;
    the decoder is then drained of the frames it still holds.
    """
    packets = container.demux(video)
    while True:
        try:
            packet = next(packets, None)
        except (av.FFmpegError, OSError):
            log.errors += 1
            packet = None
        try:
            log.packets += packet is not None and packet.size > 0
            frames = video.decode(packet)  # None, or demux's final empty packet, drains the decoder
        except (av.FFmpegError, ValueError):  # InvalidDataError is both
            log.errors += 1
            frames = []
        for frame in frames:
            log.frames += 1
            log.errors += bool(frame.is_corrupt)
            yield frame
        if packet is None or packet.size == 0:
            return


def _timed(frames: Iterable[Any], stream: _Stream, log: _DecodeLog) -> Iterable[tuple[int, float, Any]]:
    """(index, seconds from the stream start, frame), never decreasing.

    Frames leave the decoder in presentation order, but AVI stores no PTS, so with B-frames the
    guessed PTS step back now and then: a running maximum keeps the order. A frame with no PTS at
    all (raw elementary streams) follows the previous one by the nominal frame duration, and is
    counted in the log.
    """
    t = -1.0 / stream.rate
    for index, frame in enumerate(frames):
        if frame.pts is None:
            t += 1.0 / stream.rate
            log.synthetic_pts += 1
        else:
            t = max(t, float(frame.pts * frame.time_base) - stream.start_s)
        yield index, t, frame


class _Picker:
    """Walk frames in presentation order; give each target the last frame with PTS <= target."""

    def __init__(self, fps: float, max_frames: int, end_s: float | None, size: tuple[int, int]) -> None:
        self.fps, self.end_s, self.size = fps, end_s, size
        self.n = len(target_times(end_s, fps, max_frames)) if end_s else max_frames
        self.k = 0
        self.prev: tuple[int, float, Any] | None = None
        self.kept: list[tuple[int, float, np.ndarray]] = []

    def offer(self, index: int, t: float, frame: Any) -> bool:
        """Take the next decoded frame; True once every target has its frame."""
        while self.k < self.n and self.k / self.fps + PTS_EPS_S < t:
            self._keep(self.prev or (index, t, frame))  # before the first PTS: the first frame
            self.k += 1
        self.prev = (index, t, frame)
        return self.k >= self.n

    def finish(self) -> None:
        """After the last frame: the targets left belong to it, if they fall inside the video."""
        if self.prev is None or self.k >= self.n:
            return
        if self.end_s or self.k / self.fps < self.prev[1] + 1e-3:
            self._keep(self.prev)

    def _keep(self, chosen: tuple[int, float, Any]) -> None:
        index, t, frame = chosen
        if self.kept and self.kept[-1][0] == index:
            return
        w, h = self.size
        pixels = frame.reformat(width=w, height=h, format="rgb24", interpolation="AREA").to_ndarray()
        self.kept.append((index, t, pixels))

    def result(self) -> SampledFrames:
        """The kept frames as arrays."""
        w, h = self.size
        if not self.kept:
            return SampledFrames(np.zeros(0, np.int64), np.zeros(0), np.zeros((0, h, w, 3), np.uint8), "pyav")
        return SampledFrames(
            np.array([k[0] for k in self.kept], dtype=np.int64),
            np.array([k[1] for k in self.kept], dtype=np.float64),
            np.stack([k[2] for k in self.kept]),
            "pyav",
        )
