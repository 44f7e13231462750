"""Search latency over `segments` with and without an ANN index, on synthetic clustered vectors.

    python benchmarks/bench_search.py                   # 100k rows, dim 384, IVF_PQ and IVF_HNSW_SQ
    python benchmarks/bench_search.py --rows 100000,1000000 --kind IVF_PQ --json out.json

Per size (a real Lance table, written in batches of 50k): write time, p50/p95 latency (ms) of exact
`search_segments` (no index yet); then per index kind (IVF_PQ; IVF_HNSW_SQ, LanceDB's HNSW flavour,
HNSW graphs inside IVF partitions with scalar-quantised vectors): build time, recall@10 against exact
search, indexed latency with and without a typed filter; last, full-text and hybrid latency. 10% of
the vectors are null (an absent modality), as in real stores. 1M rows take ~1.5 GB and half an hour
on 2 cores.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

from mmfs.schemas import Dims, all_schemas
from mmfs.store.db import Store
from mmfs.store.indexes import ensure_indexes, index_recall
from mmfs.store.search import search_segments, search_text_segments
from mmfs.store.search_weighted import hybrid_search

TOPICS = ("river", "mountain", "city", "forest", "desert", "ocean", "harbor", "valley")
BATCH = 50_000
KINDS = ("IVF_PQ", "IVF_HNSW_SQ")


def _batches(rows: int, dim: int, schema: pa.Schema, seed: int) -> Iterator[pa.RecordBatch]:
    """Synthetic segments: 1000 clusters of unit vectors, every 10th vector null."""
    rng = np.random.default_rng(seed)
    centers = rng.normal(size=(1000, dim)).astype(np.float32)
    for start in range(0, rows, BATCH):
        n = min(BATCH, rows - start)
        ids = np.arange(start, start + n)
        v = centers[rng.integers(0, 1000, n)] + 0.5 * rng.normal(size=(n, dim)).astype(np.float32)
        v /= np.linalg.norm(v, axis=1, keepdims=True)
        fused = pa.FixedSizeListArray.from_arrays(pa.array(v.ravel()), dim, mask=pa.array(ids % 10 == 3))
        columns = {
            "media_id": [f"m{i // 10}" for i in ids],
            "segment_index": ids % 10,
            "kind": np.where(ids % 2 == 0, "video", "audio"),
            "fused": fused,
            "transcript": [f"segment {i} about the {TOPICS[i % len(TOPICS)]}" for i in ids],
            "feature_version": ["bench"] * n,
            "run_id": ["bench"] * n,
        }
        yield pa.RecordBatch.from_pydict(
            {f.name: columns.get(f.name, pa.nulls(n, f.type)) for f in schema}, schema=schema
        )


def _latency(fn: Callable[[np.ndarray], Any], queries: list[np.ndarray]) -> dict[str, float]:
    """p50/p95 wall time of `fn` over the queries, in ms (one warm-up call first)."""
    fn(queries[0])
    times = []
    for q in queries:
        start = time.perf_counter()
        fn(q)
        times.append((time.perf_counter() - start) * 1000)
    return {
        "p50_ms": round(float(np.percentile(times, 50)), 2),
        "p95_ms": round(float(np.percentile(times, 95)), 2),
    }


def _indexed(store: Store, kind: str, rows: int, queries: list[np.ndarray]) -> dict[str, Any]:
    """Build (or rebuild as) one index kind on `fused`, then its recall and latencies."""
    start = time.perf_counter()
    ensure_indexes(store, min_rows=min(rows, 10_000), kind=kind, columns=("fused",))  # type: ignore[arg-type]
    out: dict[str, Any] = {"build_s": round(time.perf_counter() - start, 1)}
    out["recall_at_10"] = round(index_recall(store, "fused", k=10, n_queries=50), 3)
    out["indexed"] = _latency(lambda q: search_segments(store, q, k=10), queries)
    out["indexed_filtered"] = _latency(
        lambda q: search_segments(store, q, k=10, where=[("kind", "audio")]), queries
    )
    print(json.dumps({"rows": rows, kind: out}), file=sys.stderr, flush=True)  # progress: 1M takes long
    return out


def bench(rows: int, dim: int, kinds: list[str], n_queries: int, root: Path) -> dict[str, Any]:
    """One store of `rows` segments: write, exact latency, then each index kind's build, recall, latency."""
    store = Store(root / f"store-{rows}")
    schemas = all_schemas(Dims(image=dim, text=dim, audio=dim))
    store.ensure_tables({"media": schemas["media"], "segments": schemas["segments"]})
    table = store.table("segments")
    start = time.perf_counter()
    table.add(
        pa.RecordBatchReader.from_batches(schemas["segments"], _batches(rows, dim, schemas["segments"], 0)),
        on_bad_vectors="null",
    )
    out: dict[str, Any] = {
        "rows": rows,
        "dim": dim,
        "write_s": round(time.perf_counter() - start, 1),
    }
    rng = np.random.default_rng(1)
    queries = [q / np.linalg.norm(q) for q in rng.normal(size=(n_queries, dim)).astype(np.float32)]
    out["exact"] = _latency(lambda q: search_segments(store, q, k=10), queries[: max(5, n_queries // 5)])
    start = time.perf_counter()
    ensure_indexes(store, min_rows=rows, columns=())  # the full-text index alone, timed apart
    out["fts_build_s"] = round(time.perf_counter() - start, 1)
    out["indexes"] = {kind: _indexed(store, kind, rows, queries) for kind in kinds}
    out["fts"] = _latency(lambda q: search_text_segments(store, "harbor", k=10), queries)
    out["hybrid"] = _latency(lambda q: hybrid_search(store, q, "harbor", k=10), queries)
    return out


def _int_list(text: str) -> list[int]:
    """`100000,1000000` (or `1e6`) as a list of row counts."""
    return [int(float(part)) for part in text.split(",") if part.strip()]


def _kind_list(text: str) -> list[str]:
    """A comma-separated list of index kinds, each one `KINDS` knows."""
    kinds = [part.strip().upper() for part in text.split(",") if part.strip()]
    bad = [k for k in kinds if k not in KINDS]
    if bad or not kinds:
        raise argparse.ArgumentTypeError(f"unknown index kind(s) {bad}; choose from {', '.join(KINDS)}")
    return kinds


def main() -> None:
    """Run the benchmark for each requested size and print one JSON line per size."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--rows", type=_int_list, nargs="+", default=[[100_000]], help="sizes: 100000,1000000 (1M is heavy)"
    )
    parser.add_argument("--dim", type=int, default=384)
    parser.add_argument("--kind", type=_kind_list, default=list(KINDS), help="IVF_PQ,IVF_HNSW_SQ")
    parser.add_argument("--queries", type=int, default=100)
    parser.add_argument(
        "--dir", type=Path, default=None, help="where to build the stores (default: a temp dir)"
    )
    parser.add_argument("--json", type=Path, default=None, help="also write the results here")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(dir=args.dir) as tmp:
        results = []
        for rows in [n for group in args.rows for n in group]:
            result = bench(rows, args.dim, args.kind, args.queries, Path(tmp))
            print(json.dumps(result), flush=True)
            results.append(result)
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
