"""A tiny CLIP checkpoint with random weights, built and saved offline in `save_pretrained` layout.

It goes through the same loading path as a real checkpoint (`encoders.clip_model_dir`): config,
safetensors weights, a byte-level BPE CLIPTokenizer (every byte a token, no merges) and an image
processor, so the CLIP code is tested end to end without any download.
"""

from __future__ import annotations

from pathlib import Path

START, END = "<|startoftext|>", "<|endoftext|>"


def byte_symbols() -> list[str]:
    """GPT-2 / CLIP's printable stand-in for each of the 256 byte values."""
    printable = [
        *range(ord("!"), ord("~") + 1),
        *range(ord("¡"), ord("¬") + 1),
        *range(ord("®"), ord("ÿ") + 1),
    ]
    extra = [b for b in range(256) if b not in printable]
    return [chr(b) for b in printable] + [chr(256 + i) for i in range(len(extra))]


def build_tiny_clip(folder: Path, *, seed: int = 0, projection_dim: int = 16) -> Path:
    """Save a random tiny CLIP (2 layers, width 32, 32x32 images) with its processor into `folder`."""
    import torch
    from transformers import CLIPConfig, CLIPImageProcessor, CLIPModel, CLIPProcessor, CLIPTokenizer

    symbols = byte_symbols()
    vocab = {s: i for i, s in enumerate([*symbols, *(s + "</w>" for s in symbols), START, END])}
    tokenizer = CLIPTokenizer(vocab=vocab, merges=[])
    tower = {"hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 2, "num_attention_heads": 2}
    text = {
        **tower,
        "vocab_size": len(vocab),
        "max_position_embeddings": 77,
        "bos_token_id": vocab[START],
        "eos_token_id": vocab[END],
        "pad_token_id": vocab[END],
    }
    config = CLIPConfig(
        text_config=text,
        vision_config={**tower, "image_size": 32, "patch_size": 8},
        projection_dim=projection_dim,
    )
    torch.manual_seed(seed)
    model = CLIPModel(config).eval()
    images = CLIPImageProcessor(size={"shortest_edge": 32}, crop_size={"height": 32, "width": 32})
    folder.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(folder)
    CLIPProcessor(image_processor=images, tokenizer=tokenizer).save_pretrained(folder)
    return folder
