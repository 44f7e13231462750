"""The torchcodec reader (`video.backend: torchcodec`, `nvdec`) behind the frame-reader interface.

Where torchcodec is installed (the optional `gpu` extra) its frames, indices and times must equal
PyAV's at the coded size; on a CUDA machine NVDEC's must too (decoded on the GPU, `gpu` marker). Where
it is absent, asking for it by name falls back to the next decoder, which the result names.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from mmfs.transforms.video.frames import Backend, SampledFrames, sample_frames
from mmfs.transforms.video.torchcodec_reader import available
from tests import media_factory as mf


@pytest.fixture(scope="module")
def clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("tc") / "clip.mp4"
    mf.write_video(path, times_s=mf.constant_rate_times(75, 25), painter=mf.counter_painter(96, 64))
    return path


def _sample(clip: Path, backend: Backend, fallback: bool = False) -> SampledFrames:
    return sample_frames(
        clip, fps=2.0, max_frames=100, decode_short_side=64, backend=backend, fallback=fallback
    )


def test_torchcodec_asked_for_falls_back_when_absent(clip: Path) -> None:
    got = _sample(clip, "torchcodec", fallback=True)
    assert got.backend == ("torchcodec" if available("cpu") else "decord")
    assert len(got.times_s) == 6


@pytest.mark.skipif(not available("cpu"), reason="torchcodec is not installed (optional extra: .[gpu])")
def test_torchcodec_frames_equal_pyav_at_the_coded_size(clip: Path) -> None:
    ours, ref = _sample(clip, "torchcodec"), _sample(clip, "pyav")
    np.testing.assert_array_equal(ours.indices, ref.indices)
    np.testing.assert_allclose(ours.times_s, ref.times_s, atol=1e-6)
    np.testing.assert_array_equal(ours.frames, ref.frames)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device: NVDEC runs on a GPU only")
@pytest.mark.skipif(not available("cpu"), reason="torchcodec is not installed (optional extra: .[gpu])")
def test_nvdec_frames_match_the_cpu_decoder(clip: Path) -> None:
    ours, ref = _sample(clip, "nvdec"), _sample(clip, "pyav")
    assert ours.backend == "nvdec"
    np.testing.assert_array_equal(ours.indices, ref.indices)
    diff = np.abs(ours.frames.astype(int) - ref.frames.astype(int))
    assert diff.mean() < 2.0  # NVDEC's colour conversion may round differently
