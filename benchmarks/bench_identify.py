"""Where a run's new files are hashed: the plan (`find_work`) over N new files under each runner.

Run with `python benchmarks/bench_identify.py [--files 2000 --kib 64 --runners local,ray,beam]`. Makes
N distinct files of the given size, then plans them against an empty store under each runner, in this
process (the driver), and prints per runner the plan's wall time and how many bytes the driver read
(`rchar` of `/proc/self/io`: every byte this process passed through read(), plus what its
children read once they exited and were reaped: Beam's worker processes are the driver's children,
so under Beam the figure counts them too; the processes that hashed are printed beside it). A local
Ray is started before the timing (its start-up is printed apart); Beam runs its in-process runner with
`--direct_running_mode=multi_processing --direct_num_workers=2`, so its DoFns run in worker processes.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

from mmfs.config import PipelineConfig
from mmfs.pipelines import identify
from mmfs.pipelines.plan import find_work, read_ledger
from mmfs.pipelines.sources import list_inputs
from mmfs.store.db import Store


def rchar() -> int:
    """Bytes this process has read so far (all threads), from /proc/self/io."""
    for line in Path("/proc/self/io").read_text().splitlines():
        if line.startswith("rchar:"):
            return int(line.split()[1])
    raise RuntimeError("no rchar in /proc/self/io")


def make_files(folder: Path, n: int, kib: int) -> int:
    """N distinct files of `kib` KiB each; their total size."""
    folder.mkdir(parents=True)
    block = os.urandom(kib * 1024)
    for i in range(n):
        (folder / f"note_{i:05d}.bin").write_bytes(i.to_bytes(8, "little") + block[8:])
    return n * kib * 1024


def config(kind: str) -> PipelineConfig:
    """The runner's config; Beam spread over two worker processes."""
    runner: dict[str, object] = {"kind": kind}
    if kind == "beam":
        runner["beam_options"] = ["--direct_running_mode=multi_processing", "--direct_num_workers=2"]
    return PipelineConfig.model_validate({"runner": runner})


def listing(n: int, kib: int) -> None:
    """Time what a no-op plan pays per input before the ledger join: listing the files and their stats,
    from a folder (one `scandir`) and from a JSONL manifest naming the same files."""
    import json

    with tempfile.TemporaryDirectory(prefix="mmfs-bench-listing-") as tmp:
        root = Path(tmp)
        make_files(root / "data", n, kib)
        manifest = root / "data" / "list.jsonl"
        names = sorted(p.name for p in (root / "data").iterdir())
        manifest.write_text("".join(json.dumps({"uri": name}) + "\n" for name in names))
        cfg = config("local")
        print(f"{n} files; load: {os.getloadavg()}")
        for label, path in (("folder", root / "data"), ("manifest", manifest)):
            wall = cpu = float("inf")
            for _ in range(3):
                t0, c0 = time.perf_counter(), time.process_time()
                inputs, _ = list_inputs([str(path)], cfg.sources)
                identify.input_stats(inputs)
                wall, cpu = min(wall, time.perf_counter() - t0), min(cpu, time.process_time() - c0)
            print(
                f"{label:8s} list + stat: wall {wall:6.3f} s, CPU {cpu:6.3f} s "
                f"({cpu / n * 1e6:.1f} us per file), {len(inputs)} inputs"
            )


def main() -> None:
    """Plan the same new files under each runner; print wall time and driver bytes read."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--files", type=int, default=2000)
    parser.add_argument("--kib", type=int, default=64)
    parser.add_argument("--runners", default="local,ray,beam")
    parser.add_argument(
        "--listing", action="store_true", help="only time listing and stat-ing the files: folder vs manifest"
    )
    args = parser.parse_args()
    if args.listing:
        listing(args.files, args.kib)
        return
    with tempfile.TemporaryDirectory(prefix="mmfs-bench-identify-") as tmp:
        root = Path(tmp)
        total = make_files(root / "data", args.files, args.kib)
        print(f"{args.files} files, {total / 2**20:.1f} MiB; load: {os.getloadavg()}")
        for kind in args.runners.split(","):
            if kind == "ray":
                import ray

                t0 = time.perf_counter()
                ray.init(num_cpus=os.cpu_count(), include_dashboard=False, log_to_driver=False)
                print(f"ray start: {time.perf_counter() - t0:.2f} s")
            cfg = config(kind)
            store = Store(root / f"store-{kind}")
            inputs, _ = list_inputs([str(root / "data")], cfg.sources, exclude=store.uri)
            before, t0 = rchar(), time.perf_counter()
            work = find_work(inputs, cfg, store, read_ledger(store))
            wall, read = time.perf_counter() - t0, rchar() - before
            # a build without worker hashing records nothing: it hashed on the driver
            hashed_on = getattr(identify, "HASHED_ON", []) if kind != "local" else []
            where = sorted({pid for _, pid in hashed_on}) or [os.getpid()]
            print(
                f"{kind:6s} plan {wall:6.2f} s  driver read {read / 2**20:8.2f} MiB "
                f"({read / total:.3f} of the inputs)  new items {len(work.todo)}  "
                f"hashed in {len(where)} process(es){' (the driver)' if os.getpid() in where else ''}  "
                f"load {os.getloadavg()[0]:.2f}"
            )
            if kind == "ray":
                import ray

                ray.shutdown()


if __name__ == "__main__":
    main()
