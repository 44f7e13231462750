# %% [markdown]
# # Exploring an mmfs store
#
# A notebook-style walk through the store (run it as a script, or cell by cell in VS Code / Jupytext):
# build a store from the bundled sample media, read it lazily with polars, query it with SQL (DuckDB),
# search it by vector and by words with typed filters, and stream its `segments` into a PyTorch
# DataLoader. `python examples/explore_store.py [STORE_DIR]` (default: a temporary folder).

# %%
"""Explore an mmfs store: run the pipeline on the sample data, then query, search and stream it."""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

import polars as pl

from mmfs.config import PipelineConfig
from mmfs.demo import sample_paths
from mmfs.pipelines.run import run_pipeline
from mmfs.query import query_vector
from mmfs.store.db import Store
from mmfs.store.readers import FeatureDataset, to_polars
from mmfs.store.search import search_segments
from mmfs.store.search_weighted import hybrid_search
from mmfs.store.sql import run_sql

STORE = sys.argv[1] if len(sys.argv) > 1 else str(Path(tempfile.mkdtemp(prefix="mmfs-example-")) / "store")

# %% [markdown]
# ## 1. Build a store
# Every parameter has a default; `index.min_rows` is lowered so that the tiny sample gets a vector index.

# %%
cfg = PipelineConfig.model_validate({"index": {"min_rows": 256}})
summary = run_pipeline(sample_paths(), cfg, STORE, show_progress=False)
print(f"run {summary.run_id}: {summary.n_ok} ok, {summary.n_quarantined} quarantined, rows {summary.rows}")
store = Store(STORE)

# %% [markdown]
# ## 2. Polars, lazily
# `to_polars` gives a LazyFrame over the Lance table: filters and projections are pushed down, so only
# the columns named here are read.

# %%
media = to_polars(STORE, "media")
kinds = (
    media.filter(pl.col("status") != "failed")
    .group_by("kind")
    .agg(pl.len().alias("items"), pl.col("duration_s").sum().alias("seconds"))
    .sort("kind")
    .collect()
)
print(kinds)
segments_per_item = (
    to_polars(STORE, "segments").group_by("media_id").agg(pl.len().alias("segments")).collect()
)
print(f"{segments_per_item.height} items, {segments_per_item['segments'].sum()} segments")

# %% [markdown]
# ## 3. SQL with DuckDB (`mmfs sql "…"` does the same)
# Every table is a view; the connection has no file or network access.

# %%
per_kind = run_sql(
    store,
    "SELECT m.kind, count(*) AS segments, round(avg(s.end_s - s.start_s), 2) AS avg_len_s "
    "FROM segments s JOIN media m USING (media_id) GROUP BY m.kind ORDER BY m.kind",
)
print(pl.from_arrow(per_kind))

# %% [markdown]
# ## 4. Search: vector, with a typed filter, and hybrid
# Filters are (column, value) pairs turned into a typed expression, never pasted into SQL.

# %%
vector, column = query_vector(store, text="a bird on a branch")
for hit in search_segments(store, vector, column=column, k=3):
    when = f"{hit.start_s:.1f}-{hit.end_s:.1f} s" if hit.start_s is not None else "untimed"
    print(f"{hit.score:.3f}  {Path(hit.uri).name}  {when}")
videos_only = search_segments(store, vector, column=column, k=3, where=[("kind", "video")])
print("video hits:", sorted({Path(h.uri).name for h in videos_only}))
for hit in hybrid_search(store, vector, "cockatoo", k=3, column=column):
    print(f"hybrid {hit.score:.4f}  {Path(hit.uri).name}")

# %% [markdown]
# ## 5. Stream `segments` into PyTorch
# The dataset pins the table version, yields collated batches (vectors as tensors, a validity mask per
# vector column), so the DataLoader runs with `batch_size=None`.

# %%
from torch.utils.data import DataLoader  # noqa: E402  (a cell of its own, as in a notebook)

dataset = FeatureDataset(STORE, "segments", ["media_id", "start_s", "fused"], batch_size=8, shuffle=True)
loader = DataLoader(dataset, batch_size=None)
streamed = 0
for batch in loader:
    streamed += len(batch["media_id"])
print(f"streamed {streamed} segments; last batch fused {tuple(batch['fused'].shape)}")
print(f"store left at {STORE}")
