"""mmfs next to its peers on the same video work, in the same run: Daft, Ray Data and mmfs side by side.

Run with `make bench-peers` (or `python benchmarks/bench_peers.py [--clips N] [--seconds S]
[--repeat R] [--only mmfs,daft,ray]`). Each side is a whole fresh process (start-up, imports and model
load included) doing the same work on the same generated clips (640x360, 25 fps, no sound):
frames at 1 fps resized to 224, EfficientNet-Lite0 (the same weights package and preprocessing) per
frame, one row per frame into Lance:
- mmfs: `mmfs run` with every other stage off (`video.audio`, flow, labels, thumbnails, image
  features, the text encoder and segments: the video-only config of `examples/video_only.yaml`);
- Daft 0.7: `daft.read_video_frames`, a class UDF that loads the model once, `write_lance`
  (benchmarks/peers/daft_job.py);
- Ray Data 2.60: `ray.data.read_videos`, an actor pool that loads the model once, `lance_ray.write_lance`
  (benchmarks/peers/ray_job.py; Ray's own `Dataset.write_lance` fails against pylance 14).
- lean: the same work as a plain sequential script in mmfs's venv (decord at 224x224, the same model,
  one Lance write; benchmarks/peers/lean_job.py): the floor the frameworks must beat by overlapping;
- lean-cl: the lean script with the model and its input channels-last (NHWC), the layout mmfs runs
  EfficientNet in on the CPU and the peers' jobs do not ask for: what is layout and what is framework;
- lean-opt: the lean script with mmfs's whole CPU execution of the model (channels-last and the graph
  rewrite of mmfs/encoders/efficientnet_infer.py, imported from this checkout): what is left is framework;
- before (with `--before CHECKOUT`): mmfs from another checkout (e.g. a git worktree of the previous
  commit) with its own examples/video_only.yaml, taken in turn with the others: a change's effect in
  the same run.
It prints each side's wall time, frames/s, rows written, and mmfs's speed-up over each other side
(its wall / mmfs wall: > 1 means mmfs is faster). The peers live in their own virtual environment,
`.venv-peers` (git-ignored), which `--setup` (or `make peers-env`) builds: daft, daft-lance,
lance-ray, ray[data] and their own dependencies from the registry, plus a `.pth` line that lets it
import torch and the EfficientNet packages from this (mmfs's) venv, so all three sides run the same
torch build and the same weights. CI does not run this benchmark (it needs that venv).
Known pitfalls (ENVIRONMENT.md): Daft's video scan deadlocks when as many videos are scanned at once
as it has I/O threads (DAFT_SCANTASK_MAX_PARALLEL=1 is set), and segfaults when torch is first
imported inside a UDF thread (the job imports it at the top).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import sysconfig
import tempfile
import time
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
VENV = ROOT / ".venv-peers"
CACHE = Path.home() / ".cache" / "mmfs-bench" / "peers"
WIDTH, HEIGHT, FPS = 640, 360, 25
SAMPLE_FPS = 1.0
PEER_REQUIREMENTS = [
    "daft==0.7.26",
    "daft-lance==0.6.0",
    "lance-ray==0.5.0",
    "ray[data]==2.60.0",
    "pylance==14.0.2",
    "decord==0.6.0",
    "av>=18,<19",
    "pillow",
]
MMFS_CONFIG = ROOT / "examples" / "video_only.yaml"
TIMEOUT_S = 1800


def make_clips(n: int, seconds: float) -> list[Path]:
    """N H.264 clips of `seconds` at 640x360, 25 fps, no audio: a drifting texture with a moving block,
    different per clip (cached under ~/.cache/mmfs-bench/peers)."""
    import av

    folder = CACHE / f"{n}x{seconds:g}s"
    folder.mkdir(parents=True, exist_ok=True)
    paths = [folder / f"clip_{i:03d}.mp4" for i in range(n)]
    for i, path in enumerate(paths):
        if path.exists() and path.stat().st_size > 0:
            continue
        rng = np.random.default_rng(i)
        base = rng.integers(0, 256, size=(HEIGHT // 8 + 8, WIDTH // 8 + 8, 3), dtype=np.uint8)
        texture = np.kron(base, np.ones((8, 8, 1), dtype=np.uint8))
        tmp = path.with_suffix(".part.mp4")
        with av.open(str(tmp), "w") as out:
            stream = out.add_stream("libx264", rate=FPS, options={"preset": "ultrafast", "crf": "28"})
            stream.width, stream.height, stream.pix_fmt = WIDTH, HEIGHT, "yuv420p"
            stream.time_base = Fraction(1, FPS)
            for k in range(round(seconds * FPS)):
                dx, dy = (k * 2) % 64, (k // 3) % 64
                frame = texture[dy : dy + HEIGHT, dx : dx + WIDTH].copy()
                x = (k * 7) % (WIDTH - 80)
                frame[140:220, x : x + 80] = (255 - 10 * i) % 256
                video = av.VideoFrame.from_ndarray(frame, format="rgb24")
                video.pts = k
                out.mux(stream.encode(video))
            out.mux(stream.encode(None))
        tmp.rename(path)
    return paths


def setup_venv(venv: Path = VENV) -> None:
    """Build the peers' venv: their packages from the registry, torch and the weights from this venv."""
    if not (venv / "bin" / "python").exists():
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=300)
    pip = [str(venv / "bin" / "python"), "-m", "pip", "install", "--quiet"]
    subprocess.run([*pip, *PEER_REQUIREMENTS], check=True, timeout=3600)
    # after pip, so that pip never sees (nor touches) this venv's packages; the peers' own come first
    purelib = subprocess.run(
        [str(venv / "bin" / "python"), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        check=True,
        capture_output=True,
        text=True,
        timeout=60,
    ).stdout.strip()
    Path(purelib, "zz_mmfs_torch.pth").write_text(sysconfig.get_paths()["purelib"] + "\n", encoding="utf-8")


def venv_ready(venv: Path = VENV) -> str | None:
    """None when the peers' venv imports daft, ray, lance_ray and torch; else why not."""
    python = venv / "bin" / "python"
    if not python.exists():
        return f"{venv} does not exist"
    probe = "import daft, ray, lance_ray, torch, efficientnet_lite_pytorch"
    done = subprocess.run([str(python), "-c", probe], capture_output=True, text=True, timeout=300)
    return None if done.returncode == 0 else done.stderr.strip().splitlines()[-1]


def lance_rows(uri: Path) -> int:
    """Rows in the Lance dataset at `uri` (0 when there is none)."""
    import lance

    return lance.dataset(str(uri)).count_rows() if uri.exists() else 0


def timed(cmd: list[str], env: dict[str, str], cwd: Path | None = None) -> tuple[float, str]:
    """Wall seconds of a whole process (it must succeed), and its stdout."""
    start = time.perf_counter()
    done = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=TIMEOUT_S, cwd=cwd)
    wall = time.perf_counter() - start
    if done.returncode != 0:
        raise RuntimeError(f"{cmd[1:3]} failed ({done.returncode}):\n{done.stderr[-3000:]}")
    return wall, done.stdout


def run_side(
    side: str, clips: list[Path], work: Path, venv: Path, before: Path | None = None
) -> dict[str, Any]:
    """One side, one fresh process; its wall time and the rows it wrote."""
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "RAY_USAGE_STATS_ENABLED": "0"}
    out = work / side
    if side in ("mmfs", "before"):
        root = ROOT if side == "mmfs" else before
        assert root is not None, "the before side needs --before"
        config = root / "examples" / "video_only.yaml"
        env["PYTHONPATH"] = str(root)
        cmd = [sys.executable, "-m", "mmfs.cli", "run", *map(str, clips), "--store", str(out)]
        # run from `root`: `python -m` puts the working folder ahead of PYTHONPATH, so from this checkout
        # the before side would import this checkout's mmfs
        wall, _ = timed(
            [*cmd, "--config", str(config if config.exists() else MMFS_CONFIG), "--json", "--quiet"],
            env,
            root,
        )
        return {"wall_s": wall, "rows": lance_rows(out / "frames.lance")}
    env["PYTHONPATH"] = str(ROOT / "benchmarks")
    if side in ("lean", "lean-cl", "lean-opt"):  # the sequential reference, in mmfs's own venv
        uri = out / "frames.lance"
        job = [sys.executable, str(ROOT / "benchmarks" / "peers" / "lean_job.py")]
        job += {"lean": [], "lean-cl": ["--channels-last"], "lean-opt": ["--rewrite"]}[side]
        env["PYTHONPATH"] += os.pathsep + str(ROOT)  # lean-opt imports this checkout's rewrite
        wall, _ = timed([*job, str(uri), f"{SAMPLE_FPS}", *map(str, clips)], env)
        return {"wall_s": wall, "rows": lance_rows(uri)}
    env["DAFT_SCANTASK_MAX_PARALLEL"] = "1"  # Daft 0.7.26's video scan deadlocks without it
    job = str(ROOT / "benchmarks" / "peers" / f"{side}_job.py")
    uri = out / "frames.lance"
    wall, _ = timed([str(venv / "bin" / "python"), job, str(uri), f"{SAMPLE_FPS}", *map(str, clips)], env)
    return {"wall_s": wall, "rows": lance_rows(uri)}


def attempt(
    side: str, clips: list[Path], venv: Path, before: Path | None = None, tries: int = 2
) -> dict[str, Any]:
    """One side in a fresh work folder; tried again once when it fails (Ray's start-up can time out
    on a loaded machine: "The current node timed out during startup")."""
    for left in range(tries - 1, -1, -1):
        with tempfile.TemporaryDirectory(prefix=f"bench-peers-{side}-") as work:
            try:
                return run_side(side, clips, Path(work), venv, before)
            except RuntimeError:
                if not left:
                    raise
    raise AssertionError("unreachable")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--clips", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--repeat", type=int, default=1, help="rounds (sides interleaved); the best is kept")
    parser.add_argument(
        "--only", default="mmfs,lean,lean-cl,lean-opt,daft,ray", help="comma-separated sides to run"
    )
    parser.add_argument(
        "--before", type=Path, help="a checkout of mmfs to run as the side 'before', next to this one"
    )
    parser.add_argument("--setup", action="store_true", help="build .venv-peers first")
    parser.add_argument("--venv", type=Path, default=VENV)
    args = parser.parse_args()
    sides = [s for s in args.only.split(",") if s]
    if args.before is not None and "before" not in sides:
        sides.insert(sides.index("mmfs") + 1 if "mmfs" in sides else 0, "before")
    if args.setup:
        setup_venv(args.venv)
    peers = [s for s in sides if s not in ("mmfs", "before", "lean", "lean-cl", "lean-opt")]
    if peers and (why := venv_ready(args.venv)) is not None:
        print(f"bench-peers: the peers' venv is not usable ({why}); build it with `make peers-env`")
        sys.exit(2)
    clips = make_clips(args.clips, args.seconds)
    expected = args.clips * int(np.ceil(args.seconds * SAMPLE_FPS))
    best: dict[str, dict[str, Any]] = {}
    rounds: dict[str, list[float]] = {side: [] for side in sides}
    loads: list[float] = []  # the 1-minute load average before each side (the machine may be shared)
    failed: dict[str, str] = {}
    for round_ in range(args.repeat):
        for side in sides:
            loads.append(os.getloadavg()[0])
            try:
                got = attempt(side, clips, args.venv, args.before)
            except (RuntimeError, subprocess.TimeoutExpired) as err:  # one side's failure is reported
                failed[side] = str(err).splitlines()[-1][:300]
                print(f"{side}: failed in round {round_ + 1}: {failed[side]}", flush=True)
                continue
            rounds[side].append(round(got["wall_s"], 2))
            load = f"load {loads[-1]:.1f}"
            print(
                f"{side}: round {round_ + 1}: {got['wall_s']:.2f} s, {got['rows']} rows ({load})", flush=True
            )
            if side not in best or got["wall_s"] < best[side]["wall_s"]:
                best[side] = got
    report: dict[str, Any] = {"clips": args.clips, "seconds": args.seconds, "frames_expected": expected}
    for side, got in best.items():
        report[side] = {
            "wall_s": round(got["wall_s"], 2),
            "rows": got["rows"],
            "frames_per_s": round(got["rows"] / got["wall_s"], 2),
            "rounds_wall_s": rounds[side],
        }
        rate = got["rows"] / got["wall_s"]
        print(f"{side:8s} {got['wall_s']:7.2f} s  {got['rows']:5d} rows  {rate:6.2f} frames/s")
    report["failed"] = failed
    if loads:
        report["load_1min"] = [round(min(loads), 2), round(max(loads), 2)]
        print(f"1-minute load average before the sides: {min(loads):.1f}-{max(loads):.1f}")
    if "mmfs" in best:
        for peer in (p for p in ["before", "lean", "lean-cl", "lean-opt", *peers] if p in best):
            ratio = best[peer]["wall_s"] / best["mmfs"]["wall_s"]
            report[f"mmfs_vs_{peer}"] = round(ratio, 3)
            print(f"mmfs vs {peer}: {ratio:.2f}x (peer wall / mmfs wall; > 1: mmfs faster)")
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
