"""Flow rows with camera and object motion, and segment clip vectors, written by a real run into a store.

The run also has a video encoder (R3D-18, torchvision's architecture) selected by config, loaded from a
checkpoint with random weights that the test writes, since no video weights install offline.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from mmfs.config import config_from_dict
from mmfs.pipelines.run import run_pipeline
from mmfs.schemas import MOTION_DIM
from mmfs.store.db import Store
from tests import media_factory as mf

pytestmark = pytest.mark.slow


def random_r3d_checkpoint(folder: Path) -> Path:
    """torchvision's r3d_18 with seeded random weights, saved as a state dict (what its download is)."""
    import torch
    from torchvision.models.video import r3d_18

    torch.manual_seed(0)
    path = folder / "r3d_18_random.pth"
    torch.save(r3d_18(weights=None).state_dict(), path)
    return path


def test_pan_video_flow_and_clip_rows(tmp_path: Path) -> None:
    # 192 x 128 at 10 fps, the picture moving 3 px right per frame; sampled at 5 fps (6 px per pair),
    # flow at 96 px wide: 3 work px per pair
    clip = mf.write_video(
        tmp_path / "data" / "pan.mp4",
        times_s=mf.constant_rate_times(30, 10),
        width=192,
        height=128,
        painter=mf.translating_painter(192, 128, 3, 0),
    )
    cfg = config_from_dict(
        {
            "video": {"fps": 5.0, "decode_short_side": 128},
            "flow": {"method": "dis_medium", "work_width": 96, "field_size": 24},
            "runner": {"isolate_decode": False},
            "encoders": {
                "video": "video.r3d_18",
                "video_weights": str(random_r3d_checkpoint(tmp_path)),
                "video_clip_len": 2,  # 16 as trained; 2 keeps the CPU test quick
            },
        }
    )
    run_pipeline([str(clip.parent)], cfg, tmp_path / "store", show_progress=False)
    store = Store(tmp_path / "store")
    flow = sorted(store.read("flow").to_pylist(), key=lambda r: r["t_s"])
    assert len(flow) == 14
    assert {r["method"] for r in flow} == {"dis_medium"}
    assert {(r["work_width"], r["work_height"]) for r in flow} == {(96, 64)}
    assert {tuple(r["field_shape"]) for r in flow} == {(16, 24, 2)}
    assert np.median([r["global_dx"] for r in flow]) == pytest.approx(3.0, abs=0.3)
    assert np.median([r["global_dy"] for r in flow]) == pytest.approx(0.0, abs=0.3)
    assert np.median([r["global_rotation_deg"] for r in flow]) == pytest.approx(0.0, abs=0.5)
    assert np.median([r["residual_mean_mag"] for r in flow]) < 0.5
    assert b"work_width" in store.table("flow").schema.metadata[b"mmfs.units"]

    segments = sorted(store.read("segments").to_pylist(), key=lambda r: r["segment_index"])
    assert len(segments) == 3
    image_dim = len(segments[0]["visual"])
    for seg in segments:
        vec = np.asarray(seg["clip"], dtype=np.float32)
        assert vec.shape == (2 * image_dim + 2 * MOTION_DIM,) and np.all(np.isfinite(vec))
        frames = [
            f["embedding"]
            for f in store.read("frames").to_pylist()
            if seg["start_s"] <= f["t_s"] < seg["end_s"]
            or (seg["segment_index"] == 2 and f["t_s"] == seg["end_s"])
        ]
        np.testing.assert_allclose(vec[:image_dim], np.mean(frames, axis=0), atol=1e-5)
        np.testing.assert_allclose(vec[image_dim : 2 * image_dim], np.std(frames, axis=0), atol=1e-5)
        motion_mean = vec[2 * image_dim : 2 * image_dim + MOTION_DIM]
        np.testing.assert_allclose(motion_mean, seg["motion"], rtol=1e-5, atol=1e-6)
        video = np.asarray(seg["video"], dtype=np.float32)
        assert video.shape == (512,) and np.linalg.norm(video) == pytest.approx(1.0, abs=1e-5)
    assert not np.allclose(segments[0]["video"], segments[1]["video"])  # each window its own clip
    provenance = store.provenance("segments")["video"]
    assert provenance["name"] == "video.r3d_18" and len(provenance["weights_sha256"]) == 64
