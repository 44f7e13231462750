"""Encoder throughput through mmfs next to the same model run directly, on the same inputs, in one run.

Run with `make bench-encoders` (or `python benchmarks/bench_encoders.py [--items N] [--repeat N]
[--device cpu|cuda] [--threads N]`). Per encoder it prints items/s through mmfs
(`get_cached(name).embed`, or `embed_and_classify` for images as the pipeline calls it: input checks,
batching, the prefetch queue, finiteness checks, normalisation) and items/s of the raw side doing the
same work with the library alone, and their ratio (1.0 = no overhead; the target is >= 0.9 on a CPU):
- text.minilm: the SentenceTransformer's own `encode` at the same batch size;
- image.efficientnet_lite0/1/2: the same preprocessing (centre crop, bicubic resize, scaling) and the
  model's `extract_features` + pooling + classifier, in a plain loop over the same batches;
- audio.resemblyzer: resemblyzer's own `VoiceEncoder.embed_utterance`, one window at a time (its API
  takes one utterance), and, as a second row, the same mels and LSTM batched by hand like mmfs does.
Both sides use the same torch threads; timings are interleaved (raw, mmfs, raw, ...) and the best of
`--repeat` is kept, so a change in the machine's load weighs on both alike.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import time
from collections.abc import Callable
from typing import Any

import numpy as np

from mmfs.demo import SAMPLE_DIR
from mmfs.encoders import get_cached
from mmfs.encoders.execution import apply_cpu_threads

IMAGES = ("image.efficientnet_lite0", "image.efficientnet_lite1", "image.efficientnet_lite2")


def interleaved(raw: Callable[[], int], mmfs: Callable[[], int], repeat: int) -> tuple[float, float]:
    """Best items/s of each side, timed alternately."""
    best = {"raw": 0.0, "mmfs": 0.0}
    for _ in range(repeat):
        for name, fn in (("raw", raw), ("mmfs", mmfs)):
            start = time.perf_counter()
            count = fn()
            best[name] = max(best[name], count / (time.perf_counter() - start))
    return best["raw"], best["mmfs"]


def sentences(n: int) -> list[str]:
    """N sentences of the sample story, cycled."""
    text = " ".join((SAMPLE_DIR / "scandal_in_bohemia.txt").read_text(encoding="utf-8").split())
    found = [s for s in re.split(r"(?<=[.!?])\s+", text) if len(s.split()) >= 3]
    return [found[i % len(found)] for i in range(n)]


def photos(n: int) -> list[np.ndarray]:
    """N RGB frames: the sample photos at 256 px short side (as frames are decoded), cycled."""
    from PIL import Image

    base = []
    for name in ("chelsea_cat.jpg", "coffee.jpg", "rocket_launch.jpg"):
        image = Image.open(SAMPLE_DIR / name).convert("RGB")
        scale = 256 / min(image.size)
        base.append(np.asarray(image.resize((round(image.width * scale), round(image.height * scale)))))
    return [base[i % len(base)] for i in range(n)]


def windows(n: int) -> list[np.ndarray]:
    """N one-second 16 kHz windows of the sample speech, cycled."""
    import soundfile as sf

    wav, rate = sf.read(SAMPLE_DIR / "dashwood_speech.wav", dtype="float32")
    if wav.ndim > 1:
        wav = wav.mean(axis=1)
    assert rate == 16_000, rate
    cuts = [wav[i : i + rate] for i in range(0, len(wav) - rate + 1, rate)]
    return [cuts[i % len(cuts)] for i in range(n)]


def bench_text(n: int, repeat: int, device: str) -> dict[str, Any]:
    from sentence_transformers import SentenceTransformer

    enc = get_cached("text.minilm", device=device)
    texts = sentences(n)
    # the raw library: mmfs runs the same weights through its own lean forward (encoders/bert_lean.py)
    st = SentenceTransformer(str(enc.model_dir()), device=enc.device, local_files_only=True)

    def raw() -> int:
        st.encode(texts, batch_size=enc.batch_size, normalize_embeddings=True, show_progress_bar=False)
        return len(texts)

    def mmfs() -> int:
        return len(enc.embed(texts))

    return _row(enc, n, *interleaved(raw, mmfs, repeat))


def bench_image(name: str, n: int, repeat: int, device: str) -> dict[str, Any]:
    import torch
    import torch.nn.functional as F

    enc = get_cached(name, device=device)
    frames = photos(n)
    # the raw side runs the package's torch graph (mmfs's CPU default is its NumPy engine)
    reference: Any = get_cached(name, device=device, cpu_engine="torch")
    model, size, frac = reference.model, enc.input_size, enc.crop_fraction

    def preprocess(image: np.ndarray) -> torch.Tensor:
        h, w = image.shape[:2]
        side = round(min(h, w) * frac)
        top, left = (h - side) // 2, (w - side) // 2
        crop = torch.from_numpy(np.ascontiguousarray(image[top : top + side, left : left + side]))
        x = crop.to(device).permute(2, 0, 1)[None].float()
        x = F.interpolate(x, size=(size, size), mode="bicubic", antialias=True, align_corners=False)
        return x[0].clamp_(0, 255)

    def raw() -> int:
        with torch.inference_mode():
            for start in range(0, n, enc.batch_size):
                x = (
                    torch.stack([preprocess(f) for f in frames[start : start + enc.batch_size]]) - 127.0
                ) / 128.0
                pooled = model._avg_pooling(model.extract_features(x)).flatten(1)
                torch.softmax(model._fc(pooled), dim=1).topk(5, dim=1)
                pooled.cpu().numpy()
        return n

    def mmfs() -> int:
        return len(enc.embed_and_classify(frames, top_k=5)[0])

    return _row(enc, n, *interleaved(raw, mmfs, repeat))


def bench_audio(n: int, repeat: int, device: str) -> list[dict[str, Any]]:
    """Two raw sides: resemblyzer's own per-window API, and the same mels + LSTM batched by hand."""
    from resemblyzer import VoiceEncoder

    enc = get_cached("audio.resemblyzer", device=device)
    torch_engine: Any = get_cached("audio.resemblyzer", device=device, cpu_engine="torch")
    clips = windows(n)
    reference = VoiceEncoder(device=device, verbose=False)

    def raw() -> int:
        for clip in clips:
            reference.embed_utterance(clip)
        return n

    def batched() -> int:
        import torch

        from mmfs.encoders.audio_resemblyzer import normalize_volume, partial_mels

        with torch.inference_mode():
            for start in range(0, n, enc.batch_size):
                mels = [
                    m
                    for c in clips[start : start + enc.batch_size]
                    for m in partial_mels(normalize_volume(c))
                ]
                _, (hidden, _) = torch_engine.model["lstm"](torch.from_numpy(np.stack(mels)).to(device))
                torch.relu(torch_engine.model["linear"](hidden[-1])).cpu().numpy()
        return n

    def mmfs() -> int:
        return len(enc.embed(clips))

    library = _row(enc, n, *interleaved(raw, mmfs, repeat))
    same_batches = _row(enc, n, *interleaved(batched, mmfs, repeat))
    same_batches["encoder"] += " (batched raw)"
    return [library, same_batches]


def _row(enc: Any, n: int, raw: float, mmfs: float) -> dict[str, Any]:
    return {
        "encoder": enc.name,
        "device": enc.device,
        "batch": enc.batch_size,
        "items": n,
        "raw_items_s": round(raw, 1),
        "mmfs_items_s": round(mmfs, 1),
        "ratio": round(mmfs / raw, 3),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--items", type=int, default=128, help="inputs per encoder and pass")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: all allowed)")
    parser.add_argument("--only", nargs="*", default=None, help="encoder names to run (default: all)")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    threads = apply_cpu_threads(args.threads)
    jobs: dict[str, Callable[[], list[dict[str, Any]]]] = {
        "text.minilm": lambda: [bench_text(args.items, args.repeat, args.device)],
        **{
            name: (lambda name=name: [bench_image(name, args.items, args.repeat, args.device)])
            for name in IMAGES
        },
        "audio.resemblyzer": lambda: bench_audio(args.items, args.repeat, args.device),
    }
    rows = [row for name, fn in jobs.items() if not args.only or name in args.only for row in fn()]
    hardware = _hardware(args.device, threads)
    if args.json:
        print(json.dumps({"hardware": hardware, "rows": rows}, indent=2))
        return 0
    print(f"# encoders through mmfs / the same model alone ({hardware})")
    print(f"{'encoder':<36}{'batch':>6}{'items':>7}{'raw/s':>10}{'mmfs/s':>10}{'ratio':>8}")
    for r in rows:
        print(
            f"{r['encoder']:<36}{r['batch']:>6}{r['items']:>7}{r['raw_items_s']:>10}"
            f"{r['mmfs_items_s']:>10}{r['ratio']:>8.3f}"
        )
    return 0


def _hardware(device: str, threads: int) -> str:
    """The device in words: the GPU's name, or the CPU threads used."""
    import torch

    if device.startswith("cuda"):
        return f"{torch.cuda.get_device_name(torch.device(device))}"
    return f"CPU, {threads} torch threads"


if __name__ == "__main__":
    sys.exit(main())
