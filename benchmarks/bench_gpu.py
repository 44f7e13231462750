"""The CUDA path measured in one run: encoders against raw torch on the same card, GPU busy time, and
the whole pipeline with CPU decode against NVDEC decode.

Run with `make bench-gpu` (or `python benchmarks/bench_gpu.py [--items N] [--repeat R] [--clips N]
[--seconds S]`). Without a CUDA device it prints one line saying so and exits 0. On a GPU it prints:
- per encoder (image.efficientnet_lite0, text.minilm, audio.resemblyzer): items/s through mmfs
  (`get_cached(name, device="cuda").embed`: its batching, pinned prefetch, autocast, checks) next to
  the best raw torch forward of the same loaded model on the same card (inputs already prepared in
  pinned host memory, copied non-blocking, bf16 and fp16 autocast, channels-last for convolutions),
  the ratio (goal >= 0.8), and the GPU's busy share while each side ran;
- end to end, `run_pipeline` over N generated clips (640x360, frames at 1 fps, EfficientNet-Lite0 on
  CUDA, the video-only switches of examples/video_only.yaml) with CPU decode (`video.backend: auto`)
  and, where torchcodec installs with CUDA, NVDEC decode (`video.backend: nvdec`): wall time,
  frames/s and the GPU's busy share over the run (goal: busy >= 70 %, or the reason it is not).
GPU busy share: NVML (`nvidia-ml-py`, the `gpu` extra) sampled every 50 ms, else `nvidia-smi`.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))  # bench_peers' clip generator


class GpuBusy:
    """Samples the GPU's utilisation (percent of time a kernel ran) in a thread while in a `with`."""

    def __init__(self, index: int = 0, period_s: float = 0.05) -> None:
        self.index, self.period_s = index, period_s
        self.samples: list[float] = []
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._read = self._nvml_reader() or self._smi_reader()

    def _nvml_reader(self) -> Callable[[], float] | None:
        try:
            import pynvml

            pynvml.nvmlInit()
            handle = pynvml.nvmlDeviceGetHandleByIndex(self.index)
        except Exception:  # absent package or library: nvidia-smi instead
            return None
        return lambda: float(pynvml.nvmlDeviceGetUtilizationRates(handle).gpu)

    def _smi_reader(self) -> Callable[[], float] | None:
        smi = shutil.which("nvidia-smi")
        if smi is None:
            return None
        query = [smi, f"--id={self.index}", "--query-gpu=utilization.gpu", "--format=csv,noheader,nounits"]

        def read() -> float:
            done = subprocess.run(query, capture_output=True, text=True, timeout=10)
            return float(done.stdout.strip().splitlines()[0])

        return read

    def __enter__(self) -> GpuBusy:
        self.samples = []
        self._stop.clear()
        self._thread = threading.Thread(target=self._loop, daemon=True)
        self._thread.start()
        return self

    def _loop(self) -> None:
        while self._read is not None and not self._stop.wait(self.period_s):
            self.samples.append(self._read())

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()

    @property
    def mean(self) -> float | None:
        """Mean busy percent over the samples; None when nothing could be read."""
        return round(float(np.mean(self.samples)), 1) if self.samples else None


def rate(fn: Callable[[], int], repeat: int) -> tuple[float, float | None]:
    """Best items/s of `fn` over `repeat` calls (CUDA synchronised), and the GPU's busy share meanwhile."""
    import torch

    fn()  # warm-up: cuDNN autotuning, allocator, lazy loads
    torch.cuda.synchronize()
    best = 0.0
    with GpuBusy() as busy:
        for _ in range(repeat):
            start = time.perf_counter()
            count = fn()
            torch.cuda.synchronize()
            best = max(best, count / (time.perf_counter() - start))
    return best, busy.mean


def raw_best(make: Callable[[Any], Callable[[], int]], repeat: int) -> tuple[float, str, float | None]:
    """The faster of bf16 and fp16 autocast for a raw forward; its items/s, dtype and busy share."""
    import torch

    results = []
    for dtype in (torch.bfloat16, torch.float16):
        items_s, busy = rate(make(dtype), repeat)
        results.append((items_s, str(dtype).removeprefix("torch."), busy))
    return max(results, key=lambda r: r[0])


def batches(n: int, size: int) -> list[slice]:
    return [slice(i, min(n, i + size)) for i in range(0, n, size)]


def bench_image(n: int, repeat: int) -> dict[str, Any]:
    import torch
    from bench_encoders import photos

    from mmfs.encoders import get_cached

    enc = get_cached("image.efficientnet_lite0", device="cuda")
    frames = photos(n)
    side = enc.input_size
    crops = torch.stack([torch.from_numpy(f[:side, :side].copy()).permute(2, 0, 1) for f in frames])
    pinned = crops.pin_memory()

    def raw(dtype: Any) -> Callable[[], int]:
        def run() -> int:
            with torch.inference_mode(), torch.autocast("cuda", dtype=dtype):
                for part in batches(n, enc.batch_size):
                    x = pinned[part].to("cuda", non_blocking=True).float().sub_(127.0).div_(128.0)
                    x = x.contiguous(memory_format=torch.channels_last)
                    enc.model._avg_pooling(enc.model.extract_features(x)).flatten(1)
            return n

        return run

    return row("image.efficientnet_lite0", enc, lambda: len(enc.embed(frames)), raw, repeat)


def bench_text(n: int, repeat: int) -> dict[str, Any]:
    import torch
    from bench_encoders import sentences

    from mmfs.encoders import get_cached

    enc = get_cached("text.minilm", device="cuda")
    texts = sentences(n)
    lean = enc.model  # encoders/bert_lean.SentenceEncoder: tokenizer and LeanBert
    encoded = [lean.tokenizer.encode_batch(texts[part]) for part in batches(n, enc.batch_size)]
    staged = [
        (
            torch.tensor([e.ids for e in batch]).pin_memory(),
            torch.tensor([e.attention_mask for e in batch]).pin_memory(),
        )
        for batch in encoded
    ]

    def raw(dtype: Any) -> Callable[[], int]:
        def run() -> int:
            with torch.inference_mode(), torch.autocast("cuda", dtype=dtype):
                for ids, mask in staged:
                    lean.model(ids.to("cuda", non_blocking=True), mask.to("cuda", non_blocking=True))
            return n

        return run

    return row("text.minilm", enc, lambda: len(enc.embed(texts)), raw, repeat)


def bench_audio(n: int, repeat: int) -> dict[str, Any]:
    import torch
    from bench_encoders import windows

    from mmfs.encoders import get_cached
    from mmfs.encoders.audio_resemblyzer import normalize_volume, partial_mels

    enc = get_cached("audio.resemblyzer", device="cuda")
    clips = windows(n)
    mels = np.stack([m for w in clips for m in partial_mels(normalize_volume(w))])
    pinned = torch.from_numpy(mels).pin_memory()

    def raw(dtype: Any) -> Callable[[], int]:
        def run() -> int:  # resemblyzer's LSTM in fp32 (cuDNN's bf16 RNNs vary): dtype only labels it
            with torch.inference_mode():
                for part in batches(len(pinned), enc.batch_size):
                    _, (hidden, _) = enc.model["lstm"](pinned[part].to("cuda", non_blocking=True))
                    torch.relu(enc.model["linear"](hidden[-1]))
            return n

        return run

    return row("audio.resemblyzer", enc, lambda: len(enc.embed(clips)), raw, repeat)


def row(
    name: str, enc: Any, mmfs: Callable[[], int], raw: Callable[[Any], Callable[[], int]], repeat: int
) -> dict[str, Any]:
    raw_rate, dtype, raw_busy = raw_best(raw, repeat)
    mmfs_rate, mmfs_busy = rate(mmfs, repeat)
    return {
        "encoder": name,
        "batch_size": enc.batch_size,
        "mmfs_items_s": round(mmfs_rate, 1),
        "raw_items_s": round(raw_rate, 1),
        "raw_dtype": dtype,
        "ratio": round(mmfs_rate / raw_rate, 3),
        "gpu_busy_mmfs_pct": mmfs_busy,
        "gpu_busy_raw_pct": raw_busy,
    }


def end_to_end(clips: list[Path], backend: str) -> dict[str, Any]:
    """The video-only pipeline over `clips` on CUDA with the given decoder; wall, frames/s, GPU busy."""
    import os

    from mmfs.config import load_config
    from mmfs.pipelines.run import run_pipeline

    base = load_config(Path(__file__).resolve().parents[1] / "examples" / "video_only.yaml")
    data = base.model_dump(mode="json")
    data["video"]["backend"] = backend
    data["encoders"]["device"] = "cuda"
    data["runner"].update(isolate_decode=backend != "nvdec", workers=os.cpu_count() or 1, batch_media=16)
    cfg = type(base).model_validate(data)
    root = Path(tempfile.mkdtemp(prefix="bench-gpu-"))
    try:
        with GpuBusy() as busy:
            start = time.perf_counter()
            summary = run_pipeline([str(c) for c in clips], cfg, root / "store", show_progress=False)
            wall = time.perf_counter() - start
        frames = summary.rows.get("frames", 0)
    finally:
        shutil.rmtree(root, ignore_errors=True)
    return {
        "decode": backend,
        "items": summary.n_ok,
        "quarantined": summary.n_quarantined,
        "wall_s": round(wall, 2),
        "frames": frames,
        "frames_per_s": round(frames / wall, 1) if frames else None,
        "gpu_busy_pct": busy.mean,
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--items", type=int, default=2048, help="inputs per encoder")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--clips", type=int, default=32)
    parser.add_argument("--seconds", type=float, default=30.0)
    args = parser.parse_args()
    import torch

    if not torch.cuda.is_available():
        print("bench-gpu: no CUDA device here (torch.cuda.is_available() is False); nothing was measured")
        return
    from bench_peers import make_clips

    from mmfs.transforms.video.torchcodec_reader import available

    report: dict[str, Any] = {"device": torch.cuda.get_device_name(0), "torch": torch.__version__}
    report["encoders"] = [f(args.items, args.repeat) for f in (bench_image, bench_text, bench_audio)]
    for r in report["encoders"]:
        print(
            f"{r['encoder']:26s} mmfs {r['mmfs_items_s']:9.1f}/s  raw {r['raw_items_s']:9.1f}/s "
            f"({r['raw_dtype']})  ratio {r['ratio']:.2f}  "
            f"busy {r['gpu_busy_mmfs_pct']}% / {r['gpu_busy_raw_pct']}%"
        )
    clips = make_clips(args.clips, args.seconds)
    runs = [end_to_end(clips, "auto")]
    if available("cuda"):
        runs.append(end_to_end(clips, "nvdec"))
    else:
        print("end to end: NVDEC not measured (torchcodec with CUDA is not installed: pip install '.[gpu]')")
    report["end_to_end"] = runs
    for r in runs:
        print(
            f"end to end, {r['decode']:6s} decode: {r['wall_s']} s, {r['frames_per_s']} frames/s, "
            f"busy {r['gpu_busy_pct']}%"
        )
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
