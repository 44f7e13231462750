"""A playable WAV snippet of one segment of an item's audio, cut from its recorded source file.

The file is found from the item's `media` row only (its `uri` and `uris`): a client names a media id
and a time span, never a path, so no request can reach a file the store did not ingest. A file that
changed size since ingest is refused (it is no longer the item).
"""

from __future__ import annotations

import io
import wave
from pathlib import Path
from typing import Any

import numpy as np

from mmfs.errors import ConfigError, MediaDecodeError, MediaError

MAX_CLIP_S = 30.0
SAMPLE_RATE = 16_000


def source_file(row: dict[str, Any]) -> Path | None:
    """The first recorded local path of the item that still holds the same number of bytes."""
    for uri in [row.get("uri"), *(row.get("uris") or [])]:
        if not uri:
            continue
        if "://" in uri and not uri.startswith("file://"):
            continue  # object-store items are not served
        path = Path(uri.removeprefix("file://"))
        try:
            if path.is_file() and (row.get("bytes") is None or path.stat().st_size == row["bytes"]):
                return path
        except OSError:
            continue
    return None


def check_span(start_s: float, end_s: float, duration_s: float | None) -> tuple[float, float]:
    """The span clipped to the item, refused when empty, reversed or longer than MAX_CLIP_S."""
    if not (np.isfinite(start_s) and np.isfinite(end_s)) or start_s < 0 or end_s <= start_s:
        raise ConfigError("a clip needs 0 <= start < end")
    if end_s - start_s > MAX_CLIP_S:
        raise ConfigError(f"a clip is at most {MAX_CLIP_S:.0f} s long")
    if duration_s is not None:
        end_s = min(end_s, duration_s)
        if end_s <= start_s:
            raise ConfigError("the clip starts after the end of the item")
    return start_s, end_s


def decode_span(path: Path, start_s: float, end_s: float) -> np.ndarray:
    """Mono float32 samples at SAMPLE_RATE of [start_s, end_s) of the file's first audio stream."""
    import av

    try:
        with av.open(str(path)) as container:
            if not container.streams.audio:
                raise MediaError(f"{path.name} has no audio stream")
            stream = container.streams.audio[0]
            if start_s > 0:
                container.seek(int(start_s * av.time_base), backward=True, any_frame=False)
            resampler = av.AudioResampler(format="flt", layout="mono", rate=SAMPLE_RATE)
            chunks, first_t = _collect(container, stream, resampler, end_s)
    except (av.FFmpegError, ValueError) as err:
        raise MediaDecodeError(f"{path.name}: cannot decode audio: {err}") from err
    if not chunks:
        return np.zeros(0, dtype=np.float32)
    samples = np.concatenate(chunks)
    skip = max(0, round((start_s - first_t) * SAMPLE_RATE))
    return np.clip(samples[skip : skip + round((end_s - start_s) * SAMPLE_RATE)], -1.0, 1.0)


def _collect(container: Any, stream: Any, resampler: Any, end_s: float) -> tuple[list[np.ndarray], float]:
    """Resampled chunks from the current position until past `end_s`, and the time of the first."""
    chunks: list[np.ndarray] = []
    first_t: float | None = None
    for frame in container.decode(stream):
        t = float(frame.pts * frame.time_base) if frame.pts is not None else (first_t or 0.0)
        if first_t is None:
            first_t = t
        for out in resampler.resample(frame):
            chunks.append(out.to_ndarray().reshape(-1).astype(np.float32))
        if t > end_s:
            break
    return chunks, first_t or 0.0


def wav_bytes(samples: np.ndarray, sample_rate: int = SAMPLE_RATE) -> bytes:
    """16-bit PCM mono WAV bytes."""
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(sample_rate)
        out.writeframes((np.clip(samples, -1.0, 1.0) * 32767).astype("<i2").tobytes())
    return buffer.getvalue()
