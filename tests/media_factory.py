"""Generated media fixtures with known answers: video with exact PTS, tones, images, text.

One factory for every test (STYLE habit 11). Videos are written with PyAV so each frame's presentation
time is set explicitly, which is what lets tests check timestamps, variable frame rate and rotation.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import soundfile as sf

FramePainter = Callable[[int, float], np.ndarray]


def textured_frame(width: int, height: int, seed: int = 0) -> np.ndarray:
    """A smooth random texture (RGB uint8): rich enough for optical flow to lock on."""
    rng = np.random.default_rng(seed)
    small = rng.integers(0, 256, size=(height // 8 + 2, width // 8 + 2, 3), dtype=np.uint8)
    import cv2

    big = cv2.resize(small, (width + 16, height + 16), interpolation=cv2.INTER_CUBIC)
    return big[:height, :width].copy()


def translating_painter(
    width: int, height: int, dx_per_frame: float, dy_per_frame: float, seed: int = 0
) -> FramePainter:
    """Frames of one texture shifted by (dx, dy) pixels per frame index: a known motion."""
    pad = 64 + int(abs(dx_per_frame) + abs(dy_per_frame)) * 64
    base = textured_frame(width + 2 * pad, height + 2 * pad, seed)

    def paint(index: int, _t: float) -> np.ndarray:
        ox = round(pad - dx_per_frame * index)
        oy = round(pad - dy_per_frame * index)
        return base[oy : oy + height, ox : ox + width].copy()

    return paint


def counter_painter(width: int, height: int) -> FramePainter:
    """Frames whose mean grey level encodes the frame index (index * 8 % 256)."""

    def paint(index: int, _t: float) -> np.ndarray:
        return np.full((height, width, 3), (index * 8) % 256, dtype=np.uint8)

    return paint


def shot_painter(width: int, height: int, cuts_s: Sequence[float]) -> FramePainter:
    """Hard cuts at the given times: each shot a differently tinted texture drifting 1 px per frame."""
    tints = np.array([[1.0, 0.25, 0.25], [0.25, 1.0, 0.25], [0.25, 0.25, 1.0], [1.0, 1.0, 0.2]])
    bases = [textured_frame(width + 64, height, seed=10 + k) for k in range(len(cuts_s) + 1)]

    def paint(index: int, t: float) -> np.ndarray:
        shot = int(np.searchsorted(np.asarray(cuts_s), t + 1e-9, side="right"))
        view = bases[shot][:, index % 64 : index % 64 + width] * tints[shot % len(tints)]
        return view.astype(np.uint8)

    return paint


def write_video(
    path: Path,
    *,
    times_s: Sequence[float],
    width: int = 64,
    height: int = 48,
    painter: FramePainter | None = None,
    codec: str = "libx264",
    time_base: Fraction = Fraction(1, 90000),
    rotation: int = 0,
    display_rotation: int = 0,
    pix_fmt: str = "yuv420p",
    audio_tone_hz: float | None = None,
    audio_rate: int = 44100,
    gop: int | None = None,
) -> Path:
    """Write a video whose frame i has presentation time times_s[i] (exact, so VFR is possible).

    rotation writes a legacy `rotate` tag (degrees) as old phone files do; display_rotation a display
    matrix turning the picture that many degrees counter-clockwise, as phones write today; pix_fmt
    yuv444p allows odd sizes; audio_tone_hz adds a mono sine track covering the video's duration; gop
    fixes the keyframe interval (libx264).
    """
    painter = painter or counter_painter(width, height)
    path.parent.mkdir(parents=True, exist_ok=True)
    duration = float(times_s[-1]) + (float(times_s[-1]) - float(times_s[-2]) if len(times_s) > 1 else 0.04)
    with av.open(str(path), mode="w") as container:
        stream = container.add_stream(codec, rate=30)
        stream.width, stream.height = width, height
        stream.pix_fmt = pix_fmt
        stream.time_base = time_base
        stream.codec_context.time_base = time_base
        if codec == "libx264":
            stream.options = {"bf": "0", "preset": "ultrafast"}
            if gop:
                gop_options = {"g": str(gop), "keyint_min": str(gop), "sc_threshold": "0"}
                stream.options = {**stream.options, **gop_options}
        if rotation:
            stream.metadata["rotate"] = str(rotation)
        if display_rotation:
            stream.set_display_rotation(display_rotation)
        audio_stream = None
        if audio_tone_hz is not None:
            audio_stream = container.add_stream("aac", rate=audio_rate)
            audio_stream.layout = "mono"
        for i, t in enumerate(times_s):
            frame = av.VideoFrame.from_ndarray(painter(i, float(t)), format="rgb24")
            frame.pts = round(float(t) / time_base)
            frame.time_base = time_base
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
        if audio_stream is not None:
            tone = sine(audio_tone_hz or 440.0, duration, audio_rate)
            _encode_audio(container, audio_stream, tone[None, :], audio_rate)
    return path


def _encode_audio(container: av.container.OutputContainer, stream, samples: np.ndarray, rate: int) -> None:
    frame_size = 1024
    pts = 0
    for start in range(0, samples.shape[1], frame_size):
        chunk = np.ascontiguousarray(samples[:, start : start + frame_size], dtype=np.float32)
        frame = av.AudioFrame.from_ndarray(chunk, format="fltp", layout="mono")
        frame.sample_rate = rate
        frame.pts = pts
        pts += chunk.shape[1]
        for packet in stream.encode(frame):
            container.mux(packet)
    for packet in stream.encode():
        container.mux(packet)


def constant_rate_times(n_frames: int, fps: float) -> list[float]:
    """Presentation times of a constant-frame-rate clip."""
    return [i / fps for i in range(n_frames)]


def sine(freq_hz: float, duration_s: float, sample_rate: int, amplitude: float = 0.5) -> np.ndarray:
    """A float32 sine tone."""
    t = np.arange(round(duration_s * sample_rate)) / sample_rate
    return (amplitude * np.sin(2 * np.pi * freq_hz * t)).astype(np.float32)


def write_wav(
    path: Path,
    *,
    duration_s: float = 1.0,
    sample_rate: int = 16000,
    channels: int = 1,
    freq_hz: float = 440.0,
    subtype: str = "PCM_16",
    samples: np.ndarray | None = None,
) -> Path:
    """Write a tone (or the given samples, shape (n,) or (n, channels)) as a WAV file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if samples is None:
        mono = sine(freq_hz, duration_s, sample_rate)
        samples = np.stack([mono * (0.5 + 0.5 * c / max(channels, 1)) for c in range(channels)], axis=1)
    sf.write(str(path), samples, sample_rate, subtype=subtype)
    return path


def write_image(path: Path, *, width: int = 96, height: int = 64, seed: int = 0) -> Path:
    """Write a textured RGB image (format from the suffix: .png, .jpg)."""
    from PIL import Image

    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(textured_frame(width, height, seed)).save(path)
    return path


def write_text(path: Path, text: str, encoding: str = "utf-8") -> Path:
    """Write text in the given encoding."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(text.encode(encoding))
    return path


def write_truncated(path: Path, source: Path, keep_bytes: int = 2000) -> Path:
    """Copy the first bytes of a real file: a container whose index (moov) is missing."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(source.read_bytes()[:keep_bytes])
    return path
