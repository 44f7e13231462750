"""A BERT sentence encoder in plain torch: MiniLM's forward, mean pooling and normalisation.

The same weights (the package's safetensors) and the same tokenizer (its `tokenizer.json`, through the
`tokenizers` library) as sentence-transformers, but without importing transformers and
sentence-transformers, which cost seconds before a text query can be embedded (`mmfs search`).
`tests/unit/test_bert_lean.py` checks its vectors against SentenceTransformer's on the same texts.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from mmfs.encoders.weights import load_into


class _SelfAttention(nn.Module):
    """Query, key and value projections (BERT's `attention.self`)."""

    def __init__(self, hidden: int) -> None:
        super().__init__()
        self.query, self.key, self.value = (nn.Linear(hidden, hidden) for _ in range(3))


class _Residual(nn.Module):
    """A projection added to the block's input, then LayerNorm (BERT's `*.output`)."""

    def __init__(self, width_in: int, hidden: int, eps: float) -> None:
        super().__init__()
        self.dense = nn.Linear(width_in, hidden)
        self.LayerNorm = nn.LayerNorm(hidden, eps=eps)

    def forward(self, x: torch.Tensor, residual: torch.Tensor) -> torch.Tensor:
        return self.LayerNorm(self.dense(x) + residual)


class _Attention(nn.Module):
    """Multi-head self-attention and its residual output (BERT's `attention`)."""

    def __init__(self, hidden: int, heads: int, eps: float) -> None:
        super().__init__()
        self.heads = heads
        self.self = _SelfAttention(hidden)
        self.output = _Residual(hidden, hidden, eps)

    def forward(self, x: torch.Tensor, attend: torch.Tensor) -> torch.Tensor:
        n, length, hidden = x.shape

        def split(t: torch.Tensor) -> torch.Tensor:
            return t.view(n, length, self.heads, hidden // self.heads).transpose(1, 2)

        q, k, v = split(self.self.query(x)), split(self.self.key(x)), split(self.self.value(x))
        context = F.scaled_dot_product_attention(q, k, v, attn_mask=attend)
        return self.output(context.transpose(1, 2).reshape(n, length, hidden), x)


class _Intermediate(nn.Module):
    """The feed-forward expansion with exact GELU (BERT's `intermediate`)."""

    def __init__(self, hidden: int, inner: int) -> None:
        super().__init__()
        self.dense = nn.Linear(hidden, inner)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.gelu(self.dense(x))


class _Layer(nn.Module):
    """One transformer block with BERT's parameter names (post-LayerNorm)."""

    def __init__(self, hidden: int, heads: int, inner: int, eps: float) -> None:
        super().__init__()
        self.attention = _Attention(hidden, heads, eps)
        self.intermediate = _Intermediate(hidden, inner)
        self.output = _Residual(inner, hidden, eps)

    def forward(self, x: torch.Tensor, attend: torch.Tensor) -> torch.Tensor:
        x = self.attention(x, attend)
        return self.output(self.intermediate(x), x)


class _Embeddings(nn.Module):
    """Word, position and token-type embeddings, summed, then LayerNorm."""

    def __init__(self, config: dict[str, Any], hidden: int, eps: float) -> None:
        super().__init__()
        self.word_embeddings = nn.Embedding(int(config["vocab_size"]), hidden)
        self.position_embeddings = nn.Embedding(int(config["max_position_embeddings"]), hidden)
        self.token_type_embeddings = nn.Embedding(int(config["type_vocab_size"]), hidden)
        self.LayerNorm = nn.LayerNorm(hidden, eps=eps)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        positions = torch.arange(ids.shape[1], device=ids.device)[None, :]
        x = self.word_embeddings(ids) + self.position_embeddings(positions)
        return self.LayerNorm(x + self.token_type_embeddings.weight[0])  # one segment: type 0


class _Encoder(nn.Module):
    """The stack of transformer blocks (BERT's `encoder.layer.N`)."""

    def __init__(self, config: dict[str, Any], hidden: int, eps: float) -> None:
        super().__init__()
        heads, inner = int(config["num_attention_heads"]), int(config["intermediate_size"])
        self.layer = nn.ModuleList(
            _Layer(hidden, heads, inner, eps) for _ in range(int(config["num_hidden_layers"]))
        )

    def forward(self, x: torch.Tensor, attend: torch.Tensor) -> torch.Tensor:
        for layer in self.layer:
            x = layer(x, attend)
        return x


class LeanBert(nn.Module):
    """BERT's embeddings and encoder (no pooler), loaded strictly from a BertModel state dict."""

    def __init__(self, config: dict[str, Any]) -> None:
        super().__init__()
        hidden, eps = int(config["hidden_size"]), float(config["layer_norm_eps"])
        self.embeddings = _Embeddings(config, hidden, eps)
        self.encoder = _Encoder(config, hidden, eps)

    def forward(self, ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """Last hidden states (n, length, hidden) of token ids under an attention mask (1 = token)."""
        attend = mask[:, None, None, :].bool()  # a boolean mask works under autocast (bf16 / fp16 too)
        return self.encoder(self.embeddings(ids), attend)


class SentenceEncoder:
    """Tokenize, run LeanBert, mean-pool over the tokens and L2-normalise: sentence-transformers' recipe."""

    def __init__(self, model_dir: Path, max_seq_length: int, device: str = "cpu") -> None:
        from safetensors.torch import load_file
        from tokenizers import Tokenizer

        config = json.loads((model_dir / "config.json").read_text(encoding="utf-8"))
        if (
            config.get("model_type") != "bert"
            or config.get("position_embedding_type", "absolute") != "absolute"
        ):
            raise ValueError(f"{model_dir} is not an absolute-position BERT model")
        state = load_file(str(model_dir / "model.safetensors"), device="cpu")
        state = {
            k: v for k, v in state.items() if not k.startswith("pooler.") and k != "embeddings.position_ids"
        }
        # the file's tensors become the parameters (weights.load_into: assign, no copy)
        model = load_into(LeanBert(config), state, owner=str(model_dir), assign=True)
        self.model = model.eval().to(device)
        self.device = device
        self.tokenizer = Tokenizer.from_file(str(model_dir / "tokenizer.json"))
        self.tokenizer.enable_truncation(max_length=max_seq_length)
        self.tokenizer.enable_padding(pad_id=int(config.get("pad_token_id", 0)))  # to the longest

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        """(n, hidden) float32 unit vectors of `texts`."""
        encodings = self.tokenizer.encode_batch(list(texts))
        ids = torch.tensor([e.ids for e in encodings], dtype=torch.long, device=self.device)
        mask = torch.tensor([e.attention_mask for e in encodings], dtype=torch.long, device=self.device)
        with torch.inference_mode():
            hidden = self.model(ids, mask)
            weights = mask[:, :, None].to(hidden.dtype)
            pooled = (hidden * weights).sum(1) / weights.sum(1).clamp(min=1e-9)
            return F.normalize(pooled, p=2, dim=1).float().cpu().numpy()
