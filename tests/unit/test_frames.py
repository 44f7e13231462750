"""Frame sampling by presentation time: known indices, times, grey levels, sizes and rotation."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest

from mmfs.errors import ErrorCode, MediaDecodeError
from mmfs.media.probe import probe
from mmfs.transforms.video.frames import choose, coded_size, rotate, sample_frames, target_times
from tests import media_factory as mf

# Gaps cycling 40, 60, 110 ms: variable frame rate where "largest PTS <= t" differs from both the
# nearest frame and index = t * mean fps, and one PTS (0.25 s) lands exactly on a 4 fps target.
VFR_GAPS = (0.04, 0.06, 0.11)
VFR_TIMES = np.cumsum([0.0] + [VFR_GAPS[i % 3] for i in range(29)])
VFR_DURATION = float(VFR_TIMES[-1] + VFR_GAPS[0])


def write_clip(
    path: Path,
    n: int,
    *,
    codec: str = "libx264",
    pix_fmt: str = "yuv420p",
    rate: int = 25,
    ccw_rotation: int = 0,
    quadrant: bool = False,
) -> Path:
    """A constant-rate clip (grey level index * 8) in any codec, optionally with a display matrix
    and a white top-left quadrant on black to check orientation."""
    tb = Fraction(1, rate)
    with av.open(str(path), mode="w") as container:
        stream = container.add_stream(codec, rate=rate)
        stream.width, stream.height, stream.pix_fmt = 64, 48, pix_fmt
        if ccw_rotation:
            stream.set_display_rotation(ccw_rotation)
        for i in range(n):
            pixels = np.full((48, 64, 3), i * 8 % 256, np.uint8)
            if quadrant:
                pixels[:] = 0
                pixels[:24, :32] = 255
            frame = av.VideoFrame.from_ndarray(pixels, format="rgb24")
            frame.pts, frame.time_base = i, tb
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path


def expected_choice(pts: np.ndarray, fps: float, duration: float) -> np.ndarray:
    """The answer computed straight from the PTS list: largest PTS <= each target, de-duplicated."""
    chosen = []
    for t in target_times(duration, fps, 10_000):
        on_screen = np.nonzero(pts <= t + 1e-9)[0]
        chosen.append(on_screen[-1] if len(on_screen) else 0)
    return np.unique(chosen)


def grey_levels(frames: np.ndarray) -> np.ndarray:
    return frames.reshape(len(frames), -1).mean(axis=1)


@pytest.fixture(scope="module")
def cfr_clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return mf.write_video(tmp_path_factory.mktemp("cfr") / "cfr.mp4", times_s=mf.constant_rate_times(90, 30))


@pytest.fixture(scope="module")
def vfr_clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return mf.write_video(tmp_path_factory.mktemp("vfr") / "vfr.mp4", times_s=VFR_TIMES.tolist())


def test_target_times() -> None:
    assert target_times(3.0, 1.0, 100).tolist() == [0.0, 1.0, 2.0]
    assert target_times(2.5, 2.0, 100).tolist() == [0.0, 0.5, 1.0, 1.5, 2.0]
    assert target_times(3.0, 1.0, 2).tolist() == [0.0, 1.0]
    assert target_times(0.0, 1.0, 5).tolist() == [0.0]


def test_choose_takes_frame_on_screen() -> None:
    pts = np.array([0.1, 0.3, 0.5, 0.9])
    # before the first PTS: the first frame; 0.3 and 0.4 both show frame 1, reported once
    assert choose(pts, np.array([0.0, 0.3, 0.4, 0.8, 1.0])).tolist() == [0, 1, 2, 3]


def test_cfr_one_fps_gives_known_frames(cfr_clip: Path) -> None:
    sampled = sample_frames(cfr_clip, fps=1.0, max_frames=100, decode_short_side=256)
    assert sampled.backend == "decord"
    assert sampled.indices.dtype == np.int64 and sampled.indices.tolist() == [0, 30, 60]
    np.testing.assert_allclose(sampled.times_s, [0.0, 1.0, 2.0], atol=1e-3)
    assert sampled.frames.shape == (3, 48, 64, 3) and sampled.frames.dtype == np.uint8
    np.testing.assert_allclose(grey_levels(sampled.frames), [0, 240, 224], atol=4)
    with_duration = sample_frames(
        cfr_clip, fps=1.0, max_frames=100, decode_short_side=256, duration_s=probe(cfr_clip).duration_s
    )
    assert with_duration.indices.tolist() == [0, 30, 60]


@pytest.mark.parametrize("backend", ["decord", "pyav"])
def test_vfr_picks_largest_pts_at_or_before_target(vfr_clip: Path, backend: str) -> None:
    expected = expected_choice(VFR_TIMES, 4.0, VFR_DURATION)
    nearest = [int(np.argmin(abs(VFR_TIMES - t))) for t in target_times(VFR_DURATION, 4.0, 100)]
    assert expected.tolist() != nearest  # the fixture tells the two rules apart
    sampled = sample_frames(
        vfr_clip, fps=4.0, max_frames=100, decode_short_side=256, duration_s=VFR_DURATION, backend=backend
    )
    assert sampled.backend == backend
    assert sampled.indices.tolist() == expected.tolist()
    np.testing.assert_allclose(sampled.times_s, VFR_TIMES[expected], atol=1e-3)
    np.testing.assert_allclose(grey_levels(sampled.frames), expected * 8 % 256, atol=4)


def test_pyav_and_decord_agree(cfr_clip: Path) -> None:
    runs = {
        b: sample_frames(cfr_clip, fps=3.0, max_frames=100, decode_short_side=24, backend=b)
        for b in ("decord", "pyav")
    }
    assert runs["decord"].indices.tolist() == runs["pyav"].indices.tolist() == list(range(0, 90, 10))
    np.testing.assert_allclose(runs["decord"].times_s, runs["pyav"].times_s, atol=1e-3)
    assert runs["decord"].frames.shape == runs["pyav"].frames.shape == (9, 24, 32, 3)
    np.testing.assert_allclose(grey_levels(runs["decord"].frames), grey_levels(runs["pyav"].frames), atol=3)


def test_falls_back_to_pyav_when_decord_cannot_open(tmp_path: Path) -> None:
    av1 = write_clip(tmp_path / "clip.mkv", 20, codec="libsvtav1")  # decord's FFmpeg has no AV1 decoder
    with pytest.raises(MediaDecodeError):
        sample_frames(av1, fps=5.0, max_frames=100, decode_short_side=256, backend="decord")
    sampled = sample_frames(av1, fps=5.0, max_frames=100, decode_short_side=256)
    assert sampled.backend == "pyav"
    assert sampled.indices.tolist() == [0, 5, 10, 15]
    np.testing.assert_allclose(sampled.times_s, [0.0, 0.2, 0.4, 0.6], atol=1e-3)
    np.testing.assert_allclose(grey_levels(sampled.frames), [0, 40, 80, 120], atol=6)


def test_gif_and_mpegts_decode_with_pyav(tmp_path: Path) -> None:
    gif = write_clip(tmp_path / "clip.gif", 20, codec="gif", pix_fmt="rgb8")
    ts = mf.write_video(tmp_path / "clip.ts", times_s=mf.constant_rate_times(60, 30))
    for path, expected in ((gif, [0, 10]), (ts, [0, 15, 30, 45])):
        fps = 25 / 10 if path == gif else 2.0
        sampled = sample_frames(path, fps=fps, max_frames=100, decode_short_side=256)
        assert sampled.backend == "pyav"  # decord cannot open GIF, and seeks wrongly in MPEG-TS
        assert sampled.indices.tolist() == expected
    np.testing.assert_allclose(grey_levels(sampled.frames), [0, 120, 240, 104], atol=4)


def test_max_frames_caps(cfr_clip: Path) -> None:
    sampled = sample_frames(cfr_clip, fps=1.0, max_frames=2, decode_short_side=256)
    assert sampled.indices.tolist() == [0, 30]
    dense = sample_frames(cfr_clip, fps=30.0, max_frames=5, decode_short_side=256, backend="pyav")
    assert dense.indices.tolist() == [0, 1, 2, 3, 4]


def test_decode_size_short_side(tmp_path: Path) -> None:
    assert coded_size(1920, 1080, 256) == (456, 256)
    assert coded_size(1080, 1920, 256) == (256, 456)
    assert coded_size(64, 48, 256) == (64, 48)  # never upscaled
    clip = mf.write_video(tmp_path / "wide.mp4", times_s=mf.constant_rate_times(4, 4), width=128, height=72)
    for backend in ("decord", "pyav"):
        sampled = sample_frames(clip, fps=1.0, max_frames=10, decode_short_side=32, backend=backend)
        assert sampled.frames.shape == (1, 32, 56, 3)


def test_rotate_is_clockwise() -> None:
    stack = np.array([[1, 2], [3, 4]])[None, :, :, None]
    assert rotate(stack, 90)[0, :, :, 0].tolist() == [[3, 1], [4, 2]]
    assert rotate(stack, 180)[0, :, :, 0].tolist() == [[4, 3], [2, 1]]
    assert rotate(stack, 270)[0, :, :, 0].tolist() == [[2, 4], [1, 3]]
    assert rotate(stack, 0) is stack


@pytest.mark.parametrize(("ccw", "bright_corner"), [(90, "bottom_left"), (-90, "top_right")])
def test_rotated_clip_comes_out_upright(tmp_path: Path, ccw: int, bright_corner: str) -> None:
    clip = write_clip(tmp_path / "rot.mp4", 5, ccw_rotation=ccw, quadrant=True)
    info = probe(clip)
    sampled = sample_frames(clip, fps=5.0, max_frames=10, decode_short_side=24, rotation=info.rotation)
    frame = sampled.frames[0, :, :, 0].astype(float)
    assert frame.shape == (32, 24)  # portrait after rotation, short side 24
    quadrants = {
        "top_left": frame[:16, :12].mean(),
        "top_right": frame[:16, 12:].mean(),
        "bottom_left": frame[16:, :12].mean(),
        "bottom_right": frame[16:, 12:].mean(),
    }
    assert max(quadrants, key=lambda q: quadrants[q]) == bright_corner
    assert quadrants[bright_corner] > 200


def test_undecodable_inputs_raise_video_decode(tmp_path: Path, cfr_clip: Path) -> None:
    wav = mf.write_wav(tmp_path / "tone.wav")
    truncated = mf.write_truncated(tmp_path / "cut.mp4", cfr_clip, keep_bytes=1000)
    for path in (wav, truncated):
        with pytest.raises(MediaDecodeError) as caught:
            sample_frames(path, fps=1.0, max_frames=10, decode_short_side=64)
        assert caught.value.code == ErrorCode.VIDEO_DECODE
        assert path.name in str(caught.value)
