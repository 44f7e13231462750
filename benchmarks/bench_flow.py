"""Optical-flow throughput of mmfs next to raw OpenCV on the same frames, in the same run.

Run with `make bench-flow` (or `python benchmarks/bench_flow.py [--pairs N] [--repeat N] [--widths ...]`).
Frames are consecutive frames of the sample video (`cockatoo.mp4`, 1280x720, 20 fps) sampled at 10 fps and
decoded at 640x360. For each working width and each `flow.method` it prints pairs/s of:
- raw: what a user of OpenCV alone does for the same flow: grey conversion and resize of each frame to
  the working width once, then `cv2.calcOpticalFlowFarneback` (mmfs's parameters) or a reused
  `cv2.DISOpticalFlow` (FAST or MEDIUM preset) on each consecutive pair;
- mmfs: `flow_sequence`, the function the pipeline calls: the same conversion and flow plus every
  statistic of a flow row (magnitudes, orientation histogram, moving share, small field, camera motion
  fit and residual).
The ratio is mmfs / raw (1.0 = no overhead); each side is the best of --repeat alternated timings, with
OpenCV on --threads threads (1 by default, one per decode worker as in a run).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable
from typing import Any

import cv2
import numpy as np

from mmfs.config import FlowConfig
from mmfs.demo import SAMPLE_DIR
from mmfs.transforms.video.flow import flow_sequence
from mmfs.transforms.video.frames import SampledFrames, sample_frames

VIDEO = SAMPLE_DIR / "cockatoo.mp4"
METHODS = ("farneback", "dis_fast", "dis_medium")
DIS_PRESETS = {"dis_fast": cv2.DISOPTICAL_FLOW_PRESET_FAST, "dis_medium": cv2.DISOPTICAL_FLOW_PRESET_MEDIUM}


def load_frames(n_pairs: int) -> SampledFrames:
    """n_pairs + 1 consecutive frames of the sample video at 10 fps, 640x360 RGB."""
    frames = sample_frames(VIDEO, fps=10.0, max_frames=n_pairs + 1, decode_short_side=360)
    if len(frames.times_s) < n_pairs + 1:
        sys.exit(f"{VIDEO} gave {len(frames.times_s)} frames, fewer than {n_pairs + 1}")
    return frames


def raw_flow(frames: np.ndarray, cfg: FlowConfig) -> Callable[[], int]:
    """OpenCV alone: grey + resize each frame to the work width, then the flow of each pair."""
    h, w = frames.shape[1:3]
    size = (cfg.work_width, round(h * cfg.work_width / w))
    if cfg.method == "farneback":

        def flow(a: np.ndarray, b: np.ndarray) -> Any:
            return cv2.calcOpticalFlowFarneback(
                a,
                b,
                None,
                cfg.pyr_scale,
                cfg.levels,
                cfg.winsize,
                cfg.iterations,
                cfg.poly_n,
                cfg.poly_sigma,
                0,
            )
    else:
        dis = cv2.DISOpticalFlow.create(DIS_PRESETS[cfg.method])

        def flow(a: np.ndarray, b: np.ndarray) -> Any:
            return dis.calc(a, b, None)

    def run() -> int:
        prev = None
        pairs = 0
        for rgb in frames:
            grey = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)
            if size != (w, h):
                grey = cv2.resize(
                    grey, size, interpolation=cv2.INTER_AREA if size[0] < w else cv2.INTER_LINEAR
                )
            if prev is not None:
                flow(prev, grey)
                pairs += 1
            prev = grey
        return pairs

    return run


def interleaved(
    raw: Callable[[], int], mmfs: Callable[[], int], repeat: int, clock: Callable[[], float]
) -> tuple[float, float]:
    """Best pairs/s of each, timed alternately so that a change in machine load weighs on both alike."""
    best = {"raw": 0.0, "mmfs": 0.0}
    for _ in range(repeat):
        for name, fn in (("raw", raw), ("mmfs", mmfs)):
            start = clock()
            pairs = fn()
            best[name] = max(best[name], pairs / (clock() - start))
    return best["raw"], best["mmfs"]


def flow_ratios(
    pairs: int = 40, repeat: int = 5, widths: tuple[int, ...] = (160, 320, 640), clock: str = "wall"
) -> list[dict[str, Any]]:
    """pairs/s of raw OpenCV and of mmfs, and their ratio, for each work width and flow method."""
    timer = time.perf_counter if clock == "wall" else time.thread_time
    frames = load_frames(pairs)
    pixels = np.ascontiguousarray(frames.frames)
    h, w = pixels.shape[1:3]
    results = []
    for width in widths:
        for method in METHODS:
            cfg = FlowConfig(method=method, work_width=width)  # type: ignore[arg-type]
            raw_rate, mmfs_rate = interleaved(
                raw_flow(pixels, cfg), lambda cfg=cfg: len(flow_sequence(frames, cfg)), repeat, timer
            )
            work, ratio = f"{width}x{round(h * width / w)}", mmfs_rate / raw_rate
            results.append(dict(work=work, method=method, raw=raw_rate, mmfs=mmfs_rate, ratio=ratio))
    return results


def print_table(results: list[dict[str, Any]]) -> None:
    """The flow results as a table: work size, method, raw and mmfs pairs/s, ratio."""
    print(f"{'work size':>10} {'method':>11} {'raw pairs/s':>12} {'mmfs pairs/s':>13} {'mmfs/raw':>9}")
    for r in results:
        print(f"{r['work']:>10} {r['method']:>11} {r['raw']:12.1f} {r['mmfs']:13.1f} {r['ratio']:9.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, default=40, help="consecutive frame pairs per timing")
    parser.add_argument("--repeat", type=int, default=5, help="alternated timings per side (best kept)")
    parser.add_argument("--widths", type=int, nargs="+", default=[160, 320, 640], help="flow.work_width")
    parser.add_argument(
        "--threads", type=int, default=1, help="OpenCV threads (1: as in the pipeline's decode workers)"
    )
    parser.add_argument(
        "--clock",
        choices=("wall", "cpu"),
        default="wall",
        help="cpu: this thread's CPU time (with --threads 1, steady on a machine shared with other work)",
    )
    parser.add_argument("--json", action="store_true", help="print the results as JSON too")
    args = parser.parse_args()
    cv2.setNumThreads(args.threads)
    print(
        f"{args.pairs} pairs of 640x360 frames from {VIDEO.name}; best of {args.repeat}; "
        f"OpenCV {cv2.__version__}, {cv2.getNumThreads()} threads, {args.clock} clock"
    )
    results = flow_ratios(args.pairs, args.repeat, tuple(args.widths), args.clock)
    print_table(results)
    if args.json:
        print(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
