"""The PyAV decoder: stream inspection, the container's keyframe times, and sampling.

PyAV decodes packet by packet: a packet that fails to decode (mid-stream corruption) is counted and
skipped, a frame the decoder marks corrupt (concealed) is kept and counted, and so is each packet the
container's index lists but the file lacks (a cut-off download). Frames without a PTS get one from a
counter. Each target's frame is kept as it passes, scaled with `reformat` inside FFmpeg's swscale.

It decodes sequentially, unless the caller hands it the container's packet index for sparse targets
in a seekable container (`seek_index`): then, whenever a keyframe lies between the last decoded frame
and the next target, it seeks to that keyframe instead of decoding every frame up to it (1 fps from a
30 fps phone clip with a keyframe a second decodes about half the frames). Frame indices then come
from the index (the position of each frame's PTS among the packets'), as sequential decoding counts them.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

import av
import numpy as np

from mmfs.errors import ErrorCode, MediaDecodeError
from mmfs.media.probe import first_line, pick_stream
from mmfs.transforms.video.select import PTS_EPS_S, Sampling
from mmfs.transforms.video.types import CHUNK_FRAMES, Chunk, DecodeLog, StreamInfo


def inspect(path: str | Path) -> StreamInfo:
    """Read the chosen video stream's coded size, start, duration and rate."""
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
            return StreamInfo(
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


def packet_times(path: str | Path, stream: StreamInfo) -> tuple[np.ndarray, np.ndarray]:
    """Every packet's presentation time (seconds from the stream start, sorted) and keyframe flag.

    Demuxing only, no decoding: this is the container's own index of frames and keyframes.
    """
    times, keys = [], []
    try:
        with av.open(str(path)) as container:
            video = container.streams.video[stream.position]
            for packet in container.demux(video):
                if packet.size and packet.pts is not None and packet.time_base is not None:
                    times.append(float(packet.pts * packet.time_base) - stream.start_s)
                    keys.append(bool(packet.is_keyframe))
    except (av.FFmpegError, OSError) as err:
        raise MediaDecodeError(
            f"{Path(path).name}: cannot read packets ({first_line(err)})", code=ErrorCode.VIDEO_DECODE
        ) from err
    order = np.argsort(np.asarray(times, dtype=np.float64), kind="stable")
    return np.asarray(times, dtype=np.float64)[order], np.asarray(keys, dtype=bool)[order]


def sample_pyav(
    path: str | Path,
    stream: StreamInfo,
    size: tuple[int, int],
    sampling: Sampling,
    end_s: float | None,
    log: DecodeLog,
    chunk: int = CHUNK_FRAMES,
    seek_index: tuple[np.ndarray, np.ndarray] | None = None,
) -> Iterator[Chunk]:
    """Decode keeping the policy's frames, in chunks; stops past the last target.

    `seek_index` (every packet's time, sorted, and keyframe flags: `packet_times`) turns on seeking
    past the frames no target needs; without it every frame is decoded in order.
    """
    picker = _Picker(sampling, end_s, size)
    name = Path(path).name
    if seek_index is not None and not _seekable(path, stream, seek_index):
        seek_index = None  # no usable index (a Matroska file without cues): every frame, in order
    try:
        with av.open(str(path)) as container:
            video = container.streams.video[stream.position]
            video.thread_type = "AUTO"
            if seek_index is None:
                frames = _timed(_decoded(container, video, log), stream, log)
            else:
                frames = _seeking(container, video, stream, log, seek_index, picker.next_target)
            try:
                for index, t, frame in frames:
                    done = picker.offer(index, t, frame)
                    if len(picker.kept) >= chunk:
                        yield picker.flush()
                    if done:
                        break
                else:  # the whole stream was read: what its index promised and the file lacks is lost too
                    # (seeking skips some)
                    present = log.packets if seek_index is None else len(seek_index[0])
                    log.errors += max(0, int(video.frames or 0) - present)
                    picker.finish()
            finally:
                # the demuxing generators and their last packet go before the container closes: a packet
                # freed after it (when the garbage collector got to an abandoned generator, in the middle
                # of another decode) freed its stream's frame-threaded codec context last, and
                # avcodec_free_context waited forever on its threads (seen in the test suite)
                getattr(frames, "close", lambda: None)()
    except (av.FFmpegError, OSError, ValueError) as err:
        raise MediaDecodeError(
            f"{name}: cannot decode video ({first_line(err)})", code=ErrorCode.VIDEO_DECODE
        ) from err
    if log.undecodable():
        raise MediaDecodeError(
            f"{name}: {log.errors} of {log.frames + log.errors} packets or frames are missing or undecodable",
            code=ErrorCode.VIDEO_DECODE,
        )
    if picker.kept:
        yield picker.flush()


def _decoded(container: Any, video: Any, log: DecodeLog) -> Iterator[Any]:
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


def _seekable(path: str | Path, stream: StreamInfo, seek_index: tuple[np.ndarray, np.ndarray]) -> bool:
    """Whether the demuxer can seek in this file at all (FFmpeg refuses some with EPERM)."""
    try:
        with av.open(str(path)) as container:
            video = container.streams.video[stream.position]
            if video.time_base is None:
                return False
            first = float(seek_index[0][0]) if len(seek_index[0]) else 0.0
            container.seek(round((first + stream.start_s) / video.time_base), stream=video)
    except av.FFmpegError:
        return False
    return True


def _seeking(
    container: Any,
    video: Any,
    stream: StreamInfo,
    log: DecodeLog,
    seek_index: tuple[np.ndarray, np.ndarray],
    next_target: Callable[[], float | None],
) -> Iterator[tuple[int, float, Any]]:
    """(index, seconds from the stream start, frame) of the frames near each target, in time order.

    Before each frame it asks for the target still waiting; when the last keyframe at or before that
    target lies past the last frame decoded, it seeks there (the decoder is flushed by the seek) and
    drops what the demuxer hands back from before it. A frame without a PTS cannot be placed: that is
    a decode error of the file.
    """
    times, keys = seek_index
    key_times = times[keys]
    frames: Iterator[Any] | None = None
    last_t, floor = -np.inf, -np.inf
    while (target := next_target()) is not None:
        before = int(np.searchsorted(key_times, target + PTS_EPS_S, side="right")) - 1
        key = float(key_times[before]) if before >= 0 else -np.inf
        if key > last_t + PTS_EPS_S and key > floor + PTS_EPS_S:  # a keyframe between here and there
            floor = key  # (sought once: a damaged keyframe that gives no frame is read past, not again)
            container.seek(round((key + stream.start_s) / video.time_base), stream=video, backward=True)
            frames = None
        if frames is None:
            frames = _decoded(container, video, log)
        frame = next(frames, None)
        if frame is None:
            return
        if frame.pts is None:
            raise ValueError("a frame without a timestamp: cannot seek")  # reported with the file's name
        t = float(frame.pts * frame.time_base) - stream.start_s
        if t < floor - PTS_EPS_S or t <= last_t + PTS_EPS_S:  # before the keyframe sought, or seen already
            continue
        last_t = t
        yield int(np.searchsorted(times, t - PTS_EPS_S)), t, frame


def _timed(frames: Iterable[Any], stream: StreamInfo, log: DecodeLog) -> Iterable[tuple[int, float, Any]]:
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
    """Walk frames in presentation order; give each target the last frame with PTS <= target.

    With `every_k`, keep frames 0, k, 2k, ... in decode order instead.
    """

    def __init__(self, sampling: Sampling, end_s: float | None, size: tuple[int, int]) -> None:
        self.sampling, self.size = sampling, size
        targets = None if sampling.by_index else sampling.targets(end_s)
        self.targets = targets
        self.n = sampling.max_frames if targets is None else len(targets)
        self.k = 0
        self.prev: tuple[int, float, Any] | None = None
        self.kept: list[tuple[int, float, np.ndarray]] = []
        self.last_index = -1

    def _target(self, k: int) -> float:
        return float(self.targets[k]) if self.targets is not None else self.sampling.target(k)

    def next_target(self) -> float | None:
        """The time of the first target still waiting for its frame (None: all have one, or by index)."""
        return None if self.sampling.by_index or self.k >= self.n else self._target(self.k)

    def offer(self, index: int, t: float, frame: Any) -> bool:
        """Take the next decoded frame; True once every target has its frame."""
        if self.sampling.by_index:
            if index % self.sampling.every_k == 0:
                self._keep((index, t, frame))
                self.k += 1
            return self.k >= self.n
        nearest = self.sampling.snap == "nearest"
        while self.k < self.n and (target := self._target(self.k)) + PTS_EPS_S < t:
            chosen = self.prev or (index, t, frame)  # before the first PTS: the first frame
            if nearest and t - target < target - chosen[1] - PTS_EPS_S:
                chosen = (index, t, frame)  # the next frame is closer to the target than the one shown
            self._keep(chosen)
            self.k += 1
        self.prev = (index, t, frame)
        return self.k >= self.n

    def finish(self) -> None:
        """After the last frame: the targets left belong to it, if they fall inside the video."""
        if self.sampling.by_index or self.prev is None or self.k >= self.n:
            return
        if self.targets is not None or self._target(self.k) < self.prev[1] + 1e-3:
            self._keep(self.prev)

    def _keep(self, chosen: tuple[int, float, Any]) -> None:
        index, t, frame = chosen
        if index == self.last_index:
            return
        self.last_index = index
        w, h = self.size
        pixels = frame.reformat(width=w, height=h, format="rgb24", interpolation="AREA").to_ndarray()
        self.kept.append((index, t, pixels))

    def flush(self) -> Chunk:
        """The frames kept since the last flush, as one chunk."""
        kept, self.kept = self.kept, []
        return Chunk(
            np.array([k[0] for k in kept], dtype=np.int64),
            np.array([k[1] for k in kept], dtype=np.float64),
            np.stack([k[2] for k in kept]),
        )
