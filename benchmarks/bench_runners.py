"""Scaling of the runners: the same generated corpus under local, Ray and Beam, with 1 and 2 workers.

Run with `make bench-runners` (or `python benchmarks/bench_runners.py [--videos N --seconds S]`).
Each configuration runs as a fresh `mmfs run` process into a fresh store, as a user would start it,
so every figure includes the interpreter, model loading and (for Ray) cluster start-up. It prints:
- the fixed start-up cost of each runner: the wall time of a run over one 1-second clip;
- per configuration: wall time, media-seconds processed per wall-second, the steady rate (the extra
  media over the extra wall time next to the one-clip run: what a long run approaches; nan when the
  corpus is too small to tell), and the ratio of that rate to the local runner's with as many workers;
- the speed-up from 1 to 2 workers of each runner.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the test media factory
from tests.media_factory import FramePainter, constant_rate_times, textured_frame, write_video

CONFIGS: list[tuple[str, int]] = [("local", 1), ("local", 2), ("ray", 1), ("ray", 2), ("beam", 1)]


def _rolling_painter(width: int, height: int, dx: int, dy: int, seed: int) -> FramePainter:
    """A texture that scrolls (wrapping around) by (dx, dy) pixels per frame: motion for any length."""
    base = textured_frame(width, height, seed)

    def paint(index: int, _t: float) -> np.ndarray:
        return np.roll(base, shift=(index * dy, index * dx), axis=(0, 1))

    return paint


def make_corpus(root: Path, videos: int, seconds: float, fps: float = 15.0) -> Path:
    """`videos` distinct clips of `seconds` each, 320x240 with motion and a tone track."""
    folder = root / "corpus"
    times = constant_rate_times(round(seconds * fps), fps)
    for i in range(videos):
        painter = _rolling_painter(320, 240, dx=1 + i % 3, dy=1, seed=i)
        write_video(
            folder / f"clip_{i:03d}.mp4",
            times_s=times,
            width=320,
            height=240,
            painter=painter,
            audio_tone_hz=220.0 + 40 * i,
        )
    return folder


def run_once(paths: list[Path], kind: str, workers: int, root: Path) -> dict[str, Any]:
    """One `mmfs run` in a fresh process and store: wall time and its JSON summary."""
    store = Path(tempfile.mkdtemp(prefix=f"store-{kind}-", dir=root))
    config = store.with_suffix(".yaml")
    runner: dict[str, Any] = {"kind": kind, "workers": workers, "batch_media": 4}
    if kind == "beam" and workers > 1:
        runner["beam_options"] = [f"--direct_num_workers={workers}", "--direct_running_mode=multi_threading"]
    config.write_text(yaml.safe_dump({"runner": runner, "index": {"auto": False}}))
    cmd = [sys.executable, "-c", "from mmfs.cli import main; main()", "run", *map(str, paths)]
    cmd += ["--store", str(store), "--config", str(config), "--json", "--quiet"]
    start = time.perf_counter()
    done = subprocess.run(cmd, capture_output=True, text=True, check=False)
    wall = time.perf_counter() - start
    if done.returncode != 0:
        raise RuntimeError(f"{kind} x{workers} failed: {done.stderr.strip().splitlines()[-1:]}")
    summary = json.loads(done.stdout)
    shutil.rmtree(store, ignore_errors=True)
    return {"wall_s": wall, "media_s": summary["media_seconds"], "n_ok": summary["n_ok"]}


def main(argv: list[str] | None = None) -> int:
    """Generate the corpus, run every configuration, print a table and a JSON line."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--videos", type=int, default=8, help="clips in the corpus (the issue's figure: 40)")
    parser.add_argument("--seconds", type=float, default=20.0, help="clip length (60: 1-minute clips)")
    args = parser.parse_args(argv)
    root = Path(tempfile.mkdtemp(prefix="mmfs-bench-runners-"))
    try:
        corpus = make_corpus(root, args.videos, args.seconds)
        tiny_times = constant_rate_times(15, 15.0)
        tiny = write_video(root / "tiny" / "tiny.mp4", times_s=tiny_times, audio_tone_hz=440.0)
        tiny_runs = {kind: run_once([tiny], kind, 1, root) for kind in ("local", "ray", "beam")}
        startup = {kind: r["wall_s"] for kind, r in tiny_runs.items()}
        results: dict[str, dict[str, Any]] = {}
        for kind, workers in CONFIGS:
            r = run_once([corpus], kind, workers, root)
            # marginal rate: the extra media over the extra time, next to the one-clip run
            extra_s = r["wall_s"] - startup[kind]
            extra_media = r["media_s"] - tiny_runs[kind]["media_s"]
            steady = extra_media / extra_s if extra_s > 1.0 else float("nan")
            results[f"{kind}x{workers}"] = {
                **r,
                "media_s_per_s": r["media_s"] / r["wall_s"],
                "steady_media_s_per_s": steady,
            }
    finally:
        shutil.rmtree(root, ignore_errors=True)
    _print(args, startup, results)
    return 0


def _print(args: argparse.Namespace, startup: dict[str, float], results: dict[str, dict[str, Any]]) -> None:
    print(f"corpus: {args.videos} clips x {args.seconds:g} s (320x240, 15 fps, with audio)")
    print("start-up (one 1-s clip): " + ", ".join(f"{k} {v:.1f} s" for k, v in startup.items()))
    print(f"{'config':<9} {'wall s':>7} {'media-s/s':>10} {'steady':>8} {'vs local':>9}")
    for name, r in results.items():
        workers = name.split("x")[1]
        local = results.get(f"localx{workers}", results["localx1"])
        ratio = r["steady_media_s_per_s"] / local["steady_media_s_per_s"]
        r["ratio_to_local"] = ratio
        print(
            f"{name:<9} {r['wall_s']:7.1f} {r['media_s_per_s']:10.2f} "
            f"{r['steady_media_s_per_s']:8.2f} {ratio:9.2f}"
        )
    speedups = {
        kind: results[f"{kind}x2"]["steady_media_s_per_s"] / results[f"{kind}x1"]["steady_media_s_per_s"]
        for kind in ("local", "ray")
    }
    print("speed-up 1 -> 2 workers: " + ", ".join(f"{k} {v:.2f}x" for k, v in speedups.items()))
    print(json.dumps({"startup_s": startup, "runs": results, "speedup_1_to_2": speedups}, default=float))


if __name__ == "__main__":
    raise SystemExit(main())
