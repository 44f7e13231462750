"""Stage switches through real runs into a real store: what is off does no work and writes nothing.

One run over a clip with sound, a photo and a text document, with every optional stage off
(`video.audio`, `image.labels`, `image.thumbnails`, `encoders.text: null`, `flow.enabled`,
`align.segments`): the audio track must not be decoded, the flow not computed, the text and audio
encoders not loaded, and the tables must hold exactly what the switches leave. Switching them back on
must then fill in what was missing, and a third run with the same config must do nothing. A text
encoder switched off over a store made with one keeps that store's vector widths (nulls in them).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from mmfs.config import PipelineConfig, config_from_dict
from mmfs.encoders import registry
from mmfs.pipelines.run import run_pipeline
from mmfs.stages import decode as extract
from mmfs.store.db import Store
from tests import media_factory as mf
from tests.fake_encoders import FAKE_ENCODERS

pytestmark = pytest.mark.slow

BASE: dict[str, Any] = {
    "runner": {"workers": 1, "isolate_decode": False},
    "index": {"auto": False},
    "maintenance": {"auto": False},
}
OFF: dict[str, Any] = {
    "video": {"audio": False},
    "image": {"labels": False, "thumbnails": False},
    "flow": {"enabled": False},
    "align": {"segments": False},
    "audio": {"vad": False},
}
DOC = "Gulls circle the harbour at dawn. The ferry leaves at six and returns before the tide turns."


def _cfg(*, text: str | None, **sections: Any) -> PipelineConfig:
    return config_from_dict({**BASE, **sections, "encoders": {**FAKE_ENCODERS, "text": text}})


class Calls:
    """Counts calls of named functions of `mmfs.stages.decode` (the real ones still run)."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, names: list[str]) -> None:
        self.counts: Counter[str] = Counter()
        for name in names:
            monkeypatch.setattr(extract, name, self._wrap(name, getattr(extract, name)))

    def _wrap(self, name: str, real: Callable[..., Any]) -> Callable[..., Any]:
        def counted(*args: Any, **kwargs: Any) -> Any:
            self.counts[name] += 1
            return real(*args, **kwargs)

        return counted


@pytest.fixture()
def data(tmp_path: Path) -> Path:
    folder = tmp_path / "data"
    mf.write_video(
        folder / "clip.mp4",
        times_s=mf.constant_rate_times(60, 20),
        painter=mf.translating_painter(64, 48, 2.0, 0.0),
        audio_tone_hz=440,
    )
    mf.write_image(folder / "photo.png", seed=3)
    mf.write_text(folder / "note.txt", DOC)
    return folder


def _by_name(store: Store, table: str) -> dict[str, list[dict[str, Any]]]:
    names = {r["media_id"]: Path(r["uri"]).name for r in store.read("media").to_pylist()}
    out: dict[str, list[dict[str, Any]]] = {}
    for row in store.read(table).to_pylist() if store.has(table) else []:
        out.setdefault(names[row["media_id"]], []).append(row)
    return out


def test_switched_off_stages_do_no_work_and_switching_back_fills_in(
    data: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(registry, "_CACHE", {})  # this process's loaded models, from none
    calls = Calls(monkeypatch, ["decode_audio", "flow_sequence"])
    store_dir = tmp_path / "store"
    off = _cfg(text=None, **OFF)
    summary = run_pipeline([str(data)], off, store_dir, show_progress=False)
    assert summary.n_ok == 3 and summary.n_quarantined == 0
    assert calls.counts == Counter()  # no audio decoded, no flow computed
    assert sorted(key[0] for key in registry._CACHE) == ["test.image"]  # no text or audio model loaded

    store = Store(store_dir)
    frames = _by_name(store, "frames")
    assert len(frames["clip.mp4"]) == 3 and len(frames["photo.png"]) == 1
    for row in frames["clip.mp4"] + frames["photo.png"]:
        assert row["embedding"] is not None  # the image encoder is on
        assert row["labels"] == [] and row["label_scores"] == []
        assert row["label_embedding"] is None and row["thumbnail"] is None and row["bridge_text"] is None
    assert _by_name(store, "audio") == {} and _by_name(store, "flow") == {}
    assert _by_name(store, "segments") == {}
    (note,) = _by_name(store, "text")["note.txt"]
    assert note["tokens"] and note["embedding"] is None  # analysed, not embedded
    media = {Path(r["uri"]).name: r for r in store.read("media").to_pylist()}
    assert media["clip.mp4"]["has_audio"] and media["clip.mp4"]["status"] == "ok"  # the file has a track

    # everything back on: what the switches left out is filled in, nothing is lost. The text columns
    # were laid out at the default text encoder's width (a new store), so the default comes back on
    on = _cfg(text="text.minilm")
    summary = run_pipeline([str(data)], on, store_dir, show_progress=False)
    assert summary.n_ok == 3 and summary.n_skipped == 0
    assert calls.counts["decode_audio"] == 1 and calls.counts["flow_sequence"] == 1
    store = Store(store_dir)
    frames = _by_name(store, "frames")
    for row in frames["clip.mp4"] + frames["photo.png"]:
        assert row["labels"] and row["label_embedding"] is not None and row["thumbnail"] is not None
    assert len(_by_name(store, "audio")["clip.mp4"]) == 3
    assert len(_by_name(store, "flow")["clip.mp4"]) == 2
    segments = _by_name(store, "segments")
    assert set(segments) == {"clip.mp4", "photo.png", "note.txt"}
    assert all("audio" in s["modalities"] for s in segments["clip.mp4"])
    assert _by_name(store, "text")["note.txt"][0]["embedding"] is not None

    again = run_pipeline([str(data)], on, store_dir, show_progress=False)
    assert again.n_skipped == 3 and calls.counts["decode_audio"] == 1  # up to date: no work


def test_segments_switched_off_later_removes_them_and_decodes_nothing(
    data: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store_dir = tmp_path / "store"
    plain = _cfg(text="test.text", audio={"vad": False})
    assert run_pipeline([str(data)], plain, store_dir, show_progress=False).n_ok == 3
    assert set(_by_name(Store(store_dir), "segments")) == {"clip.mp4", "photo.png", "note.txt"}
    calls = Calls(monkeypatch, ["decode_audio", "sample_frames"])
    no_segments = _cfg(text="test.text", audio={"vad": False}, align={"segments": False})
    summary = run_pipeline([str(data)], no_segments, store_dir, show_progress=False)
    assert summary.n_ok == 3
    assert calls.counts == Counter()  # segments come from stored rows: nothing is decoded
    store = Store(store_dir)
    assert _by_name(store, "segments") == {}
    assert len(_by_name(store, "frames")["clip.mp4"]) == 3 and len(_by_name(store, "audio")["clip.mp4"]) == 3


def test_text_encoder_off_over_a_store_keeps_its_widths_and_nulls_the_vectors(
    data: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store_dir = tmp_path / "store"
    assert run_pipeline([str(data)], _cfg(text="test.text", **OFF), store_dir, show_progress=False).n_ok == 3
    monkeypatch.setattr(registry, "_CACHE", {})
    summary = run_pipeline([str(data)], _cfg(text=None, **OFF), store_dir, show_progress=False)
    assert summary.n_ok == 3 and "test.text" not in {key[0] for key in registry._CACHE}
    store = Store(store_dir)
    (note,) = _by_name(store, "text")["note.txt"]
    assert note["tokens"] and note["embedding"] is None  # the 16-d column of the fake encoder, null
    assert store.table("text").schema.field("embedding").type.list_size == 16
    assert store.provenance("text")["embedding"]["name"] == "off"
