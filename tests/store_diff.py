"""Compare two stores table by table: same keys, same non-float values, floats within a tolerance.

Columns that record when or in which run a row was written differ by design between two runs and
are left out; everything else, thumbnails and flow fields included, must match.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pyarrow as pa

from mmfs.schemas.tables import KEYS
from mmfs.store.db import Store

RUN_SPECIFIC = {"run_id", "ingested_at", "first_seen", "last_seen", "process_s"}
COMPARED_TABLES = ("media", "frames", "flow", "audio", "text", "segments", "quarantine", "vocabulary")


def _is_float(t: pa.DataType) -> bool:
    while pa.types.is_list(t) or pa.types.is_fixed_size_list(t) or pa.types.is_large_list(t):
        t = t.value_type
    return pa.types.is_floating(t)


def _sorted_rows(store: Store, table: str) -> list[dict[str, Any]]:
    keys = KEYS[table]
    return sorted(store.read(table).to_pylist(), key=lambda r: tuple(r[k] for k in keys))


def _floats_close(a: Any, b: Any, atol: float) -> bool:
    if a is None or b is None:
        return a is None and b is None
    x, y = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    return x.shape == y.shape and bool(np.allclose(x, y, atol=atol, rtol=1e-4, equal_nan=True))


def table_differences(a: Store, b: Store, table: str, *, atol: float = 1e-3) -> list[str]:
    """Human-readable differences between `table` in two stores (empty when they agree)."""
    schema = a.table(table).schema
    rows_a, rows_b = _sorted_rows(a, table), _sorted_rows(b, table)
    keys = KEYS[table]
    keys_a = [tuple(r[k] for k in keys) for r in rows_a]
    keys_b = [tuple(r[k] for k in keys) for r in rows_b]
    if keys_a != keys_b:
        only_a, only_b = set(keys_a) - set(keys_b), set(keys_b) - set(keys_a)
        return [f"{table}: keys differ: only in a {only_a}, only in b {only_b}"]
    problems: list[str] = []
    for field in schema:
        if field.name in RUN_SPECIFIC:
            continue
        floaty = _is_float(field.type)
        for key, ra, rb in zip(keys_a, rows_a, rows_b, strict=True):
            va, vb = ra[field.name], rb[field.name]
            same = _floats_close(va, vb, atol) if floaty else va == vb
            if not same:
                problems.append(f"{table}.{field.name} differs at {key}")
                break
    return problems
