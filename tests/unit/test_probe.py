"""Container probing on generated media: streams, duration, rate, rotation, and broken files."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest

from mmfs.errors import ErrorCode, MediaDecodeError, MediaError
from mmfs.media.probe import normalise_rotation, probe
from tests import media_factory as mf


def write_rotated(path: Path, ccw_degrees: int, width: int = 64, height: int = 48, n: int = 6) -> Path:
    """An H.264 MP4 with a display matrix (as phones write) and a white top-left quadrant."""
    tb = Fraction(1, 90000)
    with av.open(str(path), mode="w") as container:
        stream = container.add_stream("libx264", rate=30)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        stream.time_base = stream.codec_context.time_base = tb
        stream.options = {"bf": "0", "preset": "ultrafast"}
        stream.set_display_rotation(ccw_degrees)
        pixels = np.zeros((height, width, 3), np.uint8)
        pixels[: height // 2, : width // 2] = 255
        for i in range(n):
            frame = av.VideoFrame.from_ndarray(pixels, format="rgb24")
            frame.pts, frame.time_base = round(i / 30 / tb), tb
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path


def write_two_video_streams(path: Path) -> Path:
    """A Matroska file with two video streams; the second (48 px wide) carries the default flag."""
    with av.open(str(path), mode="w") as container:
        streams = []
        for i in range(2):
            stream = container.add_stream("libx264", rate=10)
            stream.width, stream.height, stream.pix_fmt = 32 + 16 * i, 32, "yuv420p"
            stream.disposition = av.stream.Disposition.default if i else av.stream.Disposition(0)
            streams.append(stream)
        for k in range(5):
            for stream in streams:
                shape = (stream.height, stream.width, 3)
                frame = av.VideoFrame.from_ndarray(np.zeros(shape, np.uint8), format="rgb24")
                frame.pts, frame.time_base = k, Fraction(1, 10)
                for packet in stream.encode(frame):
                    container.mux(packet)
        for stream in streams:
            for packet in stream.encode():
                container.mux(packet)
    return path


def test_probe_video_with_audio(tmp_path: Path) -> None:
    clip = mf.write_video(tmp_path / "tone.mp4", times_s=mf.constant_rate_times(30, 30), audio_tone_hz=440)
    info = probe(clip)
    assert "mp4" in info.container.split(",")
    assert info.duration_s == pytest.approx(1.0, abs=0.05)
    assert info.has_video and info.has_audio
    assert (info.width, info.height) == (64, 48)
    assert info.fps == pytest.approx(30.0)
    assert info.n_frames == 30
    assert info.rotation == 0
    assert (info.video_codec, info.audio_codec) == ("h264", "aac")
    assert (info.sample_rate, info.channels) == (44100, 1)
    assert (info.video_stream_index, info.audio_stream_index) == (0, 1)


def test_truncated_mp4_is_container_corrupt(tmp_path: Path) -> None:
    clip = mf.write_video(tmp_path / "whole.mp4", times_s=mf.constant_rate_times(30, 30))
    broken = mf.write_truncated(tmp_path / "cut.mp4", clip, keep_bytes=1000)
    with pytest.raises(MediaDecodeError) as caught:
        probe(broken)
    assert caught.value.code == ErrorCode.CONTAINER_CORRUPT
    assert "cut.mp4" in str(caught.value)
    assert isinstance(caught.value.__cause__, av.FFmpegError)


def test_missing_file_is_not_found(tmp_path: Path) -> None:
    with pytest.raises(MediaError) as caught:
        probe(tmp_path / "nowhere.mp4")
    assert caught.value.code == ErrorCode.NOT_FOUND


def test_audio_only_wav(tmp_path: Path) -> None:
    wav = mf.write_wav(tmp_path / "tone.wav", duration_s=1.5, sample_rate=16000, channels=2)
    info = probe(wav)
    assert not info.has_video and info.has_audio
    assert info.width is None and info.fps is None and info.video_stream_index is None
    assert (info.sample_rate, info.channels, info.audio_codec) == (16000, 2, "pcm_s16le")
    assert info.duration_s == pytest.approx(1.5, abs=1e-3)


@pytest.mark.parametrize(("ccw", "clockwise"), [(90, 270), (-90, 90), (180, 180)])
def test_display_matrix_rotation(tmp_path: Path, ccw: int, clockwise: int) -> None:
    info = probe(write_rotated(tmp_path / f"rot{ccw}.mp4", ccw))
    assert info.rotation == clockwise
    expected = (48, 64) if clockwise in (90, 270) else (64, 48)
    assert (info.width, info.height) == expected


def test_legacy_rotate_tag(tmp_path: Path) -> None:
    # This FFmpeg drops the tag from MP4, but Matroska keeps it (as "ROTATE"): the legacy path.
    clip = mf.write_video(tmp_path / "tagged.mkv", times_s=mf.constant_rate_times(3, 10), rotation=90)
    info = probe(clip)
    assert (info.rotation, info.width, info.height) == (90, 48, 64)


def test_default_disposition_stream_is_chosen(tmp_path: Path) -> None:
    info = probe(write_two_video_streams(tmp_path / "two.mkv"))
    assert info.video_stream_index == 1
    assert info.width == 48


@pytest.mark.parametrize(("angle", "expected"), [(0, 0), (-90, 270), (90.4, 90), (-180, 180), (360, 0)])
def test_normalise_rotation(angle: float, expected: int) -> None:
    assert normalise_rotation(angle) == expected
