"""Probe, frame sampling by PTS (CFR, VFR, rotation, backends) and optical flow on known motion."""

from __future__ import annotations

from pathlib import Path

import av
import numpy as np
import pytest

from mmfs.config import FlowConfig
from mmfs.errors import ErrorCode, MediaDecodeError
from mmfs.media.probe import probe
from mmfs.schemas.tables import MOTION_FEATURES
from mmfs.transforms.flow import flow_sequence, motion_vector
from mmfs.transforms.frames import SampledFrames, choose, sample_frames, sample_with_pyav, target_times
from tests import media_factory as mf


@pytest.fixture(scope="module")
def clip30(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """3 s at 30 fps, grey level encodes the index, with a 440 Hz audio track."""
    path = tmp_path_factory.mktemp("v") / "clip30.mp4"
    return mf.write_video(
        path, times_s=mf.constant_rate_times(90, 30), width=64, height=48, audio_tone_hz=440
    )


def test_probe_reads_streams_duration_and_rate(clip30: Path) -> None:
    info = probe(clip30)
    assert info.has_video and info.has_audio
    assert info.duration_s == pytest.approx(3.0, abs=0.05)
    assert info.fps == pytest.approx(30.0)
    assert (info.width, info.height, info.rotation) == (64, 48, 0)
    assert info.n_frames == 90 and info.video_codec == "h264"


def test_probe_refuses_truncated_container(clip30: Path, tmp_path: Path) -> None:
    broken = mf.write_truncated(tmp_path / "broken.mp4", clip30, keep_bytes=1500)
    with pytest.raises(MediaDecodeError) as info:
        probe(broken)
    assert info.value.code == ErrorCode.CONTAINER_CORRUPT and "broken.mp4" in str(info.value)


def test_probe_audio_only(tmp_path: Path) -> None:
    info = probe(mf.write_wav(tmp_path / "a.wav", duration_s=1.5, sample_rate=22050, channels=2))
    assert not info.has_video and info.has_audio
    assert (info.sample_rate, info.channels) == (22050, 2)
    assert info.duration_s == pytest.approx(1.5, abs=0.01)


def test_one_fps_picks_frames_by_pts(clip30: Path) -> None:
    frames = sample_frames(clip30, fps=1.0, max_frames=100, decode_short_side=48)
    assert frames.backend == "decord"
    assert frames.indices.tolist() == [0, 30, 60]
    assert np.allclose(frames.times_s, [0.0, 1.0, 2.0], atol=1e-3)
    grey = [round(f.mean()) for f in frames.frames]
    expected = [(i * 8) % 256 for i in (0, 30, 60)]
    assert all(abs(g - e) <= 3 for g, e in zip(grey, expected, strict=True))


def test_decode_size_and_cap(clip30: Path) -> None:
    frames = sample_frames(clip30, fps=10.0, max_frames=7, decode_short_side=24)
    assert len(frames.indices) == 7
    assert frames.frames.shape[1:] == (24, 32, 3)


def test_variable_frame_rate_samples_by_time(tmp_path: Path) -> None:
    gaps = [0.02, 0.06] * 40
    pts = np.concatenate([[0.0], np.cumsum(gaps)])[:80]
    path = mf.write_video(tmp_path / "vfr.mp4", times_s=pts.tolist())
    frames = sample_frames(path, fps=4.0, max_frames=100, decode_short_side=48)
    targets = target_times(float(pts[-1]) + 0.06, 4.0, 100)
    expected = sorted({int(np.flatnonzero(pts <= t + 1e-6).max()) for t in targets})
    assert frames.indices.tolist() == expected
    assert np.allclose(frames.times_s, pts[expected], atol=1e-3)
    nominal = np.array(expected) / 25.0  # what index / nominal fps would have claimed
    assert not np.allclose(frames.times_s, nominal, atol=0.01)


def test_pyav_backend_matches_decord(clip30: Path) -> None:
    a = sample_frames(clip30, fps=2.0, max_frames=100, decode_short_side=48)
    b = sample_with_pyav(clip30, fps=2.0, max_frames=100, decode_short_side=48)
    assert b.backend == "pyav"
    assert a.indices.tolist() == b.indices.tolist()
    assert np.allclose(a.times_s, b.times_s, atol=1e-3)
    assert np.abs(a.frames.astype(int) - b.frames.astype(int)).mean() < 2.0


def test_rotation_is_applied(tmp_path: Path) -> None:
    path = tmp_path / "phone.mp4"
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=10)
        stream.width, stream.height, stream.pix_fmt = 64, 48, "yuv420p"
        stream.set_display_rotation(-90)  # FFmpeg counter-clockwise degrees: a portrait phone clip
        for i in range(5):
            pixels = np.zeros((48, 64, 3), np.uint8)
            pixels[:10, :20] = 255  # a bright top-left corner
            frame = av.VideoFrame.from_ndarray(pixels, format="rgb24")
            frame.pts = i
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    info = probe(path)
    assert (info.rotation, info.width, info.height) == (90, 48, 64)
    frames = sample_frames(path, fps=10.0, max_frames=3, decode_short_side=48, rotation=info.rotation)
    bright = np.argwhere(frames.frames[0, :, :, 0] > 128)
    assert frames.frames.shape[1:3] == (64, 48)
    assert bright[:, 0].max() < 22 and bright[:, 1].min() > 34  # top-left went to top-right


def test_choose_handles_targets_before_first_frame() -> None:
    pts = np.array([0.5, 1.0, 1.5])
    assert choose(pts, np.array([0.0, 0.25, 1.2, 2.0])).tolist() == [0, 1, 2]


def test_flow_measures_a_known_translation(tmp_path: Path) -> None:
    painter = mf.translating_painter(96, 64, dx_per_frame=3.0, dy_per_frame=-2.0, seed=1)
    pixels = np.stack([painter(i, 0.0) for i in range(4)])
    frames = SampledFrames(np.arange(4), np.arange(4) * 0.5, pixels, "test")
    pairs = flow_sequence(frames, FlowConfig(work_width=96))
    assert len(pairs) == 3
    for pair in pairs:
        assert pair.mean_dx == pytest.approx(3.0, abs=0.5)
        assert pair.mean_dy == pytest.approx(-2.0, abs=0.5)
        assert pair.moving_frac > 0.8 and pair.dt_s == pytest.approx(0.5)
        angle = np.arctan2(-2.0, 3.0) % (2 * np.pi)  # image y points down
        assert int(np.argmax(pair.orient_hist)) == int(angle // (2 * np.pi / 8))
        assert pair.orient_hist.sum() == pytest.approx(1.0, abs=1e-5)
        assert pair.field.shape == (16, 16, 2) and pair.field.dtype == np.float16
    vec = motion_vector(pairs[0])
    assert vec.shape == (len(MOTION_FEATURES),) and np.isfinite(vec).all()


def test_flow_on_a_still_scene_is_zero() -> None:
    still = mf.textured_frame(96, 64, seed=2)
    frames = SampledFrames(np.arange(2), np.array([0.0, 1.0]), np.stack([still, still]), "test")
    (pair,) = flow_sequence(frames, FlowConfig(work_width=96))
    assert pair.mean_mag < 0.05 and pair.moving_frac < 0.01
    assert not pair.orient_hist.any() or pair.orient_hist.sum() == pytest.approx(1.0)
