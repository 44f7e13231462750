"""Sampling policies, decoders and geometry on generated clips: times, indices, pixels and sizes.

Every policy is checked against the answer computed from the clip's known PTS list, under each decoder
(decord, PyAV, OpenCV): the same file gives the same frame times under each, and frames equal within
a mean absolute difference of 3 grey levels (the decoders' scalers differ slightly).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from mmfs.errors import MediaDecodeError
from mmfs.media.probe import probe
from mmfs.transforms.video.frames import iter_frames, sample_frames
from mmfs.transforms.video.geometry import plan_geometry
from mmfs.transforms.video.pyav_decoder import inspect, packet_times, sample_pyav
from mmfs.transforms.video.select import Sampling, choose
from mmfs.transforms.video.types import CHUNK_FRAMES, DecodeLog, stack
from tests import media_factory as mf
from tests.unit.test_frames import VFR_DURATION, VFR_GAPS, VFR_TIMES, grey_levels, write_clip
from tests.unit.test_probe import write_two_video_streams

BACKENDS = ("decord", "pyav", "opencv")
PIXEL_TOLERANCE = 3.0  # mean absolute difference between decoders, in grey levels


@pytest.fixture(scope="module")
def clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """3 s at 30 fps, a keyframe every 15 frames, textured so that decoders' pixels can be compared."""
    path = tmp_path_factory.mktemp("policies") / "clip.mp4"
    return mf.write_video(
        path, times_s=mf.constant_rate_times(90, 30), painter=mf.shot_painter(64, 48, [1.0, 2.0]), gop=15
    )


@pytest.fixture(scope="module")
def vfr_clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return mf.write_video(tmp_path_factory.mktemp("vfr") / "vfr.mp4", times_s=VFR_TIMES.tolist())


def run(path: Path, backend: str, **kwargs: object) -> object:
    args: dict = {"fps": 1.0, "max_frames": 100, "decode_short_side": 48, "backend": backend, **kwargs}
    return sample_frames(path, **args)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize(
    ("policy", "kwargs", "expected"),
    [
        ("fps", {"fps": 2.0}, list(range(0, 90, 15))),
        ("every_k", {"every_k": 20}, [0, 20, 40, 60, 80]),
        ("uniform", {"n_frames": 3}, [15, 45, 75]),  # centres of three 1 s spans
        ("keyframes", {}, [0, 15, 30, 45, 60, 75]),  # the container's keyframe flags (gop 15)
        ("scenes", {"scene_times": [0.0, 1.0, 2.0]}, [0, 30, 60]),
        ("every_k", {"every_k": 1, "max_frames": 4}, [0, 1, 2, 3]),  # the cap
        ("keyframes", {"max_frames": 2}, [0, 15]),
    ],
)
def test_policy_picks_known_frames(
    clip: Path, backend: str, policy: str, kwargs: dict, expected: list
) -> None:
    sampled = run(clip, backend, sampling=policy, **kwargs)
    assert sampled.backend == backend
    assert sampled.indices.tolist() == expected
    np.testing.assert_allclose(sampled.times_s, np.array(expected) / 30, atol=1e-3)
    assert sampled.frames.shape == (len(expected), 48, 64, 3)


def test_decoders_agree_on_times_and_pixels(clip: Path) -> None:
    runs = {b: run(clip, b, sampling="every_k", every_k=7) for b in BACKENDS}
    for b in ("pyav", "opencv"):
        assert runs[b].indices.tolist() == runs["decord"].indices.tolist()
        np.testing.assert_allclose(runs[b].times_s, runs["decord"].times_s, atol=1e-3)
        diff = np.abs(runs[b].frames.astype(float) - runs["decord"].frames.astype(float))
        assert diff.mean() <= PIXEL_TOLERANCE, b


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize(("policy", "kwargs"), [("fps", {"fps": 4.0}), ("uniform", {"n_frames": 7})])
def test_vfr_chosen_frame_is_on_screen_at_each_requested_time(
    vfr_clip: Path, backend: str, policy: str, kwargs: dict
) -> None:
    sampled = run(vfr_clip, backend, sampling=policy, duration_s=VFR_DURATION, **kwargs)
    spec = Sampling(policy=policy, max_frames=100, **kwargs)  # type: ignore[arg-type]
    targets = spec.targets(VFR_DURATION)
    assert targets is not None
    expected = choose(VFR_TIMES, targets)
    assert sampled.indices.tolist() == expected.tolist()
    ends = np.append(VFR_TIMES[1:], VFR_DURATION)
    for t in targets:  # the frame shown at t: t - its PTS is less than its own display interval
        k = int(np.searchsorted(sampled.times_s, t + 1e-6, side="right") - 1)
        index = sampled.indices[k]
        assert 0 <= t - sampled.times_s[k] + 1e-6 < ends[index] - VFR_TIMES[index] + 1e-6
    np.testing.assert_allclose(sampled.times_s, VFR_TIMES[expected], atol=1e-3)
    np.testing.assert_allclose(grey_levels(sampled.frames), expected * 8 % 256, atol=4)


def test_fallback_records_the_decoder_used(tmp_path: Path) -> None:
    two = write_two_video_streams(tmp_path / "two.mkv")  # OpenCV cannot be told which stream to read
    with pytest.raises(MediaDecodeError):
        run(two, "opencv")
    sampled = run(two, "opencv", fallback=True, fps=10.0)
    assert sampled.backend == "pyav"
    assert sampled.frames.shape[2] == 48  # the default-disposition stream, 48 px wide
    av1 = write_clip(tmp_path / "clip.mkv", 20, codec="libsvtav1")  # decord has no AV1 decoder
    assert run(av1, "decord", fallback=True).backend == "pyav"


def test_stream_yields_bounded_chunks(clip: Path) -> None:
    stream = iter_frames(clip, fps=1.0, max_frames=1000, decode_short_side=48, sampling="every_k")
    sizes = [len(chunk.indices) for chunk in stream]
    assert max(sizes) <= CHUNK_FRAMES and sum(sizes) == 90
    assert stream.backend == "decord"


def test_resize_modes_plan() -> None:
    assert plan_geometry(1920, 1080, mode="short_side", short_side=256).decode_size == (456, 256)
    assert plan_geometry(1920, 1080, mode="fit", box=(224, 224)).decode_size == (224, 126)
    crop = plan_geometry(1920, 1080, mode="center_crop", box=(224, 224))
    assert crop.decode_size == (398, 224) and crop.crop == (224, 224)
    turned = plan_geometry(1920, 1080, rotation=90, mode="fit", box=(100, 200))  # displayed 1080 x 1920
    assert turned.decode_size == (178, 100)  # shown 100 x 178; coded landscape, as the decoder sees it
    odd = plan_geometry(65, 49, mode="short_side", short_side=32)
    assert odd.decode_size == (42, 32)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize(("mode", "shape"), [("fit", (24, 32)), ("center_crop", (20, 20))])
def test_resize_modes_decode(clip: Path, backend: str, mode: str, shape: tuple[int, int]) -> None:
    box = (32, 32) if mode == "fit" else (20, 20)
    sampled = run(clip, backend, resize=mode, box=box)
    assert sampled.frames.shape[1:3] == shape


@pytest.mark.parametrize("backend", ["pyav", "opencv"])
def test_legacy_rotate_tag_comes_out_upright(tmp_path: Path, backend: str) -> None:
    def quadrant(_i: int, _t: float) -> np.ndarray:
        pixels = np.zeros((48, 64, 3), np.uint8)
        pixels[:24, :32] = 255
        return pixels

    tagged = mf.write_video(
        tmp_path / "tag.mkv", times_s=mf.constant_rate_times(5, 10), rotation=90, painter=quadrant
    )
    info = probe(tagged)
    assert info.rotation == 90
    frame = run(tagged, backend, rotation=info.rotation, decode_short_side=24).frames[0, :, :, 0]
    assert frame.shape == (32, 24)  # portrait as displayed
    assert frame[:16, 12:].mean() > 200 and frame[16:, :].mean() < 60  # top-left turned to top-right


@pytest.mark.parametrize("backend", BACKENDS)
def test_odd_size_no_audio(tmp_path: Path, backend: str) -> None:
    odd = mf.write_video(tmp_path / "odd.mkv", times_s=mf.constant_rate_times(10, 10), width=66, height=50)
    sampled = run(odd, backend, fps=5.0, decode_short_side=256)
    assert sampled.indices.tolist() == [0, 2, 4, 6, 8]
    assert sampled.frames.shape == (5, 50, 66, 3)
    np.testing.assert_allclose(grey_levels(sampled.frames), [0, 16, 32, 48, 64], atol=4)


def quadrant(_index: int, _t: float) -> np.ndarray:
    """A 64 x 48 frame, white in its top-left quarter: which way it was turned shows."""
    pixels = np.zeros((48, 64, 3), np.uint8)
    pixels[:24, :32] = 255
    return pixels


@pytest.mark.parametrize("backend", BACKENDS)
def test_display_matrix_rotation_comes_out_upright(tmp_path: Path, backend: str) -> None:
    """decord half-applies a display matrix (this frame came out mirrored): asked for, it hands over."""
    turned = mf.write_video(
        tmp_path / "phone.mp4", times_s=mf.constant_rate_times(5, 10), display_rotation=90, painter=quadrant
    )
    info = probe(turned)
    assert info.rotation == 270  # shown a quarter turn counter-clockwise: 270 clockwise, as recorded
    if backend == "decord":
        with pytest.raises(MediaDecodeError, match=r"tried decord"):
            run(turned, backend, rotation=info.rotation)
    sampled = run(turned, backend, rotation=info.rotation, decode_short_side=24, fps=10.0, fallback=True)
    assert sampled.backend == ("pyav" if backend == "decord" else backend)
    assert sampled.indices.tolist() == [0, 1, 2, 3, 4]
    frame = sampled.frames[0, :, :, 0]
    assert frame.shape == (32, 24)  # portrait as displayed
    assert frame[16:, :12].mean() > 200 and frame[:16, :].mean() < 60  # top-left turned to bottom-left


@pytest.mark.parametrize("backend", BACKENDS)
def test_odd_width_and_height(tmp_path: Path, backend: str) -> None:
    odd = mf.write_video(
        tmp_path / "odd.mkv", times_s=mf.constant_rate_times(10, 10), width=65, height=49, pix_fmt="yuv444p"
    )
    sampled = run(odd, backend, fps=5.0, decode_short_side=256)
    assert sampled.backend == backend and sampled.indices.tolist() == [0, 2, 4, 6, 8]
    assert sampled.frames.shape == (5, 48, 64, 3)  # scaled to even sizes inside the decoder, not upscaled
    np.testing.assert_allclose(grey_levels(sampled.frames), [0, 16, 32, 48, 64], atol=4)


@pytest.mark.parametrize("backend", BACKENDS)
def test_two_video_streams_fall_back_to_the_default_stream(tmp_path: Path, backend: str) -> None:
    """decord and OpenCV cannot be told which stream to read: PyAV takes over, and says so."""
    two = write_two_video_streams(tmp_path / "two.mkv")
    sampled = run(two, backend, fallback=True, fps=10.0)
    assert sampled.backend == "pyav"
    assert sampled.frames.shape[1:3] == (32, 48) and sampled.indices.tolist() == [0, 1, 2, 3, 4]


@pytest.mark.parametrize("backend", BACKENDS)
def test_file_cut_mid_stream_gives_the_frames_before_the_cut(tmp_path: Path, backend: str) -> None:
    whole = mf.write_video(tmp_path / "whole.mkv", times_s=mf.constant_rate_times(60, 10), gop=10)
    data = whole.read_bytes()
    cut = tmp_path / "cut.mkv"  # Matroska streams: what arrived of a broken download still plays
    cut.write_bytes(data[: int(len(data) * 0.6)])
    sampled = run(cut, backend, fps=10.0)
    assert sampled.backend == backend
    n = len(sampled.indices)
    assert 20 <= n < 60 and sampled.indices.tolist() == list(range(n))  # a prefix, in order, no gaps
    np.testing.assert_allclose(sampled.times_s, np.arange(n) / 10, atol=1e-6)
    np.testing.assert_allclose(grey_levels(sampled.frames), np.arange(n) * 8 % 256, atol=4)


def test_truncated_file_fails_every_decoder(tmp_path: Path, clip: Path) -> None:
    cut = mf.write_truncated(tmp_path / "cut.mp4", clip, keep_bytes=1500)
    for backend in BACKENDS:
        with pytest.raises(MediaDecodeError):
            run(cut, backend, fallback=True)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize(("policy", "kwargs"), [("fps", {"fps": 4.0}), ("uniform", {"n_frames": 7})])
def test_vfr_nearest_is_within_half_a_frame_interval(
    vfr_clip: Path, backend: str, policy: str, kwargs: dict
) -> None:
    sampled = run(vfr_clip, backend, sampling=policy, duration_s=VFR_DURATION, snap="nearest", **kwargs)
    spec = Sampling(policy=policy, max_frames=100, **kwargs)  # type: ignore[arg-type]
    targets = spec.targets(VFR_DURATION)
    assert targets is not None
    expected = choose(VFR_TIMES, targets, nearest=True)
    assert expected.tolist() != choose(VFR_TIMES, targets).tolist()  # the fixture tells the rules apart
    assert sampled.indices.tolist() == expected.tolist()
    bounds = np.append(VFR_TIMES, VFR_DURATION)  # the last frame is shown until the end
    for t in targets:  # the kept frame nearest t is at most half the interval around t away from it
        before = int(np.searchsorted(VFR_TIMES, t + 1e-6, side="right") - 1)
        gap = bounds[before + 1] - bounds[before]
        assert np.min(np.abs(sampled.times_s - t)) <= gap / 2 + 1e-3


def test_tiny_frames_decord_mangles_go_to_pyav(tmp_path: Path) -> None:
    tiny = mf.write_video(tmp_path / "tiny.mp4", times_s=mf.constant_rate_times(10, 10), width=2, height=2)
    sampled = run(tiny, "decord", fallback=True, fps=2.0, sampling="fps")  # dense: decord's next() path
    assert sampled.backend == "pyav"  # decord hands back 2 x 2 x 48 "frames" here
    assert sampled.indices.tolist() == [0, 5] and sampled.frames.shape == (2, 2, 2, 3)


def pyav_both_ways(path: Path, sampling: Sampling, end_s: float) -> tuple[list, list]:
    """`sample_pyav` decoding every frame, then seeking with the packet index: (frames, log) of each."""
    stream = inspect(path)
    results = []
    for seek_index in (None, packet_times(path, stream)):
        log = DecodeLog()
        chunks = list(sample_pyav(path, stream, (32, 24), sampling, end_s, log, 4, seek_index))
        results.append((stack(chunks), log))
    return results[0], results[1]


@pytest.mark.parametrize(
    "sampling",
    [
        Sampling(policy="fps", fps=1.0, max_frames=100),
        Sampling(policy="fps", fps=1.0, max_frames=100, snap="nearest"),
        Sampling(policy="uniform", n_frames=4, max_frames=100),
        Sampling(policy="scenes", scene_times=(0.5, 1.9, 2.5), max_frames=100),
    ],
)
def test_pyav_seeking_keeps_the_frames_sequential_decoding_keeps(clip: Path, sampling: Sampling) -> None:
    (sequential, read_all), (seeking, read_some) = pyav_both_ways(clip, sampling, 3.0)
    assert seeking.indices.tolist() == sequential.indices.tolist()
    np.testing.assert_array_equal(seeking.times_s, sequential.times_s)
    np.testing.assert_array_equal(seeking.frames, sequential.frames)
    assert read_some.frames < read_all.frames  # it skipped whole keyframe intervals
    assert read_some.errors == read_all.errors == 0


@pytest.mark.parametrize("snap", ["on_screen", "nearest"])
def test_pyav_seeking_on_variable_frame_rate(tmp_path: Path, snap: str) -> None:
    times = np.cumsum([0.0] + [VFR_GAPS[i % 3] for i in range(119)])  # 120 frames, gaps of 3 sizes
    vfr = mf.write_video(tmp_path / "vfr_gop.mp4", times_s=times.tolist(), gop=10)
    sampling = Sampling(policy="fps", fps=0.5, max_frames=100, snap=snap)  # type: ignore[arg-type]
    end = float(times[-1] + VFR_GAPS[0])
    (sequential, read_all), (seeking, read_some) = pyav_both_ways(vfr, sampling, end)
    expected = choose(times, sampling.targets(end), nearest=snap == "nearest")  # type: ignore[arg-type]
    assert seeking.indices.tolist() == sequential.indices.tolist() == expected.tolist()
    np.testing.assert_allclose(seeking.times_s, times[expected], atol=1e-3)
    np.testing.assert_array_equal(seeking.frames, sequential.frames)
    assert read_some.frames < read_all.frames


def test_pyav_reads_dense_targets_in_order(clip: Path) -> None:
    """Dense targets (every other frame) are cheaper read in order: no packet index is used."""
    stream = iter_frames(clip, fps=15.0, max_frames=1000, decode_short_side=48, backend="pyav")
    assert stream._seek_index() is None
    sparse = iter_frames(clip, fps=1.0, max_frames=1000, decode_short_side=48, backend="pyav")
    assert sparse._seek_index() is not None
