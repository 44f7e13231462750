"""The shared shapes of video decoding: the sampled result, a decoded chunk, the stream's description."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

# Frames a decoder hands on at a time: memory holds one chunk, not the whole video.
CHUNK_FRAMES = 32
# Kept frames per decoded frame above which reading every frame in order beats seeking to each.
SEQUENTIAL_DENSITY = 0.25
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
class Chunk:
    """Consecutive kept frames from one decoder, as decoded (coded orientation, decode size)."""

    indices: np.ndarray
    times_s: np.ndarray
    frames: np.ndarray


@dataclass
class DecodeLog:
    """What went wrong while decoding one stream."""

    packets: int = 0
    frames: int = 0
    errors: int = 0
    synthetic_pts: int = 0

    def undecodable(self) -> bool:
        """Whether errors outweigh what decoded: the stream is broken, not damaged."""
        return self.errors > MAX_DECODE_ERROR_SHARE * (self.frames + self.errors)


@dataclass(frozen=True)
class StreamInfo:
    """What the sampler needs to know about the chosen video stream."""

    formats: frozenset[str]
    position: int  # among the container's video streams
    n_video: int
    width: int
    height: int
    start_s: float
    duration_s: float | None
    rate: float


def stack(chunks: list[Chunk]) -> Chunk:
    """Chunks (at least one) joined into one."""
    return Chunk(
        np.concatenate([c.indices for c in chunks]).astype(np.int64),
        np.concatenate([c.times_s for c in chunks]).astype(np.float64),
        np.concatenate([c.frames for c in chunks]),
    )
