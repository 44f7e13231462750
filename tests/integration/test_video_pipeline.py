"""Video options through a real run into a real store: shots rows, the shot grid, thumbnails, decoder.

One run over two generated clips with `sampling: scenes`, `align.grid: shots` and `backend: opencv`:
a 3 s clip with hard cuts at 1 s and 2 s and a tone must give three shots at the cut times (within a
frame), three segments on the same bounds, a frame with its JPEG thumbnail at each shot's start, and
`opencv` as its decoder; a file with two video streams, which OpenCV cannot be pointed at, must be
decoded by the next decoder, and the store must say which.
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from mmfs.config import config_from_dict
from mmfs.pipelines.run import run_pipeline
from mmfs.schemas.tables import MOTION_FEATURES
from mmfs.store.db import Store
from tests import media_factory as mf
from tests.unit.test_probe import write_two_video_streams

pytestmark = pytest.mark.slow
FPS = 30


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Store:
    data = tmp_path_factory.mktemp("video") / "data"
    paint = mf.shot_painter(64, 48, [1.0, 2.0])
    mf.write_video(
        data / "cuts.mp4", times_s=mf.constant_rate_times(90, FPS), painter=paint, audio_tone_hz=440
    )
    write_two_video_streams(data / "two.mkv")
    cfg = config_from_dict(
        {
            "video": {"sampling": "scenes", "shot_size": 32, "backend": "opencv"},
            "align": {"grid": "shots"},
            "runner": {"workers": 1, "isolate_decode": False},
        }
    )
    summary = run_pipeline([str(data)], cfg, data.parent / "store", show_progress=False)
    assert summary.n_ok == 2 and summary.n_quarantined == 0
    return Store(data.parent / "store")


def media_id(store: Store, name: str) -> str:
    return next(r["media_id"] for r in store.read("media").to_pylist() if Path(r["uri"]).name == name)


def rows_of(store: Store, table: str, name: str, key: str) -> list[dict]:
    wanted = media_id(store, name)
    return sorted((r for r in store.read(table).to_pylist() if r["media_id"] == wanted), key=lambda r: r[key])


def test_shots_rows_and_shot_grid(store: Store) -> None:
    shots = rows_of(store, "shots", "cuts.mp4", "shot_index")
    assert [r["shot_index"] for r in shots] == [0, 1, 2]
    np.testing.assert_allclose([r["start_s"] for r in shots], [0.0, 1.0, 2.0], atol=1 / FPS)
    np.testing.assert_allclose([r["end_s"] for r in shots], [1.0, 2.0, 3.0], atol=1 / FPS)
    segments = rows_of(store, "segments", "cuts.mp4", "segment_index")
    assert [(s["start_s"], s["end_s"]) for s in segments] == [(r["start_s"], r["end_s"]) for r in shots]
    assert all("visual" in s["modalities"] and "audio" in s["modalities"] for s in segments)


def test_scene_frames_have_thumbnails(store: Store) -> None:
    frames = rows_of(store, "frames", "cuts.mp4", "frame_index")
    assert [f["frame_index"] for f in frames] == [0, 30, 60]
    for f in frames:
        thumb = Image.open(io.BytesIO(f["thumbnail"]))
        assert thumb.format == "JPEG" and max(thumb.size) <= 160


def test_decoder_used_is_stored(store: Store) -> None:
    decoders = {Path(r["uri"]).name: r["decoder"] for r in store.read("media").to_pylist()}
    assert decoders == {"cuts.mp4": "opencv", "two.mkv": "pyav"}
    assert len(rows_of(store, "shots", "two.mkv", "shot_index")) == 1  # black throughout: one shot


def test_clip_vectors_pool_each_shot(store: Store) -> None:
    """On the shot grid each segment's clip vector is [mean, std] of its frames' embeddings, then
    [mean, max] of the motion of the flow pairs whose midpoint falls in it (zeros where none does)."""
    frames = rows_of(store, "frames", "cuts.mp4", "frame_index")  # one frame per shot: 0, 1, 2 s
    flow = rows_of(store, "flow", "cuts.mp4", "frame_index")  # pairs 0 -> 1 s and 1 -> 2 s
    segments = rows_of(store, "segments", "cuts.mp4", "segment_index")
    assert len(frames) == len(segments) == 3 and len(flow) == 2
    dim = len(frames[0]["embedding"])
    for k, segment in enumerate(segments):
        clip = np.asarray(segment["clip"], dtype=np.float32)
        assert clip.shape == (2 * dim + 2 * len(MOTION_FEATURES),)
        np.testing.assert_allclose(clip[:dim], frames[k]["embedding"], atol=1e-6)  # the mean of one frame
        np.testing.assert_allclose(clip[dim : 2 * dim], 0.0, atol=1e-6)  # and its spread: none
        motion = clip[2 * dim :]
        if k < 2:  # the pair starting at shot k's frame has its midpoint inside shot k
            row = flow[k]  # MOTION_FEATURES: flow columns by name, orient_i the histogram's bin i
            hist = row["orient_hist"]
            named = [hist[int(f[7:])] if f.startswith("orient_") else row[f] for f in MOTION_FEATURES]
            expected = np.array(named, dtype=np.float32)
            np.testing.assert_allclose(motion, np.concatenate([expected, expected]), rtol=1e-5, atol=1e-6)
        else:
            np.testing.assert_array_equal(motion, 0.0)  # no pair in the last shot
