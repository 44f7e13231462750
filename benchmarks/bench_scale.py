"""Incremental at size: rounds of new items into one growing store, timed per stage, plus a no-op re-run.

Run with `make bench-scale` (or `python benchmarks/bench_scale.py [--rounds R --items N --frames F]`).
Each round adds N new items (tiny files with distinct bytes, so hashing and the ledger are real) with F
frame rows and one segment row each. The decode and encoder stages are skipped: rows are laid out
synthetically (random 64-d embeddings) and fed to the real write path (`Committer` → `commit_batch`:
data files staged, then one commit per table, as under every runner), so the figures are the store's
costs as the store grows. Per round it prints: wall time and time per stage (plan = listing + ledger
joins + hashing the new files, rows, write, index = key-index refresh), write seconds per 1,000
items, versions / files / bytes added to the store (gross: every file on disk, superseded ones
included; live: the files the tables' newest versions reference, what Lance's cleanup leaves), the
key-index step of `mmfs maintain` when it merges (its seconds, files and bytes apart from the round's,
as a run's upkeep does it with `maintenance.auto`), then a no-op `mmfs plan` and a no-op
`mmfs run` over every item so far (wall time and bytes read, from rchar), in this process and as a
whole `mmfs run` process (start-up and imports included).

`--cluster ray,ray2,beam` adds the cluster write path (`scale_cluster.py`): workers that send rows to
one committer against workers that write fragments and send metadata, under local Ray (2 CPUs), a
two-node Ray cluster on this machine (`ray2`) and Beam with 2 worker processes; per batch it prints
the bytes the committer received and its commit time. `--rounds 0` runs only that.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import lance
import numpy as np
import pyarrow as pa

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from mmfs.config import PipelineConfig
from mmfs.pipelines.plan import find_work, make_plan, read_ledger
from mmfs.pipelines.run import run_pipeline
from mmfs.pipelines.sources import list_inputs
from mmfs.schemas import Dims, all_schemas
from mmfs.stages.batch import BatchResult, BatchTally, with_uri_stats
from mmfs.stages.commit import Committer
from mmfs.stages.versions import feature_versions, segments_version
from mmfs.store.db import Store
from mmfs.store.indexes import KEY_INDEXED, ensure_indexes, merge_key_index

DIMS = Dims(image=64, text=64, audio=64)
EMPTY = ("flow", "shots", "audio", "text", "quarantine")


def rchar() -> int:
    """Bytes this process has read so far (/proc/self/io), 0 where there is none."""
    io = Path("/proc/self/io")
    if not io.exists():
        return 0
    return next(int(line.split()[1]) for line in io.read_text().splitlines() if line.startswith("rchar:"))


def disk(root: Path) -> tuple[int, int]:
    """Files and bytes under `root`."""
    files = [p for p in root.rglob("*") if p.is_file()]
    return len(files), sum(p.stat().st_size for p in files)


def live(store_dir: Path) -> tuple[int, int]:
    """Files and bytes the newest version of every table references: its manifest, data and deletion
    files and index segments (what is left once Lance's cleanup drops every older version)."""
    files = 0
    size = 0
    for table in sorted(store_dir.glob("*.lance")):
        dataset = lance.dataset(str(table))
        paths = [table / "_versions" / f"{2**64 - 1 - dataset.version}.manifest"]
        for fragment in dataset.get_fragments():
            paths += [table / "data" / data.path for data in fragment.data_files()]
            if fragment.deletion_file():
                paths.append(table / fragment.deletion_file())
        for index in dataset.describe_indices():
            for segment in index.segments:
                paths += [p for p in (table / "_indices" / str(segment.uuid)).iterdir() if p.is_file()]
        files += len(paths)
        size += sum(p.stat().st_size for p in paths)
    return files, size


def make_files(folder: Path, start: int, n: int) -> None:
    """`n` small files with distinct bytes (numbered from `start`)."""
    folder.mkdir(parents=True)
    for i in range(start, start + n):
        (folder / f"item_{i:08d}.txt").write_text(f"item {i}\n")


def batch_rows(
    pending: list[Any],
    cfg: PipelineConfig,
    schemas: dict[str, pa.Schema],
    frames: int,
    stats: dict[str, Any],
    dims: Dims = DIMS,
) -> BatchResult:
    """One encoder batch's rows, laid out as `RowBuilder` would for items with frames and segments."""
    versions = feature_versions(cfg)
    seg_version = segments_version(versions, ["frames"])
    rng = np.random.default_rng(len(pending))
    n = len(pending)
    ids = [p.media_id for p in pending]
    media = pa.Table.from_pylist(
        [
            {
                "media_id": p.media_id,
                "uri": p.item.uri,
                "uris": p.uris,
                "kind": "video",
                "status": "ok",
                "bytes": p.n_bytes,
                "feature_version": versions["media"],
                "run_id": "bench",
            }
            for p in pending
        ],
        schema=schemas["media"],
    )
    media = with_uri_stats(media, stats)
    emb = rng.standard_normal((n * frames, dims.image), dtype=np.float32)
    frame_rows = pa.table(
        {
            "media_id": np.repeat(ids, frames),
            "frame_index": np.tile(np.arange(frames, dtype=np.int64), n),
            "t_s": np.tile(np.arange(frames, dtype=np.float64), n),
            "embedding": pa.FixedSizeListArray.from_arrays(emb.ravel(), dims.image),
            "feature_version": [versions["frames"]] * (n * frames),
            "run_id": ["bench"] * (n * frames),
        }
    )
    segments = pa.table(
        {
            "media_id": ids,
            "segment_index": np.zeros(n, dtype=np.int64),
            "start_s": np.zeros(n),
            "end_s": np.full(n, float(frames)),
            "feature_version": [seg_version] * n,
            "run_id": ["bench"] * n,
        }
    )
    tables = {"media": media, "frames": _conform(frame_rows, schemas["frames"])}
    tables["segments"] = _conform(segments, schemas["segments"])
    for name in EMPTY:
        tables[name] = schemas[name].empty_table()
    return BatchResult(tables=tables, tally=BatchTally(n_ok=n))


def _conform(table: pa.Table, schema: pa.Schema) -> pa.Table:
    """`table` in `schema`: missing columns as nulls."""
    n = table.num_rows
    have = set(table.column_names)
    columns = [table.column(f.name).cast(f.type) if f.name in have else pa.nulls(n, f.type) for f in schema]
    return pa.Table.from_arrays(columns, schema=schema)


def one_round(store_dir: Path, folder: Path, cfg: PipelineConfig, args: argparse.Namespace) -> dict[str, Any]:
    """Add one round's items; time each stage and count what the store gained."""
    store = Store(store_dir)
    schemas = all_schemas(DIMS)
    store.ensure_tables(schemas)
    before_versions, (before_files, before_bytes) = store.versions(), disk(store_dir)
    before_live_files, before_live = live(store_dir)
    t = {"plan": 0.0, "rows": 0.0, "write": 0.0, "index": 0.0}
    cpu0 = time.process_time()
    t0 = time.perf_counter()
    inputs, _ = list_inputs([str(folder)], cfg.sources)
    work = find_work(inputs, cfg, store, read_ledger(store))  # what `mmfs run` plans with
    todo = work.todo
    rows_stats = {u: s.as_row(u) for u, s in work.stats.items()}
    t["plan"] = time.perf_counter() - t0
    committer = Committer(
        store, cfg.runner.commit_rows, cfg.runner.commit_seconds, run_id=f"bench-{folder.name}"
    )
    write_cpu = 0.0
    for start in range(0, len(todo), cfg.runner.batch_media):
        t0 = time.perf_counter()
        batch = todo[start : start + cfg.runner.batch_media]
        result = batch_rows(batch, cfg, schemas, args.frames, rows_stats)
        t["rows"] += time.perf_counter() - t0
        t0, c0 = time.perf_counter(), time.process_time()
        committer.add(result)
        t["write"] += time.perf_counter() - t0
        write_cpu += time.process_time() - c0
    t0, c0 = time.perf_counter(), time.process_time()
    committer.flush()
    t["write"] += time.perf_counter() - t0
    write_cpu += time.process_time() - c0
    t0 = time.perf_counter()
    ensure_indexes(store, min_rows=10**9)  # key indexes only: vector indexes are not what is measured
    t["index"] = time.perf_counter() - t0
    after_versions, (after_files, after_bytes) = store.versions(), disk(store_dir)
    added = {k: after_versions[k] - before_versions.get(k, 0) for k in after_versions}
    cpu = time.process_time() - cpu0
    live_files, live_bytes = live(store_dir)
    maint = maintain_keys(
        store, store_dir, live_bytes
    )  # apart from the round: maintenance, not the run's write path
    return {
        "items": len(todo),
        "stage_s": {k: round(v, 3) for k, v in t.items()},
        "wall_s": round(sum(t.values()), 3),
        "write_s_per_1k": round(t["write"] * 1000 / max(1, len(todo)), 3),
        "write_cpu_s_per_1k": round(write_cpu * 1000 / max(1, len(todo)), 3),
        "cpu_s": round(cpu, 3),
        "versions_added": {k: v for k, v in added.items() if v},
        "commits": committer.commits,
        "files_added": after_files - before_files,
        "bytes_added": after_bytes - before_bytes,
        "maintain": maint,
        "live_files_added": live_files - before_live_files,
        "live_bytes_added": live_bytes - before_live,
    }


def maintain_keys(store: Store, store_dir: Path, live_before: int) -> dict[str, Any]:
    """The key-index step of `mmfs maintain` (as a run's upkeep does it with `maintenance.auto`):
    seconds, segments merged per table, the files and bytes it wrote (apart from the round's) and how
    the live bytes moved."""
    files, size = disk(store_dir)
    t0 = time.perf_counter()
    merged = {}
    for name in KEY_INDEXED:
        if store.has(name):
            done = merge_key_index(store.current(name))
            if done and done["merged"]:
                merged[name] = done["segments"]
    seconds = time.perf_counter() - t0
    after_files, after_size = disk(store_dir)
    segments = max(
        (
            len(d.segments)
            for n in KEY_INDEXED
            if store.has(n)
            for d in store.lance_dataset(n).describe_indices()
        ),
        default=0,
    )
    return {
        "s": round(seconds, 3),
        "merged": merged,
        "files": after_files - files,
        "bytes": after_size - size,
        "max_segments": segments,
        "live_bytes": live(store_dir)[1] - live_before if merged else 0,
    }


def no_op(store_dir: Path, root: Path, cfg: PipelineConfig) -> dict[str, Any]:
    """A no-op `mmfs plan` and `mmfs run` over every item so far: wall time and bytes read."""
    r0, t0, c0 = rchar(), time.perf_counter(), time.process_time()
    plan = make_plan([str(root)], cfg, store_dir)
    plan_s, plan_read, plan_cpu = time.perf_counter() - t0, rchar() - r0, time.process_time() - c0
    r0, t0, c0 = rchar(), time.perf_counter(), time.process_time()
    summary = run_pipeline([str(root)], cfg, store_dir, show_progress=False)
    run_s, run_read, run_cpu = time.perf_counter() - t0, rchar() - r0, time.process_time() - c0
    assert plan.new == [] and plan.stale == [] and summary.n_ok == 0, "the no-op run found work"
    cli = cli_no_op(store_dir, root)
    return cli | {
        "plan_s": round(plan_s, 3),
        "plan_read_bytes": plan_read,
        "plan_cpu_s": round(plan_cpu, 3),
        "run_s": round(run_s, 3),
        "run_read_bytes": run_read,
        "run_cpu_s": round(run_cpu, 3),
        "up_to_date": plan.up_to_date,
    }


_CLI = """
import atexit, sys
def _report():
    io = dict(line.split(":") for line in open("/proc/self/io").read().splitlines())
    print("RCHAR", int(io["rchar"]), file=sys.stderr)
atexit.register(_report)
from mmfs.cli import app
sys.argv = ["mmfs", "run", sys.argv[1], "--store", sys.argv[2]]
app()
"""


def cli_no_op(store_dir: Path, root: Path) -> dict[str, Any]:
    """`mmfs run` over every item so far as a whole process (start-up and imports included): wall
    seconds, CPU seconds and bytes read (the child's rchar at exit)."""
    before = os.times()
    t0 = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-c", _CLI, str(root), str(store_dir)], capture_output=True, text=True, check=True
    )
    wall = time.perf_counter() - t0
    after = os.times()
    cpu = (after.children_user - before.children_user) + (after.children_system - before.children_system)
    read = next((int(x.split()[1]) for x in done.stderr.splitlines() if x.startswith("RCHAR")), 0)
    return {"cli_s": round(wall, 3), "cli_cpu_s": round(cpu, 3), "cli_read_bytes": read}


def commit_throughput(store_dir: Path, n_rows: int, chunk: int) -> dict[str, Any]:
    """Frame rows appended per second by `Store.write` (key lookup + fragment write + commit), in
    commits of `chunk` rows, into the grown `frames` table (rows of items the ledger does not know)."""
    store = Store(store_dir)
    schema = store.table("frames").schema
    before = store.count("frames")
    rng = np.random.default_rng(0)
    chunks = []
    for start in range(0, n_rows, chunk):
        n = min(chunk, n_rows - start)
        emb = rng.standard_normal((n, DIMS.image), dtype=np.float32)
        rows = pa.table(
            {
                "media_id": [f"probe-{(start + i) // 10:012d}" for i in range(n)],
                "frame_index": np.arange(n, dtype=np.int64) % 10,
                "t_s": np.zeros(n),
                "embedding": pa.FixedSizeListArray.from_arrays(emb.ravel(), DIMS.image),
                "feature_version": ["probe"] * n,
                "run_id": ["probe"] * n,
            }
        )
        chunks.append(_conform(rows, schema))
    t0 = time.perf_counter()  # the commits only, not the making of the rows
    for rows in chunks:
        store.write("frames", rows)
    seconds = time.perf_counter() - t0
    return {
        "table_rows_before": before,
        "rows": n_rows,
        "seconds": round(seconds, 3),
        "rows_per_s": round(n_rows / seconds),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--items", type=int, default=2000, help="new items per round")
    parser.add_argument("--frames", type=int, default=10, help="frame rows per item")
    parser.add_argument("--no-op-every", type=int, default=1, help="no-op re-run after every Nth round")
    parser.add_argument("--probe-rows", type=int, default=50_000, help="commit throughput probe (0: skip)")
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--cluster", default="", help="also compare the cluster write path: ray,ray2,beam")
    parser.add_argument("--cluster-batches", type=int, default=40, help="batches per cluster mode")
    parser.add_argument("--cluster-items", type=int, default=8, help="items per cluster batch")
    args = parser.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    cfg = PipelineConfig()
    out = []
    with tempfile.TemporaryDirectory(prefix="bench-scale-") as tmp:
        root, store_dir = Path(tmp) / "data", Path(tmp) / "store"
        for r in range(args.rounds):
            folder = root / f"round_{r:03d}"
            make_files(folder, r * args.items, args.items)
            row = {"round": r + 1, "store_items_before": r * args.items}
            row |= one_round(store_dir, folder, cfg, args)
            if (r + 1) % args.no_op_every == 0 or r + 1 == args.rounds:
                row["no_op"] = no_op(store_dir, root, cfg)
            out.append(row)
            if not args.json:
                print_row(row, args.frames)
        if args.probe_rows:
            probe = commit_throughput(store_dir, args.probe_rows, 10_000)
            out.append({"commit_probe": probe})
            if not args.json:
                print(
                    f"commit throughput: {probe['rows']} frame rows appended in commits of 10,000 into "
                    f"{probe['table_rows_before']} rows: {probe['seconds']:.2f} s, "
                    f"{probe['rows_per_s']} rows/s",
                    flush=True,
                )
    if args.cluster:
        out += cluster(args)
    if args.json:
        print(json.dumps(out, indent=2))


def cluster(args: argparse.Namespace) -> list[dict[str, Any]]:
    """The cluster write path under each runner named in `--cluster`, both modes each."""
    here = str(Path(__file__).resolve().parent)
    sys.path.insert(0, here)
    # Beam's worker processes and Ray's workers import this folder's modules too
    os.environ["PYTHONPATH"] = os.pathsep.join(
        [here, str(Path(here).parent), os.environ.get("PYTHONPATH", "")]
    )
    import scale_cluster as sc

    sizes = (args.cluster_batches, args.cluster_items, args.frames)
    out: list[dict[str, Any]] = []
    for kind in [k for k in args.cluster.split(",") if k]:
        rows = sc.beam_compare(*sizes) if kind == "beam" else sc.ray_compare(*sizes, two_nodes=kind == "ray2")
        for row in rows:
            out.append({"cluster": row})
            if not args.json:
                print(
                    f"{row['runner']:<26} {row['mode']:<7} batches {row['batches']:>4} "
                    f"(frame rows {row['rows']}): to committer {row['driver_kb_per_batch']:8.1f} KB/batch, "
                    f"commit {row['commit_ms_per_batch']:7.2f} ms/batch, commits {row['commits']}, "
                    f"wall {row['wall_s']:.1f} s"
                    + (
                        f", writer nodes besides the driver: {row['writer_nodes_other_than_driver']}"
                        if "writer_nodes_other_than_driver" in row
                        else ""
                    ),
                    flush=True,
                )
    return out


def print_row(row: dict[str, Any], frames: int) -> None:
    """One round as a line of text."""
    s, m = row["stage_s"], row["maintain"]
    versions = max(row["versions_added"].values(), default=0)
    line = (
        f"round {row['round']:>3} ({row['store_items_before']:>7} items, "
        f"{row['store_items_before'] * frames:>8} frame rows before): "
        f"wall {row['wall_s']:7.2f} s  plan {s['plan']:6.2f}  rows {s['rows']:6.2f}  "
        f"write {s['write']:6.2f}  "
        f"index {s['index']:5.2f}  write/1k {row['write_s_per_1k']:5.3f} s "
        f"(cpu {row['write_cpu_s_per_1k']:5.3f})  round cpu {row['cpu_s']:6.2f} s  "
        f"versions/table <= {versions}  files +{row['files_added']}  bytes +{row['bytes_added'] / 1e6:.2f} MB"
        f"  (live: files +{row['live_files_added']}, bytes +{row['live_bytes_added'] / 1e6:.2f} MB)"
        f"  key-index segments after upkeep <= {m['max_segments']}"
    )
    if m["merged"]:
        line += (
            f"\n           maintenance merged key-index segments {m['merged']} in {m['s']:.2f} s: "
            f"files +{m['files']}, bytes +{m['bytes'] / 1e6:.2f} MB (live {m['live_bytes'] / 1e6:+.2f} MB)"
        )
    if "no_op" in row:
        n = row["no_op"]
        line += (
            f"\n           no-op over {n['up_to_date']} items: plan {n['plan_s']:.2f} s "
            f"(cpu {n['plan_cpu_s']:.2f}) "
            f"(read {n['plan_read_bytes'] / 1e6:.2f} MB), run {n['run_s']:.2f} s (cpu {n['run_cpu_s']:.2f}) "
            f"(read {n['run_read_bytes'] / 1e6:.2f} MB); `mmfs run` process {n['cli_s']:.2f} s "
            f"(cpu {n['cli_cpu_s']:.2f}, read {n['cli_read_bytes'] / 1e6:.2f} MB)"
        )
    print(line, flush=True)


if __name__ == "__main__":
    main()
