"""torchcodec's decoder behind the same reader interface as decord and OpenCV: CPU, or NVDEC on CUDA.

Asked for by name (`video.backend: torchcodec` on the CPU, `nvdec` on the GPU's video decoder); never
chosen by `auto`. Like OpenCV it gets the container's packet times (PyAV's demuxer, no decoding),
lets the sampling policy pick frame indices from them, decodes those frames by index in chunks
(`seek_mode="exact"`), resizes them to the decode size (area-averaged, on the decoder's device) and
hands back HxWx3 uint8 RGB chunks on the CPU. It returns None when torchcodec is not installed (the
optional `gpu` extra; it needs the system FFmpeg libraries) or cannot open the file, so the next
decoder gets its turn. On CUDA, decode in-process (`runner.isolate_decode: false`): a forked decode
worker cannot start CUDA.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from mmfs.transforms.video.select import Sampling
from mmfs.transforms.video.types import CHUNK_FRAMES, Chunk

DEVICES = {"torchcodec": "cpu", "nvdec": "cuda"}  # backend name -> torchcodec device


def available(device: str = "cpu") -> bool:
    """Whether torchcodec imports (and, for CUDA, whether a CUDA device is there)."""
    try:
        import torch
        import torchcodec.decoders  # noqa: F401
    except (ImportError, OSError, RuntimeError):  # OSError/RuntimeError: its FFmpeg libraries missing
        return False
    return device == "cpu" or torch.cuda.is_available()


def read_torchcodec(
    path: str | Path,
    size: tuple[int, int],
    pts: np.ndarray,
    sampling: Sampling,
    end_s: float | None,
    device: str = "cpu",
    chunk: int = CHUNK_FRAMES,
) -> Iterator[Chunk] | None:
    """The chosen frames in chunks at `size` (w, h); None when torchcodec is absent or cannot open it."""
    if len(pts) == 0 or not available(device):
        return None
    from torchcodec.decoders import VideoDecoder

    try:
        decoder = VideoDecoder(str(path), device=device, seek_mode="exact", dimension_order="NCHW")
        n = decoder.metadata.num_frames
    except (RuntimeError, ValueError, OSError):
        return None
    if n is None or n != len(pts):  # its frame count must match the packet index the policy used
        return None
    return _chunks(decoder, pts, sampling.indices(pts, end_s), size, chunk)


def _chunks(
    decoder: Any, pts: np.ndarray, indices: np.ndarray, size: tuple[int, int], chunk: int
) -> Iterator[Chunk]:
    for start in range(0, len(indices), chunk):
        part = indices[start : start + chunk]
        batch = decoder.get_frames_at(indices=[int(i) for i in part])
        yield Chunk(part, pts[part], _resized(batch.data, size))


def _resized(frames: Any, size: tuple[int, int]) -> np.ndarray:
    """(n, 3, h, w) uint8 frames (any device) as (n, H, W, 3) uint8 on the CPU at `size` (w, h)."""
    import torch.nn.functional as F

    w, h = size
    if frames.shape[-1] != w or frames.shape[-2] != h:
        frames = F.interpolate(frames.float(), size=(h, w), mode="area").round_().clamp_(0, 255).byte()
    return np.ascontiguousarray(frames.permute(0, 2, 3, 1).cpu().numpy())
