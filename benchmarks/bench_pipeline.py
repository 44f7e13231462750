"""Throughput of mmfs next to the raw libraries doing the same work, in the same run.

Run with `make bench` (or `python benchmarks/bench_pipeline.py [--repeat N]`). It prints:
- the whole pipeline on the sample corpus: media-seconds processed per wall-second, and per stage;
- per component, mmfs vs the raw library on identical input, as a ratio (mmfs rate / raw rate; 1.0
  means no overhead): decord decode, OpenCV Farneback, librosa MFCC, encoder forward pass.
"""

from __future__ import annotations

import argparse
import itertools
import json
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from mmfs.config import PipelineConfig
from mmfs.demo import SAMPLE_DIR
from mmfs.pipelines.run import run_pipeline

VIDEO = SAMPLE_DIR / "cockatoo.mp4"
SPEECH = SAMPLE_DIR / "dashwood_speech.wav"


def best_of(fn: Callable[[], Any], repeat: int) -> tuple[float, Any]:
    """Fastest wall time of `repeat` calls (and the last result)."""
    best, result = float("inf"), None
    for _ in range(repeat):
        start = time.perf_counter()
        result = fn()
        best = min(best, time.perf_counter() - start)
    return best, result


def bench_pipeline(cfg: PipelineConfig) -> dict[str, Any]:
    """The sample corpus end to end into a fresh store (models loaded once beforehand)."""
    from mmfs.stages.encode import Enricher

    Enricher(cfg).dims()  # load the encoders outside the timed region, as a long run amortises them
    root = Path(tempfile.mkdtemp(prefix="mmfs-bench-"))
    try:
        start = time.perf_counter()
        summary = run_pipeline([str(SAMPLE_DIR)], cfg, root / "store", show_progress=False)
        wall = time.perf_counter() - start
    finally:
        shutil.rmtree(root, ignore_errors=True)
    return {
        "wall_s": round(wall, 2),
        "media_s": round(summary.media_seconds, 2),
        "media_s_per_s": round(summary.media_seconds / wall, 3),
        "stage_s": {k: round(v, 2) for k, v in sorted(summary.stage_seconds.items())},
    }


def bench_decode(cfg: PipelineConfig, repeat: int) -> dict[str, Any]:
    """Frames/s: mmfs sample_frames vs decord alone decoding the same frames at the same size."""
    import decord

    from mmfs.transforms.video.frames import sample_frames

    def ours() -> int:
        frames = sample_frames(
            VIDEO,
            fps=cfg.video.fps,
            max_frames=cfg.video.max_frames,
            decode_short_side=cfg.video.decode_short_side,
        )
        return len(frames.indices)

    _, n = best_of(ours, 1)
    t_ours, n = best_of(ours, repeat)
    width, height = (
        round(1280 * cfg.video.decode_short_side / 720) // 2 * 2,
        cfg.video.decode_short_side,
    )

    def raw() -> int:
        vr = decord.VideoReader(str(VIDEO), width=width, height=height)
        stamps = vr.get_frame_timestamp(range(len(vr)))[:, 0]
        targets = np.arange(0, stamps[-1] + 1e-9, 1.0 / cfg.video.fps)
        idx = np.unique(np.searchsorted(stamps, targets + 1e-6, side="right") - 1)
        return len(vr.get_batch(list(idx)).asnumpy())

    t_raw, n_raw = best_of(raw, repeat)
    return _ratio("decode (decord)", "frames", n / t_ours, n_raw / t_raw)


def bench_flow(cfg: PipelineConfig, repeat: int) -> dict[str, Any]:
    """Pairs/s: mmfs flow_sequence vs cv2.calcOpticalFlowFarneback on the same frames."""
    import cv2

    from mmfs.transforms.video.flow import flow_sequence
    from mmfs.transforms.video.frames import sample_frames

    frames = sample_frames(
        VIDEO, fps=cfg.video.fps, max_frames=600, decode_short_side=cfg.video.decode_short_side
    )
    f = cfg.flow
    t_ours, pairs = best_of(lambda: flow_sequence(frames, f), repeat)
    h, w = frames.frames.shape[1:3]
    size = (f.work_width, round(h * f.work_width / w))

    def raw() -> int:  # the same library work: grey, resize to the work width, Farneback per pair
        grey = [
            cv2.resize(cv2.cvtColor(x, cv2.COLOR_RGB2GRAY), size, interpolation=cv2.INTER_AREA)
            for x in frames.frames
        ]
        for a, b in itertools.pairwise(grey):
            cv2.calcOpticalFlowFarneback(
                a, b, None, f.pyr_scale, f.levels, f.winsize, f.iterations, f.poly_n, f.poly_sigma, 0
            )
        return len(grey) - 1

    t_raw, n_raw = best_of(raw, repeat)
    return _ratio("optical flow (OpenCV Farneback)", "pairs", len(pairs) / t_ours, n_raw / t_raw)


def bench_mfcc(cfg: PipelineConfig, repeat: int) -> dict[str, Any]:
    """Windows/s: mmfs window_features vs librosa alone computing the same features (log-mel, MFCC,
    deltas, spectral statistics; `bench_audio.librosa_window`) with the full windows stacked."""
    from bench_audio import librosa_window

    from mmfs.transforms.audio.windows import decode_audio, window_features

    audio = decode_audio(SPEECH, sample_rate=cfg.audio.sample_rate, max_duration_s=3600)
    a, seg = cfg.audio, cfg.align.segment_s
    window_features(audio, segment_s=seg, cfg=a)  # JIT warm-up for both sides
    t_ours, windows = best_of(lambda: window_features(audio, segment_s=seg, cfg=a), repeat)
    step = round(seg * audio.sample_rate)
    chunks = [audio.samples[i : i + step] for i in range(0, len(audio.samples), step)]
    full = np.stack([c for c in chunks if len(c) == step])
    rest = [np.pad(c, (0, max(0, a.n_fft - len(c)))) for c in chunks if len(c) != step]

    def raw() -> int:
        librosa_window(full, a)
        for chunk in rest:
            librosa_window(chunk, a)
        return len(chunks)

    raw()
    t_raw, n_raw = best_of(raw, repeat)
    return _ratio(
        "log-mel, MFCC + deltas, spectral stats (librosa)", "windows", len(windows) / t_ours, n_raw / t_raw
    )


def bench_encoder(cfg: PipelineConfig, repeat: int) -> dict[str, Any]:
    """Images/s: the mmfs image encoder (preprocess + forward + labels) vs the bare torch forward."""
    import torch

    from mmfs.encoders import get_cached
    from mmfs.transforms.video.frames import sample_frames

    frames = sample_frames(
        VIDEO, fps=cfg.video.fps, max_frames=600, decode_short_side=cfg.video.decode_short_side
    )
    encoder = get_cached(cfg.encoders.image, device=cfg.encoders.device, batch_size=cfg.encoders.batch_size)
    batch = list(frames.frames)
    encoder.embed_and_classify(batch, top_k=cfg.image.top_labels)
    t_ours, _ = best_of(lambda: encoder.embed_and_classify(batch, top_k=cfg.image.top_labels), repeat)
    # the raw side: the package's torch graph (mmfs's CPU default is its NumPy engine)
    model = get_cached(cfg.encoders.image, device=cfg.encoders.device, cpu_engine="torch").model
    device = next(model.parameters()).device
    x = torch.randn(len(batch), 3, 224, 224, device=device)

    def raw() -> int:
        with torch.inference_mode():
            model(x)
        return len(batch)

    raw()
    t_raw, n_raw = best_of(raw, repeat)
    return _ratio(f"encoder forward ({cfg.encoders.image})", "images", len(batch) / t_ours, n_raw / t_raw)


def _ratio(name: str, unit: str, ours: float, raw: float) -> dict[str, Any]:
    return {
        "component": name,
        "unit": unit,
        "mmfs_per_s": round(ours, 2),
        "raw_per_s": round(raw, 2),
        "ratio": round(ours / raw, 3),
    }


def main(argv: list[str] | None = None) -> int:
    """Run every benchmark and print a table (or JSON)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--repeat", type=int, default=3, help="timed repetitions per component (best is kept)"
    )
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    args = parser.parse_args(argv)
    cfg = PipelineConfig()
    components = [fn(cfg, args.repeat) for fn in (bench_decode, bench_flow, bench_mfcc, bench_encoder)]
    pipeline = bench_pipeline(cfg)
    if args.json:
        print(json.dumps({"pipeline": pipeline, "components": components}, indent=2))
        return 0
    print(
        f"pipeline on the sample corpus: {pipeline['media_s']} media-s in {pipeline['wall_s']} s "
        f"= {pipeline['media_s_per_s']} media-s per wall-s"
    )
    print("  per stage (s): " + ", ".join(f"{k} {v}" for k, v in pipeline["stage_s"].items()))
    print(f"\n{'component':<42}{'unit':>8}{'mmfs/s':>10}{'raw/s':>10}{'ratio':>8}")
    for c in components:
        print(f"{c['component']:<42}{c['unit']:>8}{c['mmfs_per_s']:>10}{c['raw_per_s']:>10}{c['ratio']:>8}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
