"""`mmfs run` on the built-in sample data into a real LanceDB store, end to end (local runner)."""

from __future__ import annotations

import math
import shutil
from pathlib import Path

import numpy as np
import pytest

from mmfs.config import PipelineConfig
from mmfs.demo import SAMPLE_DIR
from mmfs.errors import ErrorCode
from mmfs.pipelines.run import RunSummary, run_pipeline
from mmfs.schemas import MOTION_DIM
from mmfs.store.db import Store

pytestmark = pytest.mark.slow
CFG = PipelineConfig()
DATA_TABLES = ("media", "frames", "flow", "audio", "text", "segments", "quarantine", "runs")


@pytest.fixture(scope="module")
def sample_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Store, RunSummary, Path]:
    root = tmp_path_factory.mktemp("sample")
    data = root / "data"
    shutil.copytree(SAMPLE_DIR, data)
    # the same bytes under a second name: one media row with two uris
    shutil.copy(data / "coffee.jpg", data / "coffee_copy.jpg")
    store_dir = root / "store"
    summary = run_pipeline([str(data)], CFG, store_dir, show_progress=False)
    return Store(store_dir), summary, data


def test_every_table_has_rows(sample_run: tuple[Store, RunSummary, Path]) -> None:
    store, summary, _ = sample_run
    for table in DATA_TABLES:
        assert store.count(table) > 0, table
    assert summary.n_inputs == 8  # 10 files, two of them sidecars
    assert summary.n_duplicates == 1
    assert summary.n_ok == 6 and summary.n_quarantined == 1
    assert summary.n_ok + summary.n_quarantined + summary.n_duplicates + summary.n_skipped == summary.n_inputs


def test_media_rows_describe_the_files(sample_run: tuple[Store, RunSummary, Path]) -> None:
    store, _, _data = sample_run
    media = {Path(r["uri"]).name: r for r in store.read("media").to_pylist()}
    video = media["cockatoo.mp4"]
    assert video["kind"] == "video" and video["status"] == "ok"
    assert video["duration_s"] == pytest.approx(14.0, abs=0.1)
    assert (video["width"], video["height"]) == (1280, 720) and video["has_audio"]
    assert media["dashwood_speech.wav"]["kind"] == "audio"
    assert media["scandal_in_bohemia.txt"]["kind"] == "text"
    coffee = media.get("coffee.jpg") or media["coffee_copy.jpg"]
    assert coffee["kind"] == "image"
    assert sorted(Path(u).name for u in coffee["uris"]) == ["coffee.jpg", "coffee_copy.jpg"]
    assert media["broken_clip.mp4"]["status"] == "failed"
    assert "cockatoo.srt" not in media and "dashwood_speech.txt" not in media  # sidecars


def test_corrupt_file_is_quarantined_with_its_reason(
    sample_run: tuple[Store, RunSummary, Path],
) -> None:
    store, _, _ = sample_run
    rows = store.read("quarantine").to_pylist()
    assert len(rows) == 1
    (row,) = rows
    assert Path(row["uri"]).name == "broken_clip.mp4"
    assert row["error_code"] == ErrorCode.CONTAINER_CORRUPT
    assert row["stage"] == "probe" and "broken_clip.mp4" in row["message"]


def test_segments_follow_the_grid(sample_run: tuple[Store, RunSummary, Path]) -> None:
    store, _, _ = sample_run
    media = {r["media_id"]: r for r in store.read("media").to_pylist()}
    segments = store.read("segments").to_pylist()
    for media_id, row in media.items():
        mine = sorted((s for s in segments if s["media_id"] == media_id), key=lambda s: s["segment_index"])
        if row["kind"] in ("video", "audio"):
            assert len(mine) == math.ceil(row["duration_s"] / CFG.align.segment_s), row["uri"]
            assert [s["start_s"] for s in mine] == [k * CFG.align.segment_s for k in range(len(mine))]
        elif row["kind"] == "image":
            assert len(mine) == 1 and mine[0]["start_s"] == 0.0
        elif row["kind"] == "text":
            assert len(mine) >= 2 and all(s["start_s"] is None for s in mine)


def test_frames_have_decoder_times_and_vectors(sample_run: tuple[Store, RunSummary, Path]) -> None:
    store, _, _ = sample_run
    media_id = next(r["media_id"] for r in store.read("media").to_pylist() if r["kind"] == "video")
    frames = sorted(
        (f for f in store.read("frames").to_pylist() if f["media_id"] == media_id),
        key=lambda f: f["t_s"],
    )
    assert len(frames) == 14
    assert [round(f["t_s"], 3) for f in frames] == [float(k) for k in range(14)]
    assert [f["frame_index"] for f in frames] == [20 * k for k in range(14)]
    assert all(f["thumbnail"][:3] == b"\xff\xd8\xff" for f in frames)
    assert all(len(f["labels"]) == CFG.image.top_labels for f in frames)
    flow = [f for f in store.read("flow").to_pylist() if f["media_id"] == media_id]
    assert len(flow) == 13 and all(f["dt_s"] == pytest.approx(1.0) for f in flow)


def test_vectors_are_finite_and_of_declared_size(
    sample_run: tuple[Store, RunSummary, Path],
) -> None:
    store, _, _ = sample_run
    schema = store.table("segments").schema
    table = store.read("segments")
    for column in ("visual", "motion", "audio", "text", "labels", "fused"):
        dim = schema.field(column).type.list_size
        values = [v for v in table.column(column).to_pylist() if v is not None]
        assert values, column
        matrix = np.array(values, dtype=np.float32)
        assert matrix.shape[1] == dim and np.isfinite(matrix).all(), column
    assert schema.field("motion").type.list_size == MOTION_DIM
    assert schema.field("visual").type.list_size == 1280
    assert schema.field("text").type.list_size == 384
    provenance = store.provenance("segments")
    assert provenance["visual"]["name"] == "image.efficientnet_lite0"
    assert len(provenance["fused"]["weights_sha256"]) == 64


def test_text_rows_have_tokens_lemmas_stems(sample_run: tuple[Store, RunSummary, Path]) -> None:
    store, _, _ = sample_run
    rows = store.read("text").to_pylist()
    captions = [r for r in rows if r["source"] == "caption" and r["start_s"] is not None]
    assert len(captions) == 5 and captions[0]["end_s"] == pytest.approx(3.0)
    first = next(r for r in captions if r["start_s"] == 0.0)
    assert "cockatoo" in first["tokens"] and "stand" in first["lemmas"] and "perch" in first["stems"]
    assert len(first["is_stop"]) == len(first["tokens"])


def test_caption_search_finds_the_video_first(sample_run: tuple[Store, RunSummary, Path]) -> None:
    from mmfs.encoders import get_cached
    from mmfs.store.search import search_segments

    store, _, _ = sample_run
    query = get_cached("text.minilm").embed(["a white cockatoo stands on a perch"])[0]
    hits = search_segments(store, query, k=3)
    assert Path(hits[0].uri).name == "cockatoo.mp4"
    assert hits[0].start_s is not None and hits[0].start_s < 3.0


def test_rerun_writes_nothing_to_data_tables(sample_run: tuple[Store, RunSummary, Path]) -> None:
    store, _, data = sample_run
    before = store.versions()
    again = run_pipeline([str(data)], CFG, store.uri, show_progress=False)
    after = Store(store.uri).versions()
    assert again.n_skipped == 7 and again.n_ok == 0 and again.rows == {}
    for table in DATA_TABLES[:-1]:
        assert after[table] == before[table], table
    assert after["runs"] == before["runs"] + 1  # the run itself is recorded
    assert Store(store.uri).count("runs") == 2


@pytest.mark.parametrize(
    ("phrase", "photo"),
    [
        ("a cat", "chelsea_cat.jpg"),
        ("a cup of espresso coffee", "coffee.jpg"),
        ("a missile launch", "rocket_launch.jpg"),
    ],
)
def test_text_search_finds_real_photos_by_describing_phrases(
    sample_run: tuple[Store, RunSummary, Path], phrase: str, photo: str
) -> None:
    """Issue 7: with the default offline encoders, the label bridge lets a phrase find the photo."""
    from mmfs.query import query_vector
    from mmfs.store.search import search_segments

    store, _, _ = sample_run
    vector, column = query_vector(store, text=phrase)  # what `mmfs search --text` embeds and searches
    hits = search_segments(store, vector, column=column, k=5)
    assert Path(hits[0].uri).name == photo, [(Path(h.uri).name, round(h.score, 3)) for h in hits]
