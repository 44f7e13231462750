"""Sample video frames by presentation time, decoded at a reduced size, upright, in chunks.

The policy (`video.select`) says which frames; this module picks the decoder and streams the kept
frames through it chunk by chunk (`iter_frames`), so memory holds one chunk of decoded pixels at a
time; `sample_frames` collects them. Times come from the decoder's timestamps (seconds from the
stream's start), never index / nominal fps, so variable-frame-rate video samples correctly.

Decoders, in the order `auto` tries them: decord, which scales inside the decoder, but only where it
is frame-accurate (MP4/MOV and Matroska/WebM with one video stream and no rotation: in MPEG-TS,
MPEG-PS, FLV, ASF and H.264-in-AVI decord 0.6 returns wrong frames or timestamps, and it half-applies
display matrices); then PyAV, sequential, which counts damage (`decode_errors`, `synthetic_pts`).
OpenCV is a third decoder, used when asked for, on files with one video stream; so is torchcodec
(`torchcodec` on the CPU, `nvdec` on a CUDA GPU's decoder: `video.torchcodec_reader`, optional). A decoder
that cannot open a file hands it to the next (`fallback`), one that fails mid-stream hands over the rest, and
`SampledFrames.backend` names the decoder that finished. decord conceals damage without saying so: a
file it reads whole is not checked for it.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Literal

# PyAV before decord: decord bundles an older libavcodec and libvpx that, loaded first, take the
# symbols PyAV's own FFmpeg resolves (its VP8 encoder then fails to open: EINVAL)
import av  # noqa: F401
import decord
import numpy as np

from mmfs.errors import ErrorCode, MediaDecodeError
from mmfs.transforms.video.geometry import Geometry, ResizeMode, coded_size, plan_geometry, rotate
from mmfs.transforms.video.pyav_decoder import inspect, packet_times, sample_pyav
from mmfs.transforms.video.readers import open_decord, read_decord, read_opencv
from mmfs.transforms.video.select import PTS_EPS_S, Policy, Sampling, Snap, choose, target_times
from mmfs.transforms.video.torchcodec_reader import DEVICES as TORCHCODEC_DEVICES
from mmfs.transforms.video.torchcodec_reader import read_torchcodec
from mmfs.transforms.video.types import (
    CHUNK_FRAMES,
    SEQUENTIAL_DENSITY,
    Chunk,
    DecodeLog,
    SampledFrames,
    StreamInfo,
    stack,
)

__all__ = ["SampledFrames", "choose", "coded_size", "iter_frames", "rotate", "sample_frames", "target_times"]

Backend = Literal["auto", "decord", "pyav", "opencv", "torchcodec", "nvdec"]
WHOLE = 2**62  # a chunk size no video reaches: everything in one chunk

# PyAV format names (one of the comma-separated aliases) where decord's seeking is frame-exact.
DECORD_FORMATS = frozenset({"mov", "mp4", "matroska", "webm"})
SEEKABLE_FORMATS = DECORD_FORMATS  # containers whose index PyAV seeks by exactly


def sample_frames(
    path: str | Path,
    *,
    fps: float,
    max_frames: int,
    decode_short_side: int,
    rotation: int = 0,
    duration_s: float | None = None,
    backend: Backend = "auto",
    fallback: bool = False,
    sampling: Policy = "fps",
    every_k: int = 1,
    n_frames: int = 16,
    scene_times: Sequence[float] | None = None,
    resize: ResizeMode = "short_side",
    box: tuple[int, int] = (224, 224),
    snap: Snap = "on_screen",
) -> SampledFrames:
    """The policy's frames, upright, all in memory (see `iter_frames` for the streamed form)."""
    stream = iter_frames(
        path,
        fps=fps,
        max_frames=max_frames,
        decode_short_side=decode_short_side,
        rotation=rotation,
        duration_s=duration_s,
        backend=backend,
        fallback=fallback,
        sampling=sampling,
        every_k=every_k,
        n_frames=n_frames,
        scene_times=scene_times,
        resize=resize,
        box=box,
        snap=snap,
        chunk_frames=WHOLE,  # all in memory anyway: one chunk spares copying them into one array
    )
    chunks = list(stream)
    if not chunks:
        raise MediaDecodeError(f"{Path(path).name}: no decodable video frame", code=ErrorCode.VIDEO_DECODE)
    whole = chunks[0] if len(chunks) == 1 else stack([Chunk(c.indices, c.times_s, c.frames) for c in chunks])
    log = stream.log
    return SampledFrames(
        whole.indices, whole.times_s, whole.frames, stream.backend, log.errors, log.synthetic_pts
    )


def iter_frames(
    path: str | Path,
    *,
    fps: float,
    max_frames: int,
    decode_short_side: int,
    rotation: int = 0,
    duration_s: float | None = None,
    backend: Backend = "auto",
    fallback: bool = False,
    sampling: Policy = "fps",
    every_k: int = 1,
    n_frames: int = 16,
    scene_times: Sequence[float] | None = None,
    resize: ResizeMode = "short_side",
    box: tuple[int, int] = (224, 224),
    snap: Snap = "on_screen",
    chunk_frames: int = CHUNK_FRAMES,
) -> FrameStream:
    """The policy's frames as a stream of upright chunks of at most `chunk_frames` frames.

    A chunk is decoded only when the previous one has been taken, so memory holds one chunk of pixels.
    """
    spec = Sampling(
        policy=sampling,
        fps=fps,
        max_frames=max_frames,
        every_k=every_k,
        n_frames=n_frames,
        snap=snap,
        scene_times=tuple(scene_times or ()),
    )
    stream = inspect(path)
    geometry = plan_geometry(
        stream.width, stream.height, rotation=rotation, mode=resize, short_side=decode_short_side, box=box
    )
    order = decoder_order(backend, fallback, stream, rotation)
    end = duration_s or stream.duration_s
    return FrameStream(Path(path), stream, spec, geometry, rotation, end, order, chunk_frames)


def decord_reads_right(stream: StreamInfo, rotation: int) -> bool:
    """Whether decord gives the right frames and times for this file (see the module's docstring)."""
    return bool(stream.formats & DECORD_FORMATS) and stream.n_video == 1 and rotation % 360 == 0


def decoder_order(backend: Backend, fallback: bool, stream: StreamInfo, rotation: int) -> list[str]:
    """The decoders to try, in order: the one asked for (or auto's choice), then, with fallback, the rest.

    A decoder asked for by name that would read this file wrong (decord on a rotated file, say) is
    passed over when it is opened, like one that cannot open the file.
    """
    auto = ["decord", "pyav"] if decord_reads_right(stream, rotation) else ["pyav"]
    if backend == "auto":
        return auto
    return [backend, *(d for d in auto if d != backend)] if fallback else [backend]


class FrameStream:
    """Iterate to decode: upright chunks of kept frames; afterwards `backend` and `log` say how it went."""

    def __init__(
        self,
        path: Path,
        stream: StreamInfo,
        sampling: Sampling,
        geometry: Geometry,
        rotation: int,
        end_s: float | None,
        order: list[str],
        chunk_frames: int = CHUNK_FRAMES,
    ) -> None:
        self.path, self.stream, self.sampling, self.geometry = path, stream, sampling, geometry
        self.rotation, self.end_s, self.order, self.chunk = rotation, end_s, order, chunk_frames
        self.backend = ""
        self.log = DecodeLog()
        self._packets: tuple[np.ndarray, np.ndarray] | None = None

    def __iter__(self) -> Iterator[SampledFrames]:
        self._prepare()
        last_t = -np.inf
        for name in self.order:
            chunks = self._open(name)
            if chunks is None:
                continue
            self.backend = name
            try:
                for chunk in chunks:
                    fresh = chunk.times_s > last_t + PTS_EPS_S  # after a hand-over mid-stream: only the rest
                    if not fresh.any():
                        continue
                    last_t = float(chunk.times_s[fresh][-1])
                    yield self._finish(chunk, fresh)
                return
            except decord.DECORDError:
                continue  # a packet decord cannot decode, or a frame too small for its scaler: the next copes
        tried = ", ".join(self.order)
        raise MediaDecodeError(
            f"{self.path.name}: no decoder could read it (tried {tried})", code=ErrorCode.VIDEO_DECODE
        )

    def _prepare(self) -> None:
        """Fill in what a policy needs from the container: keyframe times, or the end for `uniform`."""
        spec = self.sampling
        if spec.policy == "keyframes":
            times, keys = self.packets()
            self.sampling = Sampling(**{**spec.__dict__, "key_times": tuple(times[keys].tolist())})
        if spec.policy == "uniform" and not self.end_s:
            times, _ = self.packets()
            self.end_s = float(times[-1]) + 1.0 / self.stream.rate if len(times) else None

    def packets(self) -> tuple[np.ndarray, np.ndarray]:
        """The container's packet times and keyframe flags (read once)."""
        if self._packets is None:
            self._packets = packet_times(self.path, self.stream)
        return self._packets

    def _open(self, name: str) -> Iterator[Chunk] | None:
        size = self.geometry.decode_size
        if name == "decord":
            if not decord_reads_right(self.stream, self.rotation):  # asked for by name: wrong frames here
                return None
            opened = open_decord(self.path, size, self.sampling, self.end_s)
            return None if opened is None else read_decord(*opened, chunk=self.chunk)
        if name == "opencv":
            if self.stream.n_video != 1:  # OpenCV picks its own stream; mmfs's choice could differ
                return None
            return read_opencv(self.path, size, self.packets()[0], self.sampling, self.end_s, self.chunk)
        if name in TORCHCODEC_DEVICES:  # torchcodec on the CPU or NVDEC: asked for by name only
            if self.stream.n_video != 1:  # it picks the best stream itself, as OpenCV does
                return None
            device = TORCHCODEC_DEVICES[name]
            pts = self.packets()[0]
            return read_torchcodec(self.path, size, pts, self.sampling, self.end_s, device, self.chunk)
        self.log = DecodeLog()
        return sample_pyav(
            self.path, self.stream, size, self.sampling, self.end_s, self.log, self.chunk, self._seek_index()
        )

    def _seek_index(self) -> tuple[np.ndarray, np.ndarray] | None:
        """The packet index, for PyAV to seek with, when the targets are sparse in a seekable container.

        Sparse as for decord: fewer than SEQUENTIAL_DENSITY of the frames between the first and the
        last target, counted from the stream's rate, so dense sampling reads no packet index at all.
        MP4/MOV and Matroska/WebM only: their indexes make a seek land where it says.
        """
        if self.sampling.by_index or not self.stream.formats & SEEKABLE_FORMATS:
            return None
        targets = self.sampling.targets(self.end_s)
        if targets is None or len(targets) < 2:
            return None
        span = (targets[-1] - targets[0]) * self.stream.rate + 1
        return self.packets() if len(targets) < SEQUENTIAL_DENSITY * span else None

    def _finish(self, chunk: Chunk, keep: np.ndarray) -> SampledFrames:
        if not keep.all():  # only after a hand-over; indexing copies, so never otherwise
            chunk = Chunk(chunk.indices[keep], chunk.times_s[keep], chunk.frames[keep])
        frames = self.geometry.finish(chunk.frames, self.rotation)
        return SampledFrames(chunk.indices, chunk.times_s, frames, self.backend)
