"""MiniLM's forward pass in NumPy, for the one text of a search query: `mmfs search --text` without torch.

Importing torch costs more than a second of CPU and ~600 MB of memory, several times the work of
embedding a query of a few words. This is `bert_lean.SentenceEncoder` (the same safetensors weights and
`tokenizer.json`, BERT's post-LayerNorm blocks with exact GELU, mean pooling, L2 normalisation) on one
unpadded text at a time; `tests/unit/test_bert_numpy.py` holds its vectors to the torch encoder's.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from pathlib import Path

import numpy as np


def _layer_norm(x: np.ndarray, weight: np.ndarray, bias: np.ndarray, eps: float) -> np.ndarray:
    mean = x.mean(axis=-1, keepdims=True)
    var = ((x - mean) ** 2).mean(axis=-1, keepdims=True)
    return (x - mean) / np.sqrt(var + eps) * weight + bias


def _erf(x: np.ndarray) -> np.ndarray:
    """erf in float64 by Abramowitz & Stegun 7.1.26 (absolute error under 1.5e-7, below float32's
    step near 1); NumPy has no erf, and scipy.special would cost more to import than a query."""
    t = 1.0 / (1.0 + 0.3275911 * np.abs(x))
    poly = t * (0.254829592 + t * (-0.284496736 + t * (1.421413741 + t * (-1.453152027 + t * 1.061405429))))
    return np.sign(x) * (1.0 - poly * np.exp(-x * x))


def _gelu(x: np.ndarray) -> np.ndarray:
    """Exact GELU, x * Phi(x) (torch's default, BERT's `gelu`), computed in float64."""
    x64 = x.astype(np.float64)
    return (0.5 * x64 * (1.0 + _erf(x64 / math.sqrt(2.0)))).astype(np.float32)


def _softmax(x: np.ndarray) -> np.ndarray:
    e = np.exp(x - x.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


class NumpySentenceEncoder:
    """Tokenize one text, run BERT's embeddings and blocks, mean-pool over its tokens, normalise."""

    def __init__(self, model_dir: Path, max_seq_length: int) -> None:
        from safetensors.numpy import load_file
        from tokenizers import Tokenizer

        config = json.loads((model_dir / "config.json").read_text(encoding="utf-8"))
        if (
            config.get("model_type") != "bert"
            or config.get("position_embedding_type", "absolute") != "absolute"
            or config.get("hidden_act", "gelu") != "gelu"
        ):
            raise ValueError(f"{model_dir} is not an absolute-position BERT model with exact GELU")
        self.w = {
            k: np.asarray(v, dtype=np.float32)
            for k, v in load_file(str(model_dir / "model.safetensors")).items()
        }
        self.layers = int(config["num_hidden_layers"])
        self.heads = int(config["num_attention_heads"])
        self.eps = float(config["layer_norm_eps"])
        self.tokenizer = Tokenizer.from_file(str(model_dir / "tokenizer.json"))
        self.tokenizer.enable_truncation(max_length=max_seq_length)
        self.tokenizer.no_padding()

    def _linear(self, x: np.ndarray, name: str) -> np.ndarray:
        return x @ self.w[f"{name}.weight"].T + self.w[f"{name}.bias"]

    def _norm(self, x: np.ndarray, name: str) -> np.ndarray:
        return _layer_norm(x, self.w[f"{name}.weight"], self.w[f"{name}.bias"], self.eps)

    def _block(self, x: np.ndarray, p: str) -> np.ndarray:
        length, hidden = x.shape
        d = hidden // self.heads

        def split(t: np.ndarray) -> np.ndarray:
            return t.reshape(length, self.heads, d).transpose(1, 0, 2)  # (heads, length, d)

        q, k, v = (split(self._linear(x, f"{p}attention.self.{n}")) for n in ("query", "key", "value"))
        context = _softmax(q @ k.transpose(0, 2, 1) / np.float32(math.sqrt(d))) @ v
        context = context.transpose(1, 0, 2).reshape(length, hidden)
        x = self._norm(
            self._linear(context, f"{p}attention.output.dense") + x, f"{p}attention.output.LayerNorm"
        )
        inner = _gelu(self._linear(x, f"{p}intermediate.dense"))
        return self._norm(self._linear(inner, f"{p}output.dense") + x, f"{p}output.LayerNorm")

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        """(n, hidden) float32 unit vectors of `texts`, one text at a time."""
        out = []
        for text in texts:
            ids = np.asarray(self.tokenizer.encode(text).ids, dtype=np.int64)
            e = "embeddings."
            x = (
                self.w[f"{e}word_embeddings.weight"][ids]
                + self.w[f"{e}position_embeddings.weight"][: len(ids)]
                + self.w[f"{e}token_type_embeddings.weight"][0]
            )
            x = self._norm(x, f"{e}LayerNorm")
            for layer in range(self.layers):
                x = self._block(x, f"encoder.layer.{layer}.")
            pooled = x.mean(axis=0)
            out.append(pooled / max(float(np.linalg.norm(pooled)), 1e-12))
        return np.stack(out).astype(np.float32) if out else np.zeros((0, 0), np.float32)
