"""Text throughput of mmfs next to the raw libraries on the same sentences, in the same run.

Run with `make bench-text` (or `python benchmarks/bench_text.py [--sentences N] [--repeat N]`). It
prints, as ratios (mmfs rate / raw rate; 1.0 means no overhead):
- tokens/s of the mmfs text stage (spaCy backend: tokens, lemmas, POS, entities, Porter stems, stop
  flags, as lists) vs spaCy's `nlp.pipe` alone with the same components (the parser off in both);
- sentences/s of the text encoder through mmfs (`get_cached("text.minilm").embed`: input checks,
  batching, finiteness checks) vs the SentenceTransformer's own `encode` at the same batch size.
Sentences are those of the sample story (`scandal_in_bohemia.txt`), repeated to N.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import time
from collections.abc import Callable
from typing import Any

from mmfs.config import TextConfig
from mmfs.demo import SAMPLE_DIR
from mmfs.encoders import get_cached
from mmfs.transforms.text.tokens import TextAnalyzer

STORY = SAMPLE_DIR / "scandal_in_bohemia.txt"


def sentences(n: int) -> list[str]:
    """N sentences of the sample story (cut at . ! ?), cycled when the story has fewer."""
    text = " ".join(STORY.read_text(encoding="utf-8").split())
    found = [s for s in re.split(r"(?<=[.!?])\s+", text) if len(s.split()) >= 3]
    return [found[i % len(found)] for i in range(n)]


def interleaved(
    raw: Callable[[], int], mmfs: Callable[[], int], repeat: int
) -> tuple[float, int, float, int]:
    """Best wall time and count of each, timed alternately (raw, mmfs, raw, ...) so that a change in
    the machine's load during the run weighs on both sides alike."""
    best = {"raw": (float("inf"), 0), "mmfs": (float("inf"), 0)}
    for _ in range(repeat):
        for name, fn in (("raw", raw), ("mmfs", mmfs)):
            start = time.perf_counter()
            count = fn()
            elapsed = time.perf_counter() - start
            if elapsed < best[name][0]:
                best[name] = (elapsed, count)
    return (*best["raw"], *best["mmfs"])


def bench_analysis(texts: list[str], repeat: int) -> dict[str, Any]:
    """mmfs TextAnalyzer.analyze vs nlp.pipe over the same texts, tokens per second each."""
    analyzer = TextAnalyzer(TextConfig())
    nlp = analyzer.nlp
    disable = [p for p in ("parser",) if p in nlp.pipe_names]

    def raw() -> int:
        return sum(len(doc) for doc in nlp.pipe(texts, batch_size=64, disable=disable))

    def mmfs() -> int:
        return sum(len(a.tokens) for a in analyzer.analyze(texts))

    analyzer.analyze(texts[:200])  # warm both (same pipeline object)
    raw_s, raw_tokens, mmfs_s, mmfs_tokens = interleaved(raw, mmfs, repeat)
    return {
        "sentences": len(texts),
        "raw_tokens_per_s": round(raw_tokens / raw_s),
        "mmfs_tokens_per_s": round(mmfs_tokens / mmfs_s),
        "ratio": round((mmfs_tokens / mmfs_s) / (raw_tokens / raw_s), 3),
    }


def bench_encoder(texts: list[str], repeat: int, batch_size: int) -> dict[str, Any]:
    """mmfs text encoder vs the bare SentenceTransformer.encode, sentences per second each."""
    from sentence_transformers import SentenceTransformer

    encoder = get_cached("text.minilm", device="cpu", batch_size=batch_size)
    encoder.load()
    # the raw library: sentence-transformers on the same weights (mmfs runs its own NumPy forward)
    model = SentenceTransformer(str(encoder.model_dir()), device="cpu", local_files_only=True)

    def raw() -> int:
        out = model.encode(
            texts,
            batch_size=batch_size,
            convert_to_numpy=True,
            normalize_embeddings=True,
            show_progress_bar=False,
        )
        return len(out)

    def mmfs() -> int:
        return len(encoder.embed(texts))

    encoder.embed(texts[:64])
    raw_s, _, mmfs_s, _ = interleaved(raw, mmfs, repeat)
    return {
        "sentences": len(texts),
        "raw_sentences_per_s": round(len(texts) / raw_s, 1),
        "mmfs_sentences_per_s": round(len(texts) / mmfs_s, 1),
        "ratio": round(raw_s / mmfs_s, 3),
    }


def main() -> None:
    """Run both comparisons and print one JSON document."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--sentences", type=int, default=10_000)
    parser.add_argument("--encoder-sentences", type=int, default=None, help="default: --sentences")
    parser.add_argument("--repeat", type=int, default=2, help="alternating timings of each side; best kept")
    parser.add_argument("--batch-size", type=int, default=32)
    args = parser.parse_args()
    texts = sentences(args.sentences)
    analysis = bench_analysis(texts, args.repeat)
    print(json.dumps({"analysis": analysis}), file=sys.stderr, flush=True)  # progress, in case of a cut-off
    encoder = bench_encoder(texts[: args.encoder_sentences or len(texts)], args.repeat, args.batch_size)
    print(json.dumps({"analysis": analysis, "encoder": encoder}, indent=2))


if __name__ == "__main__":
    main()
