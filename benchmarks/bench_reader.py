"""Training-reader throughput next to a raw Lance scan of the same columns, in the same run.

Run with `python benchmarks/bench_reader.py [--rows N] [--repeat N] [--batch-size N] [--json]`. It
builds a store of segment-like rows (1280-d visual, 384-d audio, text and fused vectors) in a temporary
directory, then prints rows/s and MB/s for a raw `lance` scan (`ds.to_batches(columns=...)`) and for
`FeatureDataset` in this process and behind a DataLoader with workers, each as a ratio to the raw scan
(1.0 = as fast). A last loader line moves batches of the same shape without reading anything: the
most any reader can get through torch's worker hand-off on this machine. MB/s counts the Arrow bytes
of the selected columns, the same per row for every reader.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from torch.utils.data import DataLoader, Dataset, IterableDataset, get_worker_info

from mmfs.schemas import Dims, all_schemas
from mmfs.store.db import Store
from mmfs.store.readers import FeatureDataset
from mmfs.store.readers_torch import to_batch

DIMS = Dims(image=1280, text=384, audio=384)
COLUMNS = ["media_id", "segment_index", "start_s", "visual", "audio", "text", "fused"]
CHUNK = 10_000  # rows per write: one fragment each
# Rows cross a DataLoader queue one tensor at a time (~0.6 ms each in torch), so that case reads a
# 2% split of the items, a few thousand rows, not the whole table.
SAMPLE = {"split": "sample", "split_fractions": {"sample": 0.02, "rest": 0.98}}


def _vectors(rng: np.random.Generator, n: int, width: int) -> pa.FixedSizeListArray:
    values = pa.array(rng.standard_normal(n * width, dtype=np.float32))
    return pa.FixedSizeListArray.from_arrays(values, width)


def _chunk(rng: np.random.Generator, schema: pa.Schema, start: int, n: int) -> pa.Table:
    """Segment-like rows start..start+n-1: eight segments per media item, one vector in 20 null."""
    index = np.arange(start, start + n)
    fused = _vectors(rng, n, DIMS.text)
    nulls = pa.array(index % 20 == 0)
    columns = {
        "media_id": pa.array([f"{i // 8:064x}" for i in index]),
        "segment_index": pa.array(index % 8),
        "start_s": pa.array((index % 8) * 2.0),
        "end_s": pa.array((index % 8) * 2.0 + 2.0),
        "kind": pa.array(["video"] * n),
        "visual": _vectors(rng, n, DIMS.image),
        "motion": _vectors(rng, n, 16),
        "audio": _vectors(rng, n, DIMS.audio),
        "text": _vectors(rng, n, DIMS.text),
        "labels": pa.nulls(n, schema.field("labels").type),
        "fused": pc.if_else(nulls, pa.nulls(n, fused.type), fused),
        "modalities": pa.array([["visual", "audio", "text"]] * n),
        "transcript": pa.array(["a white cockatoo on a perch"] * n),
        "label_text": pa.nulls(n, pa.string()),
        "feature_version": pa.array(["bench"] * n),
        "run_id": pa.array(["bench"] * n),
    }
    return pa.table(columns).cast(schema)


def build(path: Path, rows: int) -> float:
    """A store with `rows` segments in fragments of CHUNK rows; returns the seconds it took.

    Appends rather than `Store.write` merges: this is fixture data with fresh keys, and a merge on
    the keys would time the writer, not the reader.
    """
    start = time.perf_counter()
    store = Store(path)
    store.ensure_tables({"segments": all_schemas(DIMS)["segments"]})
    table, rng = store.table("segments"), np.random.default_rng(0)
    for first in range(0, rows, CHUNK):
        table.add(_chunk(rng, table.schema, first, min(CHUNK, rows - first)))
    return time.perf_counter() - start


def median_epochs(epochs: list[Callable[[], int]], repeat: int) -> tuple[list[float], list[int]]:
    """Median wall time of each epoch over `repeat` rounds after an untimed one (page cache, imports).

    Rounds interleave the readers, so drift in the machine's speed hits them all alike.
    """
    for epoch in epochs:
        epoch()
    times: list[list[float]] = [[] for _ in epochs]
    rows = [0] * len(epochs)
    for _ in range(repeat):
        for i, epoch in enumerate(epochs):
            start = time.perf_counter()
            rows[i] = epoch()
            times[i].append(time.perf_counter() - start)
    return [statistics.median(t) for t in times], rows


def _count(items: Iterable[dict[str, Any]]) -> int:
    """Rows in a stream of rows or of batches (a batch is a dict of columns)."""
    total = 0
    for item in items:
        total += len(item["media_id"]) if isinstance(item["media_id"], list) else 1
    return total


def raw_scan(store_uri: str, version: int) -> tuple[Callable[[], int], float]:
    """The baseline, and the Arrow bytes per row of the selected columns."""
    import lance

    ds = lance.dataset(Store(store_uri).table("segments").uri, version=version)
    nbytes = sum(batch.nbytes for batch in ds.to_batches(columns=COLUMNS))
    return (lambda: sum(batch.num_rows for batch in ds.to_batches(columns=COLUMNS))), nbytes / ds.count_rows()


class HandOffOnly(IterableDataset):  # type: ignore[misc]
    """Batches shaped like the reader's, converted from one table read once: no reading in the epoch.

    Through a DataLoader this is the floor of any reader there: torch's shared-memory hand-off plus
    the Arrow-to-tensor conversion, nothing else.
    """

    def __init__(self, dataset_uri: str, version: int, rows: int, batch_size: int) -> None:
        self.dataset_uri, self.version, self.rows, self.batch_size = dataset_uri, version, rows, batch_size

    def __iter__(self) -> Iterator[dict[str, Any]]:
        import lance

        info = get_worker_info()
        worker, n_workers = (info.id, info.num_workers) if info is not None else (0, 1)
        ds = lance.dataset(self.dataset_uri, version=self.version)
        table = ds.take(np.arange(min(self.batch_size, self.rows)), columns=COLUMNS)
        for _ in range(worker, -(-self.rows // self.batch_size), n_workers):
            yield to_batch(table)


def loader_epoch(ds: Dataset[Any], workers: int) -> Callable[[], int]:
    """One epoch through a DataLoader whose (spawned, persistent) workers are already started."""
    loader = DataLoader(
        ds, batch_size=None, num_workers=workers, multiprocessing_context="spawn", persistent_workers=True
    )
    _count(loader)  # start the workers (imports, opening the table) outside the timed epochs
    return lambda: _count(loader)


def run(store_uri: str, repeat: int, workers: int, batch_size: int) -> list[dict[str, Any]]:
    """Every reader over the same columns; the raw scan first, as the denominator."""
    version = Store(store_uri).versions()["segments"]

    def dataset(**options: Any) -> FeatureDataset:
        return FeatureDataset(store_uri, "segments", COLUMNS, version=version, **options)

    raw, row_bytes = raw_scan(store_uri, version)
    batches = {"batch_size": batch_size}
    floor = HandOffOnly(
        Store(store_uri).table("segments").uri, version, Store(store_uri).count("segments"), batch_size
    )
    cases: list[tuple[str, Callable[[], int]]] = [
        ("raw lance scan (to_batches)", raw),
        ("FeatureDataset batches, in process", lambda: _count(dataset(**batches))),
        ("FeatureDataset rows, in process", lambda: _count(dataset())),
        (f"DataLoader {workers} workers, batches", loader_epoch(dataset(**batches), workers)),
        (f"DataLoader {workers} workers, rows (2% sample)", loader_epoch(dataset(**SAMPLE), workers)),
        (f"DataLoader {workers} workers, hand-off only (floor)", loader_epoch(floor, workers)),
        ("batches shuffled, in process", lambda: _count(dataset(**batches, shuffle=True))),
        (
            "batches block-shuffled (64), in process",
            lambda: _count(dataset(**batches, shuffle=True, shuffle_block=64)),
        ),
    ]
    seconds, rows = median_epochs([fn for _, fn in cases], repeat)
    results, raw_rate = [], rows[0] / seconds[0]
    for (name, _), took, n in zip(cases, seconds, rows, strict=True):
        rate = n / took
        results.append(
            {
                "reader": name,
                "rows": n,
                "rows_per_s": round(rate),
                "mb_per_s": round(rate * row_bytes / 1e6, 1),
                "ratio": round(rate / raw_rate, 3),
            }
        )
    return results


def main(argv: list[str] | None = None) -> int:
    """Build the store, run every reader, print a table (or JSON)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000, help="segment rows in the store")
    parser.add_argument("--repeat", type=int, default=5, help="timed epochs per reader (median is kept)")
    parser.add_argument("--workers", type=int, default=2, help="DataLoader workers")
    parser.add_argument("--batch-size", type=int, default=1024, help="rows per FeatureDataset batch")
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    args = parser.parse_args(argv)
    root = Path(tempfile.mkdtemp(prefix="mmfs-bench-reader-"))
    try:
        build_s = build(root / "store", args.rows)
        results = run(str(root / "store"), args.repeat, args.workers, args.batch_size)
    finally:
        shutil.rmtree(root, ignore_errors=True)
    if args.json:
        print(json.dumps({"rows": args.rows, "build_s": round(build_s, 1), "readers": results}, indent=2))
        return 0
    print(f"store: {args.rows} segment rows, columns {COLUMNS}, built in {build_s:.1f} s")
    print(f"\n{'reader':<44}{'rows/s':>10}{'MB/s':>9}{'ratio':>8}")
    for r in results:
        print(f"{r['reader']:<44}{r['rows_per_s']:>10}{r['mb_per_s']:>9}{r['ratio']:>8}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
