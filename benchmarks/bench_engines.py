"""EfficientNet-Lite's two CPU engines side by side in one run: NumPy (the default) and torch.

Run with `make bench-engines` (or `python benchmarks/bench_engines.py [--encoder NAME] [--items N]
[--batch N] [--threads N] [--repeat N] [--lanes]`). Per input set it prints images/s of each engine
through `embed_and_classify` (as the pipeline calls it: crop, resize, forward, top-5 labels) and their
ratio (NumPy / torch; above 1: NumPy is faster):
- photos: skimage's sample photos (chelsea 300x451, coffee 400x600, rocket 427x640, astronaut 512x512),
  cycled;
- frames: the same photos resized to 224x224 (a video decoded at the network's input size).
Timings are interleaved (numpy, torch, numpy, ...) and the best of `--repeat` is kept, so a change in
the machine's load weighs on both alike; the load average is printed before and after. Both engines get
`--threads` threads (BLAS threads for NumPy, torch's intra-op threads for torch). `--lanes` adds, per
engine, the rate with one CPU lent to the encoder (two chunks side by side, `Encoder.run_batches`)
against one lane, interleaved likewise, and the CPU time per image of each (all threads): when two
lanes cost no more CPU per image than one, they run twice as fast on two idle cores.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from collections.abc import Callable
from typing import Any

import numpy as np

from mmfs.encoders.execution import lending_cpus
from mmfs.encoders.registry import create


def photos(n: int) -> list[np.ndarray]:
    """N of skimage's RGB sample photos, cycled."""
    from skimage import data

    base = [data.chelsea(), data.coffee(), data.rocket(), data.astronaut()]
    return [base[i % len(base)] for i in range(n)]


def frames(n: int, size: int = 224) -> list[np.ndarray]:
    """N size x size RGB frames: the sample photos resized (as a decoder at the input size gives them)."""
    from PIL import Image

    base = [np.asarray(Image.fromarray(p).resize((size, size), Image.BILINEAR)) for p in photos(4)]
    return [base[i % len(base)] for i in range(n)]


def best_rates(
    runs: dict[str, Callable[[], int]], repeat: int, cpu: dict[str, float] | None = None
) -> dict[str, float]:
    """Best items/s of each run, timed alternately `repeat` times; `cpu` gets each run's least CPU
    seconds (all the process's threads) per item."""
    best = dict.fromkeys(runs, 0.0)
    for _ in range(repeat):
        for name, fn in runs.items():
            start, start_cpu = time.perf_counter(), time.process_time()
            count = fn()
            best[name] = max(best[name], count / (time.perf_counter() - start))
            if cpu is not None:
                used = (time.process_time() - start_cpu) / count
                cpu[name] = min(cpu.get(name, used), used)
    return best


def load() -> str:
    """The 1, 5 and 15 minute load averages and the CPU count, as one string."""
    one, five, fifteen = os.getloadavg()
    return f"{one:.2f} {five:.2f} {fifteen:.2f} on {os.cpu_count()} CPUs"


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--encoder", default="image.efficientnet_lite0")
    parser.add_argument("--items", type=int, default=16)
    parser.add_argument("--batch", type=int, default=None, help="images per forward (default: the hint)")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--lanes", action="store_true", help="also time two lanes against one")
    args = parser.parse_args()

    engines: dict[str, Any] = {
        engine: create(
            args.encoder, device="cpu", batch_size=args.batch, threads=args.threads, cpu_engine=engine
        )
        for engine in ("numpy", "torch")
    }
    for encoder in engines.values():
        encoder.load()
    inputs = {"photos": photos(args.items), "frames": frames(args.items)}
    print(f"load before: {load()}")
    rows = []
    for label, images in inputs.items():
        for encoder in engines.values():  # warm-up: allocator, caches, lazily made weights
            encoder.embed_and_classify(images[: encoder.batch_size], top_k=5)
        runs = {
            engine: (lambda e=encoder, imgs=images: len(e.embed_and_classify(imgs, top_k=5)[0]))
            for engine, encoder in engines.items()
        }
        rates = best_rates(runs, args.repeat)
        rows.append({"input": label, **{k: round(v, 1) for k, v in rates.items()}})
        rows[-1]["ratio"] = round(rates["numpy"] / rates["torch"], 2)
        print(
            f"{label:7s} numpy {rates['numpy']:6.1f} img/s   torch {rates['torch']:6.1f} img/s   "
            f"numpy/torch {rates['numpy'] / rates['torch']:.2f}",
            flush=True,
        )
    if args.lanes:
        images = inputs["frames"]
        for engine, encoder in engines.items():

            def laned(e: Any = encoder) -> int:
                with lending_cpus(lambda: 1, 1):
                    return len(e.embed_and_classify(images, top_k=5)[0])

            cpu: dict[str, float] = {}
            rates = best_rates(
                {"one": lambda e=encoder: len(e.embed_and_classify(images, top_k=5)[0]), "two": laned},
                args.repeat,
                cpu,
            )
            rows.append(
                {
                    "input": f"frames, {engine}, lanes",
                    **{k: round(v, 1) for k, v in rates.items()},
                    **{f"cpu_ms_{k}": round(v * 1000, 1) for k, v in cpu.items()},
                }
            )
            print(
                f"lanes   {engine:5s} one lane {rates['one']:6.1f} img/s   two lanes {rates['two']:6.1f} "
                f"img/s   two/one {rates['two'] / rates['one']:.2f}   CPU ms/img {cpu['one'] * 1000:.1f} "
                f"and {cpu['two'] * 1000:.1f}",
                flush=True,
            )
    print(f"load after: {load()}")
    first = engines["numpy"]
    print(
        json.dumps(
            {"encoder": args.encoder, "batch": first.batch_size, "threads": args.threads, "rows": rows}
        )
    )


if __name__ == "__main__":
    main()
