"""Decoded audio frames to (channels, samples) float32, and a streaming polyphase resampler (soxr HQ).

Every array here is (channels, samples): a packed (interleaved) frame is de-interleaved before anything
else, so the channel axis is never confused with time. Resampling streams block by block through
soxr's polyphase filter: memory stays flat in duration, and no FFT of the whole signal is taken.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import soxr

QUALITY = "HQ"  # soxr: 20-bit precision, linear phase; what librosa's default ("soxr_hq") uses

# Integer PCM formats and the scale that maps them onto [-1, 1) (u8 is offset binary around 128).
_INT_SCALE = {"u8": 128.0, "s16": 32768.0, "s32": 2.0**31, "s64": 2.0**63}


def frame_array(frame: Any) -> np.ndarray:
    """One decoded PyAV audio frame as float32 (channels, samples), whatever its sample format."""
    channels = frame.layout.nb_channels
    raw = frame.to_ndarray()
    if not frame.format.is_planar:  # packed: (1, samples * channels), channel-interleaved
        raw = raw.reshape(-1, channels).T
    name = frame.format.name.rstrip("p")
    if name in _INT_SCALE:
        out = raw.astype(np.float32)
        if name == "u8":
            out -= 128.0
        out /= np.float32(_INT_SCALE[name])
        return out
    return np.asarray(raw, dtype=np.float32)


class BlockResampler:
    """(channels, n) blocks at one source rate in, blocks at the target rate out.

    The total output is exactly round(samples in * target / source): soxr's stream already gives that
    length; the count is enforced anyway (trim or zero-pad the last block), so a window grid computed
    from the duration always finds its samples.
    """

    def __init__(self, source_rate: int, target_rate: int, channels: int) -> None:
        self.source_rate, self.target_rate, self.channels = source_rate, target_rate, channels
        self._stream = (
            None
            if source_rate == target_rate
            else soxr.ResampleStream(source_rate, target_rate, channels, dtype="float32", quality=QUALITY)
        )
        self._fed = 0
        self._made = 0

    def push(self, block: np.ndarray) -> np.ndarray:
        """Resample one block; the output may be shorter than its share (the filter's delay)."""
        self._fed += block.shape[1]
        if self._stream is None:
            out = block
        else:  # soxr takes (samples, channels)
            out = self._stream.resample_chunk(np.ascontiguousarray(block.T), last=False).T
        return self._emit(out, last=False)

    def flush(self) -> np.ndarray:
        """The samples the filter still holds, so that the total is exact."""
        if self._stream is None:
            return np.zeros((self.channels, 0), np.float32)
        empty = np.zeros((0, self.channels), np.float32)
        return self._emit(self._stream.resample_chunk(empty, last=True).T, last=True)

    def _emit(self, out: np.ndarray, *, last: bool) -> np.ndarray:
        owed = round(self._fed * self.target_rate / self.source_rate) - self._made
        if out.shape[1] > owed:
            out = out[:, : max(owed, 0)]
        elif last and out.shape[1] < owed:
            out = np.pad(out, ((0, 0), (0, owed - out.shape[1])))
        self._made += out.shape[1]
        return np.asarray(out, dtype=np.float32)
