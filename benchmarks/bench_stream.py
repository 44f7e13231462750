"""The local runner's streaming executor against lock-step and a lean sequential script, same run.

Run with `make bench-stream` (or `python benchmarks/bench_stream.py [--clips N --seconds S --photos N
--texts N --repeat N --before PATH --all-cores --memory N,M]`). On one generated mixed corpus (clips
with sound, photos, documents), each configuration runs as a whole process into a fresh store, in
turn, `--repeat` rounds (best wall time kept), so a shared machine's load weighs on every side alike:
- `lean`: `benchmarks/lean_reference.py`, the same default work hand-written on the raw libraries,
  one file after another, one Lance write per table at the end;
- `lock-step`: mmfs with its queue one batch deep and no deadline (decode a batch, then embed it) and
  torch on every core, as the local runner ran before the streaming executor (commits still overlap);
- `stream`: mmfs with its defaults (streaming executor, automatic thread budget);
- `before` (with `--before PATH`): the default config under the mmfs found at PATH (an older checkout,
  e.g. a `git worktree` of the commit before the executor): the real lock-step loop.
mmfs runs leave index builds and compaction off (the lean script builds none). Then start-up, as a
new user meets it: a one-photo run, a re-run of it with nothing to do, and `mmfs search --text` on
its store (whole processes, default config); `--startup-only` runs just those (and `--memory`), for
this checkout and `--before`, in turn. With `--memory 100,1000`, default runs over that many short
items (half clips with sound, a quarter photos, a quarter notes) give the peak RSS for each count:
bounded memory shows as equal figures.
It prints wall seconds, media-seconds per second, peak RSS and the ratios.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # the test media factory
from mmfs.demo import SAMPLE_DIR  # noqa: E402
from mmfs.encoders.execution import available_cpus  # noqa: E402
from tests.media_factory import constant_rate_times, textured_frame, write_image, write_video  # noqa: E402

NO_UPKEEP = {"index": {"auto": False}, "maintenance": {"auto": False}}


def _rolling(width: int, height: int, dx: int, dy: int, seed: int) -> Any:
    """A texture scrolling (wrapping around) by (dx, dy) pixels per frame: motion for any length."""
    base = textured_frame(width, height, seed)
    return lambda index, _t: np.roll(base, shift=(index * dy, index * dx), axis=(0, 1))


def make_corpus(root: Path, clips: int, seconds: float, photos: int, texts: int) -> Path:
    """Clips with a tone track (320x240, 15 fps, moving texture), photos, and documents."""
    folder = root / "corpus"
    times = constant_rate_times(round(seconds * 15), 15.0)
    for i in range(clips):
        painter = _rolling(320, 240, dx=1 + i % 3, dy=1, seed=i)
        write_video(
            folder / f"clip_{i:03d}.mp4",
            times_s=times,
            width=320,
            height=240,
            painter=painter,
            audio_tone_hz=220.0 + 40 * i,
        )
    for i in range(photos):
        write_image(folder / f"photo_{i:03d}.jpg", width=640, height=480, seed=100 + i)
    story = (SAMPLE_DIR / "scandal_in_bohemia.txt").read_text(encoding="utf-8")
    for i in range(texts):
        (folder / f"doc_{i:03d}.txt").write_text(f"Document {i}.\n\n" + story, encoding="utf-8")
    return folder


def _env(pythonpath: Path) -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(pythonpath), "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}


def run_mmfs(paths: list[Path], store: Path, config: dict[str, Any], code: Path = ROOT) -> dict[str, Any]:
    """One `mmfs run` as a fresh process (the mmfs found at `code`): wall time and its JSON summary."""
    cfg_file = store.parent / f"{store.name}.yaml"
    cfg_file.write_text(yaml.safe_dump(config))
    cmd = [sys.executable, "-c", "from mmfs.cli import main; main()", "run", *map(str, paths)]
    cmd += ["--store", str(store), "--config", str(cfg_file), "--json", "--quiet"]
    start = time.perf_counter()
    done = subprocess.run(cmd, capture_output=True, text=True, check=False, env=_env(code), cwd=code)
    wall = time.perf_counter() - start
    if done.returncode != 0:
        raise RuntimeError(f"mmfs run failed: {done.stderr.strip()[-2000:]}")
    s = json.loads(done.stdout)
    return {
        "wall_s": wall,
        "media_s": s["media_seconds"],
        "n_ok": s["n_ok"],
        "peak_rss_mb": s.get("peak_rss_mb"),
        "peak_rss_children_mb": s.get("peak_rss_children_mb"),
        "threads": s.get("threads"),
        "stream": s.get("stream"),
        "stage_s": {k: round(v, 1) for k, v in s["stage_seconds"].items()},
    }


def run_lean(corpus: Path, out: Path) -> dict[str, Any]:
    """The lean reference as a fresh process."""
    cmd = [sys.executable, str(ROOT / "benchmarks" / "lean_reference.py"), str(corpus), str(out)]
    start = time.perf_counter()
    done = subprocess.run(cmd, capture_output=True, text=True, check=False, env=_env(ROOT), cwd=ROOT)
    wall = time.perf_counter() - start
    if done.returncode != 0:
        raise RuntimeError(f"lean reference failed: {done.stderr.strip()[-2000:]}")
    doc = json.loads(done.stdout.strip().splitlines()[-1])
    return {
        "wall_s": wall,
        "media_s": doc["media_s"],
        "n_ok": doc["items"],
        "peak_rss_mb": doc["peak_rss_mb"],
    }


def configs(batch: int, all_cores: bool) -> dict[str, dict[str, Any]]:
    """The mmfs configurations compared (lock-step: one batch in flight, torch on every core;
    `all_cores`: also the streaming executor with torch on every core beside its decoders)."""
    cores = available_cpus()
    lockstep = {"runner": {"workers": 2, "queue_media": batch, "batch_wait_s": 3600.0}}
    lockstep["encoders"] = {"threads": cores}
    out = {"lock-step": {**NO_UPKEEP, **lockstep}, "stream": dict(NO_UPKEEP)}
    if all_cores:
        out["stream-all-cores"] = {**NO_UPKEEP, "encoders": {"threads": cores}, "runner": {"workers": 1}}
    return out


def main(argv: list[str] | None = None) -> int:
    """Generate the corpus, run every side in turn, then the start-up runs; print a table and JSON."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--clips", type=int, default=12)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--photos", type=int, default=8)
    parser.add_argument("--texts", type=int, default=4)
    parser.add_argument("--repeat", type=int, default=1, help="rounds over every side (best kept)")
    parser.add_argument("--before", type=Path, default=None, help="an older mmfs checkout to run as well")
    parser.add_argument("--skip-lean", action="store_true", help="leave the lean reference out")
    parser.add_argument(
        "--memory", default="", help="item counts for the peak-RSS scaling runs, e.g. 100,400 (off)"
    )
    parser.add_argument(
        "--all-cores", action="store_true", help="also stream with torch on every core (one decoder)"
    )
    parser.add_argument(
        "--startup-only",
        action="store_true",
        help="only the start-up runs (one photo, no-op re-run, text search) and --memory, of this "
        "checkout and of --before",
    )
    args = parser.parse_args(argv)
    if args.startup_only:
        return startup_only(args)
    root = Path(tempfile.mkdtemp(prefix="mmfs-bench-stream-"))
    try:
        corpus = make_corpus(root, args.clips, args.seconds, args.photos, args.texts)
        sides: dict[str, Any] = {}
        if not args.skip_lean:
            sides["lean"] = lambda i: run_lean(corpus, root / f"lean-{i}")
        for name, config in configs(batch=8, all_cores=args.all_cores).items():
            sides[name] = lambda i, name=name, config=config: run_mmfs([corpus], root / f"{name}-{i}", config)
        if args.before is not None:
            before = args.before.resolve()
            sides["before"] = lambda i: run_mmfs([corpus], root / f"before-{i}", dict(NO_UPKEEP), before)
        best: dict[str, dict[str, Any]] = {}
        for i in range(args.repeat):
            for name, fn in sides.items():
                r = fn(i)
                print(f"round {i + 1} {name}: {r['wall_s']:.1f} s", file=sys.stderr)
                if name not in best or r["wall_s"] < best[name]["wall_s"]:
                    best[name] = r
        startup = start_up(root)
        sizes = [int(n) for n in args.memory.split(",") if n.strip()]
        startup["memory"] = memory_scaling(root, sizes) if sizes else {}
    finally:
        shutil.rmtree(root, ignore_errors=True)
    _print(args, best, startup)
    return 0


def start_up(root: Path, code: Path = ROOT) -> dict[str, Any]:
    """A one-photo run, its no-op re-run and a text search of the store, default config, whole
    processes (the mmfs found at `code`)."""
    photo = root / "one" / "photo.jpg"
    photo.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy(SAMPLE_DIR / "coffee.jpg", photo)
    store = root / f"one-store-{abs(hash(str(code)))}"
    shutil.rmtree(store, ignore_errors=True)
    first = run_mmfs([photo.parent], store, {}, code)
    again = run_mmfs([photo.parent], store, {}, code)
    return {"one_photo": first, "no_op_rerun": again, "search": run_search(store, code)}


def run_search(store: Path, code: Path = ROOT) -> dict[str, Any]:
    """`mmfs search --text` as a fresh process: wall time (the query embedded, the store searched)."""
    cmd = [sys.executable, "-c", "from mmfs.cli import main; main()", "search", "--text", "a cup of coffee"]
    cmd += ["--store", str(store), "--json", "-k", "1"]
    start = time.perf_counter()
    done = subprocess.run(cmd, capture_output=True, text=True, check=False, env=_env(code), cwd=code)
    wall = time.perf_counter() - start
    if done.returncode != 0:
        raise RuntimeError(f"mmfs search failed: {done.stderr.strip()[-2000:]}")
    return {"wall_s": wall, "hits": len(json.loads(done.stdout)["hits"])}


def startup_only(args: argparse.Namespace) -> int:
    """`--startup-only`: the start-up runs (and `--memory`) of this checkout and of `--before`, taken in
    turn, best of `--repeat`; no corpus sides."""
    codes = {"after": ROOT, **({"before": args.before.resolve()} if args.before is not None else {})}
    root = Path(tempfile.mkdtemp(prefix="mmfs-bench-startup-"))
    best: dict[str, dict[str, Any]] = {}
    memory: dict[str, Any] = {}
    try:
        for i in range(args.repeat):
            for label, code in codes.items():
                got = start_up(root / f"{label}-{i}", code)
                walls = ", ".join(f"{k} {v['wall_s']:.1f} s" for k, v in got.items())
                print(f"round {i + 1} {label}: {walls}", flush=True)
                for key, value in got.items():
                    if key not in best.setdefault(label, {}) or value["wall_s"] < best[label][key]["wall_s"]:
                        best[label][key] = value
        sizes = [int(n) for n in args.memory.split(",") if n.strip()]
        for label, code in codes.items():
            memory[label] = memory_scaling(root / f"memory-{label}", sizes, code) if sizes else {}
    finally:
        shutil.rmtree(root, ignore_errors=True)
    print(f"start-up, best of {args.repeat}, whole processes ({available_cpus()} CPUs):")
    print(f"{'side':<8}{'one photo s':>12}{'RSS MB':>8}{'no-op s':>9}{'RSS MB':>8}{'search s':>10}")
    for label, r in best.items():
        one, again = r["one_photo"], r["no_op_rerun"]
        print(
            f"{label:<8}{one['wall_s']:12.1f}{one['peak_rss_mb']:8.0f}{again['wall_s']:9.1f}"
            f"{again['peak_rss_mb']:8.0f}{r['search']['wall_s']:10.1f}"
        )
    for label, sizes_done in memory.items():
        for n, m in sizes_done.items():
            print(
                f"memory {label}: {n} short mixed items: peak RSS {m['peak_rss_mb']:.0f} MB, largest decode "
                f"process {m['peak_rss_children_mb']:.0f} MB, most items held {m['stream']['max_in_flight']}"
            )
    print(json.dumps({"cpus": available_cpus(), "startup": best, "memory": memory}, default=float))
    return 0


def memory_scaling(root: Path, sizes: list[int], code: Path = ROOT) -> dict[int, dict[str, Any]]:
    """Peak RSS of default runs over `n` short mixed items, for each n: the issue's mix, half clips
    with sound (2 s, 160x120, a tone), a quarter photos, a quarter notes."""
    out = {}
    times = constant_rate_times(30, 15.0)
    for n in sizes:
        folder = root / f"many-{n}"
        folder.mkdir(parents=True, exist_ok=True)
        for i in range(n):
            if i % 4 < 2:
                write_video(
                    folder / f"c{i:05d}.mp4",
                    times_s=times,
                    width=160,
                    height=120,
                    painter=_rolling(160, 120, dx=1 + i % 3, dy=1, seed=i),
                    audio_tone_hz=200.0 + 10 * (i % 50),
                )
            elif i % 4 == 2:
                write_image(folder / f"p{i:05d}.png", width=96, height=64, seed=i)
            else:
                (folder / f"n{i:05d}.txt").write_text(f"Note {i}: the ferry leaves the pier at {i % 24}.")
        r = run_mmfs([folder], root / f"many-store-{n}", dict(NO_UPKEEP), code)
        out[n] = {k: r[k] for k in ("wall_s", "n_ok", "peak_rss_mb", "peak_rss_children_mb", "stream")}
        shutil.rmtree(folder, ignore_errors=True)
    return out


def _print(args: argparse.Namespace, best: dict[str, dict[str, Any]], startup: dict[str, Any]) -> None:
    cores = available_cpus()
    print(
        f"corpus: {args.clips} clips x {args.seconds:g} s with sound, {args.photos} photos, {args.texts} "
        f"documents; {cores} CPUs; best of {args.repeat}; each side a whole process, same run"
    )
    print(f"{'side':<10}{'wall s':>8}{'media-s/s':>11}{'peak RSS MB':>13}{'child MB':>10}  threads / stream")
    for name, r in best.items():
        r["media_s_per_s"] = r["media_s"] / r["wall_s"]
        extra = f"{r.get('threads') or ''} {r.get('stream') or ''}".strip()
        print(
            f"{name:<10}{r['wall_s']:8.1f}{r['media_s_per_s']:11.2f}{r['peak_rss_mb'] or 0:13.0f}"
            f"{r.get('peak_rss_children_mb') or 0:10.0f}  {extra}"
        )
    ratios = {}
    pairs = [("stream", "lean"), ("stream", "lock-step"), ("stream", "before"), ("lock-step", "lean")]
    pairs += [("stream-all-cores", "lean"), ("before", "lean")]
    for a, b in pairs:
        if a in best and b in best:
            ratios[f"{a} / {b}"] = round(best[b]["wall_s"] / best[a]["wall_s"], 3)
    print(
        "speed ratios (wall time of the second / the first): "
        + ", ".join(f"{k} {v}" for k, v in ratios.items())
    )
    one, again = startup["one_photo"], startup["no_op_rerun"]
    print(
        f"start-up: one photo {one['wall_s']:.1f} s (peak RSS {one['peak_rss_mb']:.0f} MB), "
        f"no-op re-run {again['wall_s']:.1f} s (peak RSS {again['peak_rss_mb']:.0f} MB), "
        f"text search {startup['search']['wall_s']:.1f} s"
    )
    for n, r in startup["memory"].items():
        print(
            f"memory: {n} short mixed items: peak RSS {r['peak_rss_mb']:.0f} MB, largest decode "
            f"process {r['peak_rss_children_mb']:.0f} MB, most items held {r['stream']['max_in_flight']}"
        )
    print(json.dumps({"cpus": cores, "sides": best, "ratios": ratios, "startup": startup}, default=float))


if __name__ == "__main__":
    raise SystemExit(main())
