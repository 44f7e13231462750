"""Image analysis end to end: a run with OCR, faces, NSFW and quality drop into a real store, then
`mmfs search` finds on-screen text and filters on the nsfw column."""

from __future__ import annotations

import io
import json
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from mmfs.cli import app
from mmfs.config import PipelineConfig
from mmfs.pipelines.run import run_pipeline
from mmfs.store.db import Store
from mmfs.transforms.image.features import laplacian_variance
from mmfs.transforms.image.pixels import decode_image, thumbnail_jpeg
from tests import media_factory as mf

pytestmark = pytest.mark.slow
data = pytest.importorskip("skimage.data", reason="scikit-image provides the real test photo")
for _module in ("rapidocr_onnxruntime", "facenet_pytorch", "nudenet"):
    pytest.importorskip(_module, reason=f"{_module} is installed by `make setup`")

W, H = 320, 180


def _words(words: str) -> np.ndarray:
    img = np.full((H, W, 3), 235, np.uint8)
    cv2.putText(img, words, (14, H // 2 + 12), cv2.FONT_HERSHEY_SIMPLEX, 1.1, (10, 10, 10), 3, cv2.LINE_AA)
    return img


def _checkerboard() -> np.ndarray:
    yy, xx = np.mgrid[0:H, 0:W]
    board = (((yy // 20) + (xx // 20)) % 2 * 180 + 40).astype(np.uint8)
    return np.stack([board, board // 2, 255 - board], axis=-1)


def _painter(index: int, t: float) -> np.ndarray:
    """0-1 s: a checkerboard; 1-2 s: black (dropped); 2-4 s: the words; 4-5 s: the checkerboard."""
    if 1.0 <= t < 2.0:
        return np.zeros((H, W, 3), np.uint8)
    if 2.0 <= t < 4.0:
        return _words("OSPREY NEST")
    return _checkerboard()


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("imaging")
    folder = root / "data"
    mf.write_video(
        folder / "harbour.mp4", times_s=[i / 2 for i in range(10)], width=W, height=H, painter=_painter
    )
    Image.fromarray(_words("LIGHTHOUSE")).save(folder / "sign.png")
    Image.fromarray(data.astronaut()).save(folder / "astronaut.png")
    cfg = PipelineConfig.model_validate(
        {
            "image": {"ocr": True, "faces": True, "nsfw": True, "blur_faces": True},
            "quality": {"action": "drop"},
            "runner": {"isolate_decode": False},
        }
    )
    run_pipeline([str(folder)], cfg, root / "store", show_progress=False)
    return root / "store"


def _grey(jpeg: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(jpeg)).convert("L"), dtype=np.uint8)


def _media(st: Store) -> dict[str, str]:
    return {Path(r["uri"]).name: r["media_id"] for r in st.read("media", ["uri", "media_id"]).to_pylist()}


def test_ocr_rows_are_timed_aligned_and_searchable(store: Path) -> None:
    st = Store(store)
    ids = _media(st)
    ocr = [r for r in st.read("text").to_pylist() if r["source"] == "ocr"]
    by_item = {r["media_id"]: r for r in ocr}
    assert len(ocr) == 2, [r["text"] for r in ocr]  # the two frames with words made one row
    video_row = by_item[ids["harbour.mp4"]]
    assert "OSPREY" in video_row["text"].upper() and "NEST" in video_row["text"].upper()
    assert (video_row["start_s"], video_row["end_s"]) == (2.0, 4.0)
    assert video_row["embedding"] is not None
    image_row = by_item[ids["sign.png"]]
    assert "LIGHTHOUSE" in image_row["text"].upper() and image_row["start_s"] is None
    segments = {
        r["segment_index"]: r for r in st.read("segments").to_pylist() if r["media_id"] == ids["harbour.mp4"]
    }
    assert [i for i, s in sorted(segments.items()) if "OSPREY" in (s["transcript"] or "").upper()] == [2, 3]

    runner = CliRunner()
    for query, name, starts in (
        ("osprey nest", "harbour.mp4", {2.0, 3.0}),
        ("lighthouse", "sign.png", {0.0}),
    ):
        result = runner.invoke(app, ["search", "--text", query, "-k", "1", "--store", str(store), "--json"])
        assert result.exit_code == 0, result.output
        (hit,) = json.loads(result.stdout)["hits"]
        assert Path(hit["uri"]).name == name and hit["start_s"] in starts


def test_quality_drop_faces_and_nsfw_columns(store: Path) -> None:
    st = Store(store)
    ids = _media(st)
    frames = st.read("frames").to_pylist()
    video = sorted((r for r in frames if r["media_id"] == ids["harbour.mp4"]), key=lambda r: r["t_s"])
    assert [r["t_s"] for r in video] == [0.0, 2.0, 3.0, 4.0]  # the black frame at 1 s was dropped
    media = {r["media_id"]: r for r in st.read("media").to_pylist()}
    assert "quality_dropped=1" in media[ids["harbour.mp4"]]["quality_flags"]
    assert all(r["quality_flags"] == [] and r["sharpness"] > 20 for r in video)
    (astro,) = (r for r in frames if r["media_id"] == ids["astronaut.png"])
    assert astro["n_faces"] == 1 and len(astro["face_boxes"]) == 1
    # the stored thumbnail has the face blurred: much smoother there than a plain thumbnail of the frame
    photo = decode_image(store.parent / "data" / "astronaut.png", short_side=256, max_pixels=10**8).pixels
    plain = _grey(thumbnail_jpeg(photo, longest_side=160, quality=80))
    stored = _grey(astro["thumbnail"])
    x0, y0, x1, y1 = astro["face_boxes"][0]
    h, w = stored.shape
    face = (slice(int(y0 * h), int(y1 * h)), slice(int(x0 * w), int(x1 * w)))
    assert laplacian_variance(stored[face]) < laplacian_variance(plain[face]) / 5
    assert all(r["nsfw"] is False and r["nsfw_score"] == 0.0 for r in frames)
    assert all(len(r["color_hist"]) == 24 for r in frames)
    segs = st.read("segments").to_pylist()
    (astro_seg,) = (s for s in segs if s["media_id"] == ids["astronaut.png"])
    assert astro_seg["faces"] == 1 and astro_seg["nsfw"] is False

    runner = CliRunner()
    base = ["search", "--text", "a person", "-k", "20", "--store", str(store), "--json"]
    safe = json.loads(runner.invoke(app, [*base, "--where", "nsfw=false"]).stdout)["hits"]
    flagged = json.loads(runner.invoke(app, [*base, "--where", "nsfw=true"]).stdout)["hits"]
    with_frames = [s for s in segs if s["nsfw"] is not None]
    assert len(safe) == len(with_frames) and flagged == []


def test_flow_rows_point_only_at_frames_that_were_kept(store: Path) -> None:
    """Dropped frames take the flow pairs that touch them along: no flow row names a missing frame."""
    st = Store(store)
    harbour = _media(st)["harbour.mp4"]
    kept = {r["frame_index"] for r in st.read("frames").to_pylist() if r["media_id"] == harbour}
    flow = [r for r in st.read("flow").to_pylist() if r["media_id"] == harbour]
    flags = next(r for r in st.read("media").to_pylist() if r["media_id"] == harbour)["quality_flags"]
    assert any(f.startswith("quality_dropped=") for f in flags)  # the black second's frames are gone
    assert flow and kept
    for row in flow:
        assert row["frame_index"] in kept and row["next_frame_index"] in kept, row
    # every pair of consecutive kept frames that were consecutive samples still has its flow row
    assert {r["frame_index"] for r in flow} <= kept


def test_a_text_only_recompute_keeps_the_segments_analysis_and_redoes_ocr(
    store: Path, tmp_path: Path
) -> None:
    st = Store(store)
    before = {(s["media_id"], s["segment_index"]): s for s in st.read("segments").to_pylist()}
    frames_version = st.current("frames").version
    cfg = PipelineConfig.model_validate(
        {
            "image": {"ocr": True, "faces": True, "nsfw": True, "blur_faces": True},
            "quality": {"action": "drop"},
            "text": {"max_segment_chars": 1999},  # text rows stale; frames rows kept as they are
            "runner": {"isolate_decode": False},
        }
    )
    folder = store.parent / "data"
    run_pipeline([str(folder)], cfg, store, show_progress=False)
    st = Store(store)
    assert st.current("frames").version == frames_version
    after = {(s["media_id"], s["segment_index"]): s for s in st.read("segments").to_pylist()}
    assert after.keys() == before.keys()
    ocr = [r for r in st.read("text").to_pylist() if r["source"] == "ocr"]
    with_text = {r["media_id"] for r in ocr}  # items with text rows are stale (the astronaut has none)
    for key, seg in after.items():
        if key[0] in with_text:  # rewritten by this run, the analysis from the kept frames rows
            assert seg["run_id"] != before[key]["run_id"]
        assert (seg["nsfw"], seg["faces"], seg["transcript"]) == (
            before[key]["nsfw"],
            before[key]["faces"],
            before[key]["transcript"],
        )
    new_run = {seg["run_id"] for seg in after.values() if seg["media_id"] in with_text}
    assert len(ocr) == 2 and {r["run_id"] for r in ocr} == new_run  # OCR redone from re-decoded frames
