"""MiniLM's forward pass in NumPy: the CPU engine of `text.minilm` and of `mmfs search --text`.

Importing torch costs more than a second of CPU and ~500 MB of memory, more than embedding a query or
a page of notes. This is `bert_lean.SentenceEncoder` (the same safetensors weights and
`tokenizer.json`, BERT's post-LayerNorm blocks with exact GELU, mean pooling, L2 normalisation) with
the texts' tokens packed into one matrix: the linear layers, most of the work, run as one matrix
product over every token and no padding; attention runs text by text. `tests/unit/test_bert_lean.py`
holds its vectors to the torch encoder's and to sentence-transformers'.
"""

from __future__ import annotations

import itertools
import json
import math
from collections.abc import Sequence
from pathlib import Path

import numpy as np

PACKED_TOKENS = 1024  # tokens per pass through the linear layers: their arrays stay in cache (measured)


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
    """Tokenize texts, run BERT's embeddings and blocks, mean-pool over each text's tokens, normalise."""

    def __init__(self, model_dir: Path, max_seq_length: int, threads: int | None = None) -> None:
        from safetensors.numpy import load_file
        from tokenizers import Tokenizer

        if threads:  # the run's CPU budget for models: BLAS threads here, as torch's intra-op threads
            from threadpoolctl import threadpool_limits

            threadpool_limits(limits=threads, user_api="blas")
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
        for name in [k for k in self.w if k.endswith(".weight") and self.w[k].ndim == 2]:
            # (in, out) as a view: BLAS takes the transposed operand as it is (no 87 MB copy at load,
            # 0.26 s; the products run at the same rate)
            self.w[f"{name}.T"] = self.w[name].T
        self.layers = int(config["num_hidden_layers"])
        self.heads = int(config["num_attention_heads"])
        self.eps = float(config["layer_norm_eps"])
        self.tokenizer = Tokenizer.from_file(str(model_dir / "tokenizer.json"))
        self.tokenizer.enable_truncation(max_length=max_seq_length)
        self.tokenizer.no_padding()

    def _linear(self, x: np.ndarray, name: str) -> np.ndarray:
        return x @ self.w[f"{name}.weight.T"] + self.w[f"{name}.bias"]

    def _norm(self, x: np.ndarray, name: str) -> np.ndarray:
        return _layer_norm(x, self.w[f"{name}.weight"], self.w[f"{name}.bias"], self.eps)

    def _attention(self, q: np.ndarray, k: np.ndarray, v: np.ndarray, spans: list[slice]) -> np.ndarray:
        """Each text's own self-attention over its slice of the packed (tokens, hidden) q, k, v."""
        tokens, hidden = q.shape
        d = hidden // self.heads
        scale = np.float32(1.0 / math.sqrt(d))
        heads = (
            q.reshape(tokens, self.heads, d),
            k.reshape(tokens, self.heads, d),
            v.reshape(tokens, self.heads, d),
        )
        context = np.empty_like(q)
        for span in spans:
            qs, ks, vs = (h[span].transpose(1, 0, 2) for h in heads)  # (heads, length, d)
            weights = _softmax((qs @ ks.transpose(0, 2, 1)) * scale)
            context[span] = (weights @ vs).transpose(1, 0, 2).reshape(-1, hidden)
        return context

    def _block(self, x: np.ndarray, p: str, spans: list[slice]) -> np.ndarray:
        q, k, v = (self._linear(x, f"{p}attention.self.{n}") for n in ("query", "key", "value"))
        context = self._attention(q, k, v, spans)
        x = self._norm(
            self._linear(context, f"{p}attention.output.dense") + x, f"{p}attention.output.LayerNorm"
        )
        inner = _gelu(self._linear(x, f"{p}intermediate.dense"))
        return self._norm(self._linear(inner, f"{p}output.dense") + x, f"{p}output.LayerNorm")

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        """(n, hidden) float32 unit vectors of `texts`.

        The texts' tokens are packed into one (tokens, hidden) matrix, so every linear layer is one
        matrix product over all of them (no padding); only attention runs text by text.
        """
        hidden = self.w["embeddings.word_embeddings.weight"].shape[1]
        out = np.zeros((len(texts), hidden), np.float32)
        groups: list[list[int]] = [[]]
        budget = 0
        encodings = self.tokenizer.encode_batch(list(texts))
        for i, encoding in enumerate(encodings):
            if budget + len(encoding.ids) > PACKED_TOKENS and groups[-1]:
                groups.append([])
                budget = 0
            groups[-1].append(i)
            budget += len(encoding.ids)
        for group in groups:
            if group:
                out[group] = self._encode_packed([encodings[i].ids for i in group])
        return out

    def _encode_packed(self, id_lists: list[list[int]]) -> np.ndarray:
        """Unit vectors of texts given as token ids, run packed (see `encode`)."""
        e = "embeddings."
        ids = np.concatenate([np.asarray(t, dtype=np.int64) for t in id_lists])
        positions = np.concatenate([np.arange(len(t)) for t in id_lists])
        bounds = np.cumsum([0, *(len(t) for t in id_lists)])
        spans = [slice(int(a), int(b)) for a, b in itertools.pairwise(bounds)]
        x = (
            self.w[f"{e}word_embeddings.weight"][ids]
            + self.w[f"{e}position_embeddings.weight"][positions]
            + self.w[f"{e}token_type_embeddings.weight"][0]
        )
        x = self._norm(x, f"{e}LayerNorm")
        for layer in range(self.layers):
            x = self._block(x, f"encoder.layer.{layer}.", spans)
        pooled = np.add.reduceat(x, bounds[:-1], axis=0) / np.diff(bounds)[:, None].astype(np.float32)
        norms = np.maximum(np.linalg.norm(pooled, axis=1, keepdims=True), 1e-12)
        return (pooled / norms).astype(np.float32)
