"""Probe a container once with PyAV: streams, duration, frame rate, rotation, sample rate.

Rotation comes from the display matrix (read from the first decoded frame, where FFmpeg exposes it),
then the legacy `rotate` tag. mmfs stores it as the clockwise angle that makes the picture upright.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import av
import av.logging

from mmfs.errors import ErrorCode, MediaDecodeError

# FFmpeg's own log lines would interleave with mmfs's; its last error is carried in our messages.
av.logging.set_level(av.logging.PANIC)


@dataclass(frozen=True)
class ProbeInfo:
    """What the container says about itself; sizes are as displayed (after rotation)."""

    container: str
    duration_s: float | None
    has_video: bool
    has_audio: bool
    width: int | None
    height: int | None
    fps: float | None
    n_frames: int | None
    rotation: int
    video_codec: str | None
    sample_rate: int | None
    channels: int | None
    audio_codec: str | None
    video_stream_index: int | None
    audio_stream_index: int | None


def probe(path: str | Path) -> ProbeInfo:
    """Open the container and describe it; MediaDecodeError when FFmpeg cannot open it."""
    name = Path(path).name
    try:
        with av.open(str(path)) as container:
            video = _pick(container.streams.video)
            audio = _pick(container.streams.audio)
            rotation = _rotation(container, video) if video is not None else 0
            return _describe(container, video, audio, rotation)
    except (av.FFmpegError, OSError, ValueError, IndexError) as err:
        raise MediaDecodeError(
            f"{name}: cannot open container ({_first_line(err)})", code=ErrorCode.CONTAINER_CORRUPT
        ) from err


def _describe(container: Any, video: Any, audio: Any, rotation: int) -> ProbeInfo:
    width = height = None
    if video is not None:
        width, height = video.codec_context.width, video.codec_context.height
        if rotation in (90, 270):
            width, height = height, width
    return ProbeInfo(
        container=container.format.name,
        duration_s=_duration(container, video, audio),
        has_video=video is not None,
        has_audio=audio is not None,
        width=width,
        height=height,
        fps=float(video.average_rate) if video is not None and video.average_rate else None,
        n_frames=int(video.frames) if video is not None and video.frames else None,
        rotation=rotation,
        video_codec=video.codec_context.name if video is not None else None,
        sample_rate=int(audio.codec_context.sample_rate) if audio is not None else None,
        channels=int(audio.codec_context.channels) if audio is not None else None,
        audio_codec=audio.codec_context.name if audio is not None else None,
        video_stream_index=video.index if video is not None else None,
        audio_stream_index=audio.index if audio is not None else None,
    )


def _pick(streams: Any) -> Any:
    """The default-disposition stream, else the lowest index (deterministic for multi-stream files)."""
    streams = sorted(streams, key=lambda s: s.index)
    if not streams:
        return None
    for stream in streams:
        if int(stream.disposition) & int(av.stream.Disposition.default):
            return stream
    return streams[0]


def _duration(container: Any, video: Any, audio: Any) -> float | None:
    if container.duration is not None and container.duration > 0:
        return float(container.duration) / av.time_base
    spans = [
        float(s.duration * s.time_base)
        for s in (video, audio)
        if s is not None and s.duration is not None and s.time_base is not None
    ]
    return max(spans) if spans else None


def _rotation(container: Any, video: Any) -> int:
    """Clockwise degrees to display upright: display matrix first, then the legacy tag."""
    ccw = 0.0
    try:
        frame = next(container.decode(video))
        ccw = float(getattr(frame, "rotation", 0) or 0)
    except (StopIteration, av.FFmpegError):
        ccw = 0.0
    if not ccw:
        tag = video.metadata.get("rotate")
        if tag is not None:
            try:
                return round(float(tag) / 90.0) * 90 % 360
            except ValueError:
                return 0
    return round(-ccw / 90.0) * 90 % 360


def _first_line(err: BaseException) -> str:
    text = str(err).strip().splitlines()
    return text[0] if text else type(err).__name__
