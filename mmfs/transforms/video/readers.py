"""The index-addressable decoders: decord (scales inside the decoder) and OpenCV (`cv2.VideoCapture`).

Both know every frame's time before decoding pixels (decord from its index, OpenCV through the
container's packet times), pick the policy's frames by index, and decode them in chunks. decord reads
sequentially when the kept frames are dense (at least SEQUENTIAL_DENSITY of the span between the first
and the last), and by `get_batch` otherwise, which seeks only past keyframes it does not need.
A reader returns None when it cannot open or index a file, so the next decoder gets its turn.
"""

from __future__ import annotations

import ctypes
from collections.abc import Iterator
from pathlib import Path

# PyAV before decord: decord bundles an older libavcodec and libvpx that, loaded first, take the
# symbols PyAV's own FFmpeg resolves (its VP8 encoder then fails to open: EINVAL)
import av  # noqa: F401
import decord
import numpy as np
from decord._ffi.base import _LIB, check_call

from mmfs.transforms.video.select import Sampling
from mmfs.transforms.video.types import CHUNK_FRAMES, SEQUENTIAL_DENSITY, Chunk

# FFmpeg threads of a decord reader: 0 is decord's default (a thread per CPU). One thread spent less
# CPU per clip (0.34 against 0.43 CPU-s per 30 s clip, same wall time, 640x360 H.264 on 2 cores), but
# a decode in the test suite hung in decord's native code with it (decord's get_batch hangs are known:
# dmlc/decord#269, #375), so the default stays until that is understood
DECORD_THREADS = 0


def open_decord(
    path: str | Path, size: tuple[int, int], sampling: Sampling, end_s: float | None
) -> tuple[decord.VideoReader, np.ndarray, np.ndarray] | None:
    """decord's reader at the decode size, every frame's PTS and the chosen indices; None when unusable."""
    try:
        reader = decord.VideoReader(str(path), width=size[0], height=size[1], num_threads=DECORD_THREADS)
        n = len(reader)
        pts = reader.get_frame_timestamp(range(n))[:, 0].astype(np.float64) if n else np.zeros(0)
    except (decord.DECORDError, RuntimeError, IndexError):
        return None  # PyAV gets its turn; its error, if any, is the one reported
    if n == 0 or not np.all(np.isfinite(pts)) or pts[0] < -1e-3 or np.any(np.diff(pts) <= 0):
        return None
    return reader, pts, sampling.indices(pts, end_s)


def read_decord(
    reader: decord.VideoReader, pts: np.ndarray, indices: np.ndarray, chunk: int = CHUNK_FRAMES
) -> Iterator[Chunk]:
    """The chosen frames in chunks of `chunk`; raises decord.DECORDError on a packet it cannot decode."""
    if len(indices) == 0:
        return
    span = int(indices[-1] - indices[0] + 1)
    dense = len(indices) >= SEQUENTIAL_DENSITY * span
    position = 0  # the frame a fresh reader's next() decodes
    for start in range(0, len(indices), chunk):
        part = indices[start : start + chunk]
        if dense:
            frames = _sequential(reader, part, position)
            position = int(part[-1]) + 1
        else:
            frames = reader.get_batch(part.tolist()).asnumpy()
        if frames.ndim != 4 or frames.shape[3] != 3:  # decord's scaler on frames of a few pixels
            raise decord.DECORDError(f"decord returned frames of shape {frames.shape}")
        yield Chunk(part, pts[part], frames)


def _sequential(reader: decord.VideoReader, part: np.ndarray, position: int) -> np.ndarray:
    """Decode every frame from the first of `part` to its last, copying the kept ones straight into
    one array (decord's own `asnumpy` would allocate each frame, then a stack would copy it again)."""
    wanted = part.tolist()
    if wanted[0] != position:
        reader.seek_accurate(wanted[0])
    out: np.ndarray | None = None
    base = frame_bytes = j = 0
    for i in range(wanted[0], wanted[-1] + 1):
        frame = reader.next()
        if i != wanted[j]:
            continue
        shape = tuple(frame.shape)
        if out is None:
            out = np.empty((len(wanted), *shape), dtype=np.uint8)
            base, frame_bytes = out.ctypes.data, out[0].nbytes
        if shape != out.shape[1:]:
            raise decord.DECORDError(f"decord returned a frame of shape {shape}")
        _copy_to(frame, base + j * frame_bytes, frame_bytes)
        j += 1
    assert out is not None
    return out


def _copy_to(frame: decord.ndarray.NDArray, address: int, nbytes: int) -> None:
    """decord's own `asnumpy` body (decord 0.6, pinned in pyproject), but into memory we own."""
    check_call(_LIB.DECORDArrayCopyToBytes(frame.handle, ctypes.c_void_p(address), ctypes.c_size_t(nbytes)))


def read_opencv(
    path: str | Path,
    size: tuple[int, int],
    pts: np.ndarray,
    sampling: Sampling,
    end_s: float | None,
    chunk: int = CHUNK_FRAMES,
) -> Iterator[Chunk] | None:
    """OpenCV's chosen frames in chunks (grab every frame, convert only the kept ones); None if unopenable.

    `pts` are the container's packet times: OpenCV itself only tells a frame's time once it is decoded.
    OpenCV cannot scale inside the decoder, so kept frames are resized with INTER_AREA after it.
    """
    import cv2

    cap = cv2.VideoCapture(str(path), cv2.CAP_FFMPEG)
    if not cap.isOpened() or len(pts) == 0:
        cap.release()
        return None
    cap.set(cv2.CAP_PROP_ORIENTATION_AUTO, 0)  # rotation is applied once, by mmfs, for every decoder
    return _opencv_frames(cap, size, sampling.indices(pts, end_s), chunk)


def _opencv_frames(cap: object, size: tuple[int, int], indices: np.ndarray, chunk: int) -> Iterator[Chunk]:
    import cv2

    assert isinstance(cap, cv2.VideoCapture)
    wanted = set(indices.tolist())
    last = int(indices[-1]) if len(indices) else -1
    kept: list[np.ndarray] = []
    taken: list[int] = []
    times: list[float] = []
    try:
        for i in range(last + 1):
            if not cap.grab():
                break
            if i not in wanted:
                continue
            ok, bgr = cap.retrieve()
            if not ok:
                continue
            if (bgr.shape[1], bgr.shape[0]) != size:
                bgr = cv2.resize(bgr, size, interpolation=cv2.INTER_AREA)
            kept.append(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB))
            taken.append(i)
            times.append(cap.get(cv2.CAP_PROP_POS_MSEC) / 1000.0)
            if len(kept) == chunk:
                yield Chunk(np.asarray(taken, np.int64), np.asarray(times), np.stack(kept))
                kept, taken, times = [], [], []
        if kept:
            yield Chunk(np.asarray(taken, np.int64), np.asarray(times), np.stack(kept))
    finally:
        cap.release()
