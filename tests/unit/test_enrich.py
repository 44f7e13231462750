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
from mmfs.pipelines.enrich import Enricher
from mmfs.pipelines.extract import PendingItem, extract
from mmfs.pipelines.sources import SourceItem


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
    assert [f.stage for f in enriched["b"].ex.failures] == ["embed_text"]
    assert enriched["b"].ex.failures[0].error.code == ErrorCode.NONFINITE_EMBEDDING
    for good in ("a", "c"):
        assert enriched[good].ex.failures == []
        vectors = enriched[good].text_vectors
        assert vectors is not None and np.allclose(np.linalg.norm(vectors, axis=1), 1.0)
