"""What probing a container found (`ProbeInfo`), apart from `media.probe` and its PyAV import.

Decoded items carry it from the decode workers to the run's process, and unpickling imports the module
that defines a class: this one imports nothing heavy.
"""

from __future__ import annotations

from dataclasses import dataclass


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
