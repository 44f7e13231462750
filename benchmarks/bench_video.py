"""Video frame extraction: mmfs next to decord alone on the same files in the same run, and its memory.

Run with `make bench-video` (or `python benchmarks/bench_video.py [--repeat N] [--seconds S]`). It
generates H.264 clips (30 fps, a moving texture with a cut every 5 s) at 640x360 and 1280x720 and prints:
- frames/s of `mmfs.transforms.video.frames.sample_frames` / frames/s of decord doing the same work, for full
  decode (every frame) and for 1 fps sampling, both scaled inside the decoder to the default short side;
  the raw side keeps every frame it decodes (`next()` for all, faster than `get_batch`), or reads the
  timestamps, picks the frames on screen at each second and decodes them with `get_batch`. Each side
  runs N times, alternated; `ratio` compares the best wall times, `CPU ratio` the best CPU times
  (user + system, every thread), which a machine shared with other jobs disturbs less;
- peak RSS of a fresh child process that extracts 1 fps frames from a 1-minute and a 10-minute clip,
  streamed (`iter_frames`, each chunk dropped once used, as the shot detector does) and collected
  (`sample_frames`, every kept frame in memory at the end, as the pipeline holds them for the encoders);
- the dense shot-detection pass over the same two clips, in its own child processes;
- the optical-flow ratios of `bench_flow.py` (pairs/s of `flow_sequence`, every statistic included, /
  pairs/s of OpenCV alone) at `--flow-widths` (160 and 320 px), so one command gives every video figure.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np
from bench_flow import flow_ratios, print_table  # this folder: run as `python benchmarks/bench_video.py`

SHORT_SIDE = 256  # VideoConfig.decode_short_side's default
FPS = 30


def best_of(fn: Callable[[], int], repeat: int) -> tuple[float, int]:
    """Fastest wall time of `repeat` calls, and the frame count of the last."""
    best, n = float("inf"), 0
    for _ in range(repeat):
        start = time.perf_counter()
        n = fn()
        best = min(best, time.perf_counter() - start)
    return best, n


def timed(fn: Callable[[], int]) -> tuple[float, float, int]:
    """Wall seconds and CPU seconds (user + system, all threads) of one call, and its frame count."""
    import resource

    before, start = resource.getrusage(resource.RUSAGE_SELF), time.perf_counter()
    n = fn()
    wall, after = time.perf_counter() - start, resource.getrusage(resource.RUSAGE_SELF)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu, n


def write_clip(path: Path, width: int, height: int, seconds: float, preset: str = "veryfast") -> Path:
    """An H.264 clip (libx264, default GOP) of a drifting texture with a new tint every 5 s."""
    import av
    import cv2

    rng = np.random.default_rng(0)
    small = rng.integers(0, 256, size=(height // 8 + 2, (width + 256) // 8 + 2, 3), dtype=np.uint8)
    base = cv2.resize(small, ((width + 256) + 16, height + 16), interpolation=cv2.INTER_CUBIC)[:height]
    tints = np.array([[1.0, 0.6, 0.6], [0.6, 1.0, 0.6], [0.6, 0.6, 1.0]], dtype=np.float32)
    with av.open(str(path), mode="w") as container:
        stream = container.add_stream("libx264", rate=FPS)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        stream.options = {"preset": preset}
        for i in range(round(seconds * FPS)):
            view = base[:, (i * 2) % 256 : (i * 2) % 256 + width] * tints[(i // (5 * FPS)) % 3]
            frame = av.VideoFrame.from_ndarray(view.astype(np.uint8), format="rgb24")
            frame.pts, frame.time_base = i, Fraction(1, FPS)
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path


def decode_size(width: int, height: int) -> tuple[int, int]:
    from mmfs.transforms.video.geometry import coded_size

    return coded_size(width, height, SHORT_SIDE)


def ratio_row(path: Path, width: int, height: int, mode: str, repeat: int) -> dict[str, Any]:
    """mmfs vs decord on one clip, full decode or 1 fps."""
    import decord

    from mmfs.transforms.video.frames import sample_frames

    w, h = decode_size(width, height)
    policy = {"sampling": "every_k", "every_k": 1} if mode == "full" else {"sampling": "fps"}

    def ours() -> int:
        out = sample_frames(path, fps=1.0, max_frames=10**6, decode_short_side=SHORT_SIDE, **policy)  # type: ignore[arg-type]
        return len(out.indices)

    def raw() -> int:
        vr = decord.VideoReader(str(path), width=w, height=h)
        if (
            mode == "full"
        ):  # every frame kept, as mmfs keeps them (decord's fastest way: next(), not get_batch)
            return len([vr.next().asnumpy() for _ in range(len(vr))])
        stamps = vr.get_frame_timestamp(range(len(vr)))[:, 0]
        targets = np.arange(0, stamps[-1] + 1e-9, 1.0)
        idx = np.unique(np.searchsorted(stamps, targets + 1e-6, side="right") - 1)
        return len(vr.get_batch(idx.tolist()).asnumpy())

    best_of(ours, 1)  # warm the page cache and the libraries
    t_raw = t_ours = c_raw = c_ours = float("inf")
    n = n_raw = 0
    for _ in range(repeat):  # alternated, so that a burst of load elsewhere hits both sides alike
        wall, cpu, n_raw = timed(raw)
        t_raw, c_raw = min(t_raw, wall), min(c_raw, cpu)
        wall, cpu, n = timed(ours)
        t_ours, c_ours = min(t_ours, wall), min(c_ours, cpu)
    assert n == n_raw, (n, n_raw)
    return {
        "clip": f"{width}x{height}",
        "mode": mode,
        "frames": n,
        "mmfs_fps": round(n / t_ours, 1),
        "decord_fps": round(n_raw / t_raw, 1),
        "ratio": round(t_raw / t_ours, 3),
        "cpu_ratio": round(c_raw / c_ours, 3),  # frames per CPU-second, mmfs / decord
    }


def child_peak_rss(path: Path, how: str) -> float:
    """Peak RSS (MiB) of a fresh interpreter that runs one extraction of `path` (`how`)."""
    out = subprocess.run(
        [sys.executable, __file__, "--child", how, str(path)],
        check=True,
        capture_output=True,
        text=True,
        timeout=1800,
    )
    return float(json.loads(out.stdout.strip().splitlines()[-1])["peak_rss_mib"])


def run_child(how: str, path: str) -> None:
    """In the child: import, extract, print the process's own peak RSS."""
    import resource

    from mmfs.transforms.video.frames import iter_frames, sample_frames
    from mmfs.transforms.video.shots import detect_shots

    n = 0
    if how == "streamed":
        for chunk in iter_frames(path, fps=1.0, max_frames=600, decode_short_side=SHORT_SIDE):
            n += len(chunk.indices)
    elif how == "collected":
        n = len(sample_frames(path, fps=1.0, max_frames=600, decode_short_side=SHORT_SIDE).indices)
    else:
        n = len(detect_shots(path, threshold=0.3, min_shot_s=0.4, work_size=64))
    peak_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(json.dumps({"n": n, "peak_rss_mib": round(peak_kib / 1024, 1)}))


def main(argv: list[str] | None = None) -> int:
    """Generate the clips, run every measurement, print a table (or JSON)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5, help="best of N timed runs")
    parser.add_argument("--seconds", type=float, default=20.0, help="length of the throughput clips")
    parser.add_argument("--no-rss", action="store_true", help="skip the 1- vs 10-minute memory runs")
    parser.add_argument("--no-flow", action="store_true", help="skip the optical-flow ratios")
    parser.add_argument(
        "--flow-widths", type=int, nargs="+", default=[160, 320], help="flow.work_width values to time"
    )
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    parser.add_argument("--child", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        run_child(*args.child)
        return 0
    root = Path(tempfile.mkdtemp(prefix="mmfs-bench-video-"))
    try:
        rows = []
        for width, height in ((640, 360), (1280, 720)):
            clip = write_clip(root / f"clip_{width}.mp4", width, height, args.seconds)
            rows += [ratio_row(clip, width, height, mode, args.repeat) for mode in ("full", "1fps")]
        memory = []
        if not args.no_rss:
            clips = {m: write_clip(root / f"long_{m}.mp4", 640, 360, 60.0 * m, "ultrafast") for m in (1, 10)}
            for how in ("streamed", "collected", "shots"):
                one, ten = (child_peak_rss(clips[m], how) for m in (1, 10))
                memory.append(
                    {
                        "run": how,
                        "rss_1min_mib": one,
                        "rss_10min_mib": ten,
                        "ten_over_one": round(ten / one, 3),
                    }
                )
    finally:
        shutil.rmtree(root, ignore_errors=True)
    flow: list[dict[str, Any]] = []
    if not args.no_flow:
        import cv2

        cv2.setNumThreads(1)  # as in a decode worker, and as `make bench-flow` measures
        flow = flow_ratios(repeat=args.repeat, widths=tuple(args.flow_widths))
    if args.json:
        print(json.dumps({"throughput": rows, "memory": memory, "flow": flow}, indent=2))
        return 0
    print(
        f"{'clip':<11}{'mode':<7}{'frames':>8}{'mmfs f/s':>11}{'decord f/s':>12}{'ratio':>8}{'CPU ratio':>11}"
    )
    for r in rows:
        print(
            f"{r['clip']:<11}{r['mode']:<7}{r['frames']:>8}{r['mmfs_fps']:>11}{r['decord_fps']:>12}"
            f"{r['ratio']:>8}{r['cpu_ratio']:>11}"
        )
    if memory:
        print(f"\n{'peak RSS, 640x360 at 1 fps':<28}{'1 min MiB':>11}{'10 min MiB':>12}{'10/1':>8}")
        for m in memory:
            print(f"{m['run']:<28}{m['rss_1min_mib']:>11}{m['rss_10min_mib']:>12}{m['ten_over_one']:>8}")
    if flow:
        print("\noptical flow: 40 pairs of the sample clip at 640x360, OpenCV on one thread (bench_flow.py)")
        print_table(flow)
    return 0


if __name__ == "__main__":
    sys.exit(main())
