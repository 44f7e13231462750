"""Whole-document views over the `text` table: a document's embedding as the mean of its chunks."""

from __future__ import annotations

import numpy as np

from mmfs.store.db import Store
from mmfs.store.filters import in_list


def document_embedding(store: Store, media_id: str, *, source: str = "document") -> np.ndarray | None:
    """The L2-normalised mean of an item's chunk embeddings of one source, or None when it has none.

    Chunks fit the encoder whole (text.chunking: tokens), so the mean covers every token of the
    document; with overlapping chunks the overlap counts twice, as it does for the encoder."""
    rows = store.read("text", ["source", "embedding"], where=in_list("media_id", [media_id]))
    vectors = [r["embedding"] for r in rows.to_pylist() if r["source"] == source and r["embedding"]]
    if not vectors:
        return None
    mean = np.mean(np.asarray(vectors, dtype=np.float32), axis=0)
    norm = float(np.linalg.norm(mean))
    return mean / norm if norm > 0 else mean
