"""Batched encoders isolate a poison input: one item that makes a NaN degrades only itself."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from mmfs.config import config_from_dict
from mmfs.encoders.base import Encoder
from mmfs.encoders.registry import register
from mmfs.errors import ErrorCode
from mmfs.media.hashing import sha256_file
from mmfs.pipelines.sources import SourceItem
from mmfs.stages.decode import extract
from mmfs.stages.encode import Enricher
from mmfs.stages.items import PendingItem


@register("test.poison_text")
class PoisonText(Encoder):
    """A 4-d text encoder whose output for any text containing POISON is NaN."""

    modality = "text"
    dim = 4

    def weight_files(self) -> list[Path]:
        return []

    def _load(self) -> None:
        return None

    def _embed_batch(self, batch: Sequence[Any]) -> np.ndarray:
        rows = [np.full(4, np.nan) if "POISON" in text else np.arange(1.0, 5.0) for text in batch]
        return np.stack(rows).astype(np.float32)


def _pending(path: Path) -> PendingItem:
    return PendingItem(
        sha256_file(path), SourceItem(path=path, uri=str(path)), [str(path)], path.stat().st_size
    )


def test_a_poison_text_degrades_its_own_item_only(tmp_path: Path) -> None:
    cfg = config_from_dict({"encoders": {"text": "test.poison_text"}})
    texts = {"a": "The harbour is calm.", "b": "POISON pill text.", "c": "Gulls circle the pier."}
    items = []
    for name, text in texts.items():
        (tmp_path / f"{name}.txt").write_text(text)
        items.append(extract(_pending(tmp_path / f"{name}.txt"), cfg))
    enriched = {Path(e.ex.pending.item.uri).stem: e for e in Enricher(cfg).run(items)}
    assert [f.stage for f in enriched["b"].failures] == ["embed_text"]
    assert enriched["b"].failures[0].error.code == ErrorCode.NONFINITE_EMBEDDING
    assert enriched["b"].status == "degraded" and enriched["b"].vectors.text is None
    for good in ("a", "c"):
        assert enriched[good].all_failures == ()
        vectors = enriched[good].vectors.text
        assert vectors is not None and np.allclose(np.linalg.norm(vectors, axis=1), 1.0)


class _FlakyRecognizer:
    """A recogniser that hears one word per item and fails on the item whose audio is the loudest.

    The words are fixed: the test is about how many transcript rows an item gets, not what they say.
    """

    name = "test.flaky"

    def __init__(self, fail_above: float) -> None:
        self.fail_above = fail_above

    def transcribe(self, samples: np.ndarray) -> list[Any]:
        from mmfs.transforms.audio.asr import Word

        if float(np.abs(samples).max()) > self.fail_above:
            raise RuntimeError("decoder lost its state")
        return [Word("hello", 0.1, 0.4, 0.9)]


def test_a_failing_transcript_does_not_duplicate_the_others(tmp_path: Path, monkeypatch: Any) -> None:
    """One item's ASR failure re-runs the batch item by item; every other item keeps one transcript."""
    from mmfs.encoders import speech_asr
    from tests import media_factory as mf

    monkeypatch.setattr(speech_asr, "recognizer", lambda *a, **k: _FlakyRecognizer(fail_above=0.6))
    # threshold 0: every clip is one utterance, so the tones reach the recogniser without speech in them
    cfg = config_from_dict({"audio": {"asr": "pocketsphinx", "vad": False, "asr_threshold": 0.0}})
    items = []
    for name, amplitude in (("a", 0.2), ("b", 0.9), ("c", 0.3)):
        tone = (amplitude * np.sin(2 * np.pi * 440.0 * np.arange(24_000) / 16_000)).astype(np.float32)
        path = mf.write_wav(tmp_path / f"{name}.wav", samples=tone)
        items.append(extract(_pending(path), cfg))
    enriched = {Path(e.ex.pending.item.uri).stem: e for e in Enricher(cfg).run(items)}
    asr = {k: [t.text for t in e.texts if t.source == "asr"] for k, e in enriched.items()}
    assert asr == {"a": ["hello"], "b": [], "c": ["hello"]}
    assert [f.stage for f in enriched["b"].failures] == ["asr"]
