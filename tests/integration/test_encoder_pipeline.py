"""Encoders through real store runs: CLIP end to end, the embedding cache, provenance."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

from mmfs.config import PipelineConfig, config_from_dict
from mmfs.encoders import get_cached
from mmfs.pipelines.query import query_vector
from mmfs.pipelines.run import run_pipeline
from mmfs.schemas.tables import VECTOR_COLUMNS
from mmfs.store.db import Store
from mmfs.store.search import search_segments
from tests import media_factory as mf
from tests.tiny_clip import build_tiny_clip

pytestmark = pytest.mark.slow
skimage_data = pytest.importorskip("skimage.data", reason="scikit-image (dev extra) supplies the test photos")
FAST = {"runner": {"isolate_decode": False, "workers": 1}, "index": {"auto": False}}
DOC = "Owls hunt at night. They fly without a sound and see well in the dark."


def _photos(data: Path) -> dict[str, Path]:
    """Three real photos (scikit-image), shrunk, as JPEG files."""
    data.mkdir(parents=True, exist_ok=True)
    out = {}
    for name in ("chelsea", "coffee", "rocket"):
        image = Image.fromarray(getattr(skimage_data, name)())
        image.thumbnail((160, 160))
        image.save(data / f"{name}.jpg", quality=90)
        out[name] = data / f"{name}.jpg"
    return out


def _cfg(**sections: Any) -> PipelineConfig:
    return config_from_dict({**FAST, **sections})


def _media_ids(store: Store) -> dict[str, str]:
    return {Path(r["uri"]).stem: r["media_id"] for r in store.read("media", ["uri", "media_id"]).to_pylist()}


# -- CLIP ------------------------------------------------------------------------------------------


def test_clip_store_run_puts_images_and_text_in_one_space(tmp_path: Path) -> None:
    """A tiny random CLIP loaded from its folder: text search ranks photos by their CLIP image vectors."""
    clip_dir = build_tiny_clip(tmp_path / "tiny-clip")
    data = tmp_path / "data"
    photos = _photos(data)
    mf.write_text(data / "owls.txt", DOC)
    cfg = _cfg(encoders={"image": "image.clip", "text": "text.clip", "clip_model_dir": str(clip_dir)})
    summary = run_pipeline([str(data)], cfg, tmp_path / "store", show_progress=False)
    assert summary.n_ok == 4
    store = Store(tmp_path / "store")
    ids = _media_ids(store)

    frames = store.read("frames", ["media_id", "embedding", "label_embedding", "labels"]).to_pylist()
    assert len(frames) == 3 and all(len(f["embedding"]) == 16 and len(f["labels"]) > 0 for f in frames)
    for f in frames:  # no label bridge: the frame's vector in the text space is its CLIP image vector
        assert np.allclose(f["embedding"], f["label_embedding"])
    prov = store.provenance("segments")
    assert prov["fused"]["name"] == "text.clip" and prov["visual"]["name"] == "image.clip"
    assert json.loads(prov["fused"]["options"]) == {"model": str(clip_dir)}

    # the reference: transformers' own CLIPModel on the same photos and phrase
    import torch
    from transformers import CLIPModel, CLIPProcessor

    model = CLIPModel.from_pretrained(clip_dir, local_files_only=True).eval()
    proc = CLIPProcessor.from_pretrained(clip_dir, local_files_only=True)
    stored = {f["media_id"]: np.asarray(f["embedding"]) for f in frames}
    for name, path in photos.items():
        with torch.inference_mode():
            pixels = proc(images=[np.asarray(Image.open(path).convert("RGB"))], return_tensors="pt")
            ref = model.get_image_features(**pixels).pooler_output[0].numpy()
        assert np.dot(stored[ids[name]], ref / np.linalg.norm(ref)) > 0.999, name
    for phrase in ("a cat", "a cup of coffee", "a rocket"):
        vector, column = query_vector(store, text=phrase)
        assert column == "fused"
        assert np.allclose(
            vector, get_cached("text.clip", options={"model": str(clip_dir)}).embed([phrase])[0]
        )
        hits = search_segments(store, vector, k=10, where=[("kind", "image")])
        expected = sorted(stored, key=lambda m: -float(np.dot(stored[m], vector)))
        assert [h.media_id for h in hits] == expected, phrase


# -- the embedding cache: per-table recompute keyed by encoder identity ---------------------------


class _Counts:
    """Counts the inputs each real encoder's model sees (wraps `run_batches` of the cached instances)."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, names: Sequence[str]) -> None:
        self.n: Counter[str] = Counter()
        for name in names:
            enc = get_cached(name)
            monkeypatch.setattr(enc, "run_batches", self._wrap(name, enc.run_batches))

    def _wrap(self, name: str, real: Callable[..., Any]) -> Callable[..., Any]:
        def counted(batch: Sequence[Any], fn: Callable[[Any], Any]) -> Any:
            self.n[name] += len(batch)
            return real(batch, fn)

        return counted

    def take(self) -> dict[str, int]:
        out = {k: v for k, v in self.n.items() if v}
        self.n.clear()
        return out


def test_rerun_embeds_nothing_and_switching_the_image_encoder_reembeds_images_only(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = tmp_path / "data"
    _photos(data)
    mf.write_text(data / "owls.txt", DOC)
    mf.write_wav(data / "tone.wav", duration_s=2.0)
    store_dir = tmp_path / "store"
    counts = _Counts(
        monkeypatch,
        ["image.efficientnet_lite0", "image.efficientnet_lite1", "text.minilm", "audio.resemblyzer"],
    )
    lite0 = _cfg()
    run_pipeline([str(data)], lite0, store_dir, show_progress=False)
    first = counts.take()
    assert first["image.efficientnet_lite0"] == 3 and first["text.minilm"] >= 4  # 3 label lines + the doc
    assert "image.efficientnet_lite1" not in first

    before = Store(store_dir).versions()
    run_pipeline([str(data)], lite0, store_dir, show_progress=False)
    assert counts.take() == {}  # same encoders: nothing recomputed, nothing written
    assert {t: v for t, v in Store(store_dir).versions().items() if t != "runs"} == {
        t: v for t, v in before.items() if t != "runs"
    }

    text_rows = (
        Store(store_dir).read("text", ["media_id", "segment_index", "embedding", "run_id"]).to_pylist()
    )
    old_frames = {r["media_id"]: r for r in Store(store_dir).read("frames").to_pylist()}
    lite1 = _cfg(encoders={"image": "image.efficientnet_lite1"})
    run_pipeline([str(data)], lite1, store_dir, show_progress=False)
    # exactly the image vectors, and the label lines of those frames (the label bridge), are re-embedded
    assert counts.take() == {"image.efficientnet_lite1": 3, "text.minilm": 3}
    store = Store(store_dir)
    after = store.versions()
    assert after["text"] == before["text"] and after["audio"] == before["audio"]
    assert store.read("text", ["media_id", "segment_index", "embedding", "run_id"]).to_pylist() == text_rows
    new_frames = {r["media_id"]: r for r in store.read("frames").to_pylist()}
    assert new_frames.keys() == old_frames.keys()
    for media_id, row in new_frames.items():
        assert not np.allclose(row["embedding"], old_frames[media_id]["embedding"])
    prov = store.provenance("frames")["embedding"]
    assert prov["name"] == "image.efficientnet_lite1" and prov["weights_sha256"].startswith("77cc7160")
    assert store.provenance("segments")["visual"]["name"] == "image.efficientnet_lite1"


def test_every_vector_column_has_provenance_in_its_schema_metadata(tmp_path: Path) -> None:
    data = tmp_path / "data"
    mf.write_image(data / "a.png")
    mf.write_text(data / "owls.txt", DOC)
    run_pipeline([str(data)], _cfg(), tmp_path / "store", show_progress=False)
    store = Store(tmp_path / "store")
    for table, columns in VECTOR_COLUMNS.items():
        prov = store.provenance(table)
        for column in columns:
            info = prov[column]
            assert info["name"], (table, column)
            if info["name"].startswith(("image.", "text.", "audio.")):
                assert len(info["weights_sha256"]) == 64 and json.loads(info["preprocessing"]) is not None
                assert info["dim"] == str(store.table(table).schema.field(column).type.list_size)
