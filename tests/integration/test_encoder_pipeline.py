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
from mmfs.encoders.registry import resolve
from mmfs.pipelines.run import run_pipeline
from mmfs.query import query_vector
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
            pixels = proc(images=[np.array(Image.open(path).convert("RGB"))], return_tensors="pt")
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
    """Counts the inputs each real encoder's model sees: wraps `run_batches` on each encoder's class, so
    every instance counts (a run's encoders are cached per device, batch size and torch threads)."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, names: Sequence[str]) -> None:
        self.n: Counter[str] = Counter()
        for name in names:
            cls = resolve(name)
            monkeypatch.setattr(cls, "run_batches", self._wrap(name, cls.run_batches))

    def _wrap(self, name: str, real: Callable[..., Any]) -> Callable[..., Any]:
        def counted(enc: Any, batch: Sequence[Any], fn: Callable[[Any], Any]) -> Any:
            self.n[name] += len(batch)
            return real(enc, batch, fn)

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


def test_joint_fusion_learned_projection_and_provenance_of_every_vector_column(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from mmfs.cli import app
    from mmfs.transforms.fusion import MODALITIES

    data, store_dir = tmp_path / "data", tmp_path / "store"
    mf.write_video(data / "clip.mp4", times_s=mf.constant_rate_times(30, 10.0), audio_tone_hz=330.0)
    mf.write_image(data / "a.png")
    mf.write_text(data / "owls.txt", DOC)
    run_pipeline([str(data)], _cfg(), store_dir, show_progress=False)
    store = Store(store_dir)
    for table, columns in VECTOR_COLUMNS.items():  # provenance in the schema metadata of every vector column
        prov, present = store.provenance(table), set(store.table(table).schema.names)
        assert "video" not in present  # segments.video exists only with a video encoder configured
        for column in (c for c in columns if c in present):
            info = prov[column]
            assert info["name"], (table, column)
            if info["name"].startswith(("image.", "text.", "audio.")):
                assert len(info["weights_sha256"]) == 64 and json.loads(info["preprocessing"]) is not None
                assert info["dim"] == str(store.table(table).schema.field(column).type.list_size)
    assert store.provenance("segments")["joint"]["name"] == "fusion.concat"

    segments = store.read("segments").to_pylist()
    widths = json.loads(store.provenance("segments")["joint"]["widths"])
    for seg in segments:  # the default: the normalised concatenation with its modality mask
        present = [seg[m] is not None for m in MODALITIES]
        assert seg["joint_mask"] == present and seg["joint_learned"] is None
        if not any(present):
            assert seg["joint"] is None
            continue
        blocks = [
            np.asarray(seg[m]) / np.linalg.norm(seg[m]) if seg[m] is not None else np.zeros(widths[m])
            for m in MODALITIES
        ]
        assert np.allclose(seg["joint"], np.concatenate(blocks) / np.sqrt(sum(present)), atol=1e-6)
    assert any(sum(s["joint_mask"]) >= 3 for s in segments)  # video frames, motion and sound together

    out = tmp_path / "projection.safetensors"
    result = CliRunner().invoke(
        app, ["train-fusion", "--store", str(store_dir), "--out", str(out), "--steps", "30", "--json"]
    )
    assert result.exit_code == 0, result.output
    trained = json.loads(result.stdout)
    assert trained["n_segments"] == sum(s["joint"] is not None for s in segments) and out.is_file()
    assert trained["loss_last"] < trained["loss_first"]

    before = store.versions()
    learned = _cfg(encoders={"fusion": "learned", "fusion_weights": str(out)})
    run_pipeline([str(data)], learned, store_dir, show_progress=False)
    store = Store(store_dir)
    after = store.versions()
    assert [t for t in ("frames", "flow", "audio", "text") if after[t] != before[t]] == []
    again = {(s["media_id"], s["segment_index"]): s for s in store.read("segments").to_pylist()}
    for seg in segments:
        new = again[(seg["media_id"], seg["segment_index"])]
        assert new["fused"] == seg["fused"] and new["joint"] == seg["joint"]  # search vectors unchanged
        if seg["joint"] is not None:
            assert len(new["joint_learned"]) == 256
            assert abs(np.linalg.norm(new["joint_learned"]) - 1.0) < 1e-5
    prov = store.provenance("segments")["joint_learned"]
    assert prov["name"] == "fusion.learned" and prov["weights_sha256"] == trained["sha256"]
