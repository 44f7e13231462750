"""The online pipeline's parts: the batcher, the file-name and path rules, following the recorded config."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from mmfs.config import config_from_dict
from mmfs.errors import ErrorCode, SourceRejected
from mmfs.pipelines.online import MicroBatcher, OnlineFeatures, OnlineItem, item_at
from mmfs.pipelines.run import run_pipeline
from mmfs.store.db import Store
from mmfs.store.filters import in_list
from mmfs.web.features import safe_name
from tests.fake_encoders import FAKE_ENCODERS


def test_items_that_queue_while_a_batch_runs_go_through_together() -> None:
    """While the first batch is held in the model, three more arrive: they make one batch, in order."""
    release, started = threading.Event(), threading.Event()
    calls: list[list[int]] = []

    def embed(items: list[int]) -> list[int]:
        calls.append(list(items))
        started.set()
        release.wait(timeout=30)
        return [i * 10 for i in items]

    batcher: MicroBatcher[int, int] = MicroBatcher(embed, max_batch=8, max_wait_s=0.0)
    first = batcher.submit(1)
    assert started.wait(timeout=30)
    rest = [batcher.submit(i) for i in (2, 3, 4)]
    release.set()
    assert first.result(timeout=30) == 10
    assert [f.result(timeout=30) for f in rest] == [20, 30, 40]
    batcher.close()
    assert calls == [[1], [2, 3, 4]]


def test_a_batch_is_cut_at_max_batch_and_an_error_reaches_every_waiter() -> None:
    release = threading.Event()
    calls: list[list[int]] = []

    def embed(items: list[int]) -> list[int]:
        calls.append(list(items))
        release.wait(timeout=30)
        if 5 in items:
            raise ValueError("model failed")
        return items

    batcher: MicroBatcher[int, int] = MicroBatcher(embed, max_batch=2, max_wait_s=0.0)
    futures = [batcher.submit(0)]
    while not calls:  # the first batch is in the model
        threading.Event().wait(0.01)
    futures += [batcher.submit(i) for i in (1, 2, 5, 6)]
    release.set()
    assert [f.result(timeout=30) for f in futures[:3]] == [0, 1, 2]
    for future in futures[3:]:
        with pytest.raises(ValueError, match="model failed"):
            future.result(timeout=30)
    batcher.close()
    assert calls == [[0], [1, 2], [5, 6]]


def test_upload_names_are_reduced_to_a_safe_base_name() -> None:
    assert safe_name("../../etc/passwd", "x") == "passwd"
    assert safe_name("C:\\Users\\me\\clip one.mp4", "x") == "clip one.mp4"
    assert safe_name("a;rm -rf $HOME'.srt", "x") == "a_rm -rf _HOME_.srt"
    assert safe_name("..", "upload") == "upload"
    assert safe_name(None, "upload") == "upload"


def test_item_at_resolves_under_the_roots_and_finds_the_captions(tmp_path: Path) -> None:
    root = tmp_path / "media"
    root.mkdir()
    (root / "clip.mp4").write_bytes(b"x")
    (root / "clip.srt").write_text("1\n00:00:00,000 --> 00:00:01,000\nhi\n")
    item = item_at(str(root / "sub" / ".." / "clip.mp4"), [root.resolve()])
    assert item.path == (root / "clip.mp4").resolve() and item.uri == str(item.path)
    assert item.sidecar == (root / "clip.srt").resolve()
    with pytest.raises(SourceRejected, match="allowed roots"):
        item_at(str(tmp_path / "media2" / "clip.mp4"), [root.resolve()])  # a sibling sharing the prefix
    with pytest.raises(SourceRejected) as missing:
        item_at(str(root / "nothere.mp4"), [root.resolve()])
    assert missing.value.code == ErrorCode.NOT_FOUND
    with pytest.raises(SourceRejected, match="--allow-root"):
        item_at(str(root / "clip.mp4"), [])


def test_a_run_with_another_config_brings_a_new_pipeline(tmp_path: Path) -> None:
    """The recorded config decides: after a run with other chunking, online rows follow it (test encoders)."""
    data = tmp_path / "data"
    data.mkdir()
    doc = data / "notes.txt"
    doc.write_text(" ".join(f"Sentence number {i} talks about the harbour and its lamp." for i in range(12)))
    store = tmp_path / "store"
    base = {"encoders": FAKE_ENCODERS, "runner": {"isolate_decode": False}}
    first = run_pipeline([str(data)], config_from_dict(base), store, show_progress=False)
    online = OnlineFeatures(store, refresh_s=0.0)
    try:
        before = online.features(OnlineItem(doc, str(doc)))
        assert before.run_id == first.run_id
        second_cfg = config_from_dict({**base, "align": {"chunk_chars": 60}})
        second = run_pipeline([str(data)], second_cfg, store, show_progress=False)
        after = online.features(OnlineItem(doc, str(doc)))
        assert (after.run_id, after.config_hash) == (second.run_id, second_cfg.config_hash())
        stored = Store(store).read(
            "text", ["segment_index", "text", "tfidf"], where=in_list("media_id", [after.media_id])
        )
        assert after.tables["text"].num_rows == stored.num_rows > before.tables["text"].num_rows
        assert (
            after.tables["text"].column("text").to_pylist()
            == stored.sort_by("segment_index").column("text").to_pylist()
        )
        assert online._retired == []  # the first config's pipeline was closed once no request used it
    finally:
        online.close()
