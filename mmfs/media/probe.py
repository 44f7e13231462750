"""Probe a container once with PyAV: streams, duration, frame rate, rotation, sample rate.

Rotation comes from the display matrix (PyAV exposes it on decoded frames as `VideoFrame.rotation`,
counter-clockwise), then the legacy `rotate` tag (clockwise). mmfs stores the clockwise angle that
turns decoded pixels upright, and reports the size as displayed.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

import av

from mmfs.errors import ErrorCode, MediaDecodeError, MediaError
from mmfs.media.probe_info import ProbeInfo

__all__ = ["ProbeInfo", "first_line", "normalise_rotation", "pick_stream", "probe"]


def probe(path: str | Path) -> ProbeInfo:
    """Open the container and describe it; MediaDecodeError when FFmpeg cannot open it."""
    name = Path(path).name
    try:
        with av.open(str(path)) as container:
            video = pick_stream(container.streams.video)
            audio = pick_stream(container.streams.audio)
            rotation = _rotation(container, video) if video is not None else 0
            return _describe(container, video, audio, rotation)
    except FileNotFoundError as err:
        raise MediaError(f"{name}: file not found", code=ErrorCode.NOT_FOUND) from err
    except (av.FFmpegError, OSError, ValueError) as err:
        raise MediaDecodeError(
            f"{name}: cannot open container ({first_line(err)})", code=ErrorCode.CONTAINER_CORRUPT
        ) from err


def pick_stream(streams: Iterable[Any]) -> Any:
    """The default-disposition stream, else the lowest index; cover art (attached pictures) never counts."""
    default = int(av.stream.Disposition.default)
    cover = int(av.stream.Disposition.attached_pic)
    candidates = sorted((s for s in streams if not int(s.disposition) & cover), key=lambda s: s.index)
    for stream in candidates:
        if int(stream.disposition) & default:
            return stream
    return candidates[0] if candidates else None


def _describe(container: Any, video: Any, audio: Any, rotation: int) -> ProbeInfo:
    width = height = None
    if video is not None:
        width, height = int(video.codec_context.width), int(video.codec_context.height)
        if rotation in (90, 270):
            width, height = height, width
    return ProbeInfo(
        container=str(container.format.name),
        duration_s=_duration(container, video, audio),
        has_video=video is not None,
        has_audio=audio is not None,
        width=width or None,
        height=height or None,
        fps=float(video.average_rate) if video is not None and video.average_rate else None,
        n_frames=int(video.frames) if video is not None and video.frames else None,
        rotation=rotation,
        video_codec=video.codec_context.name if video is not None else None,
        sample_rate=int(audio.codec_context.sample_rate) if audio is not None else None,
        channels=int(audio.codec_context.channels) if audio is not None else None,
        audio_codec=audio.codec_context.name if audio is not None else None,
        video_stream_index=int(video.index) if video is not None else None,
        audio_stream_index=int(audio.index) if audio is not None else None,
    )


def _duration(container: Any, video: Any, audio: Any) -> float | None:
    """Container duration, else the longest chosen stream's."""
    if container.duration is not None and container.duration > 0:
        return float(container.duration) / av.time_base
    spans = [
        float(s.duration * s.time_base)
        for s in (video, audio)
        if s is not None and s.duration and s.time_base is not None
    ]
    return max(spans) if spans else None


def _rotation(container: Any, video: Any) -> int:
    """Clockwise degrees to display upright: display matrix first, then the legacy tag."""
    try:
        frame = next(container.decode(video), None)
    except av.FFmpegError:
        frame = None  # an undecodable stream is the frame sampler's error to report, not the probe's
    ccw = float(frame.rotation or 0) if frame is not None else 0.0
    if ccw:
        return normalise_rotation(-ccw)
    # "rotate" in old MP4s; Matroska upper-cases tag names ("ROTATE")
    tag = {key.lower(): value for key, value in video.metadata.items()}.get("rotate")
    try:
        return normalise_rotation(float(tag)) if tag is not None else 0
    except ValueError:
        return 0


def normalise_rotation(clockwise_deg: float) -> int:
    """Round an angle to the nearest quarter turn in {0, 90, 180, 270}."""
    return round(clockwise_deg / 90.0) * 90 % 360


def first_line(err: BaseException) -> str:
    """The first line of an exception's text (FFmpeg messages can run on)."""
    lines = str(err).strip().splitlines()
    return lines[0] if lines else type(err).__name__
