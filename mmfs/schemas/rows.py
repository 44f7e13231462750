"""Rows to Arrow in a table's schema, strictly: a key the schema lacks is a bug, not a null column.

`pa.Table.from_pylist(rows, schema)` silently drops keys the schema does not name and fills the
named column with nulls, so a misspelt key (`"durtion_s"`) would land as a column of nulls. Every
writer builds its Arrow tables through `rows_to_table`, which refuses such a row, and builds each
column through `schemas.codecs` (vectors and matrices straight from numpy arrays).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pyarrow as pa

from mmfs.schemas.codecs import column_array


class UnknownColumn(ValueError):
    """A row names a column its table's schema does not have (a programming error)."""


def rows_to_table(rows: Sequence[dict[str, Any]], schema: pa.Schema, table: str = "") -> pa.Table:
    """The rows as an Arrow table in `schema`; raises `UnknownColumn` for a key outside it."""
    names = set(schema.names)
    seen: set[str] = set()
    for row in rows:
        if row.keys() <= names:
            continue
        seen |= row.keys() - names
    if seen:
        where = f"table '{table}'" if table else "the schema"
        raise UnknownColumn(f"{where} has no column(s) {sorted(seen)}; it has {sorted(names)}")
    columns = [column_array([row.get(f.name) for row in rows], f.type) for f in schema]
    return pa.Table.from_arrays(columns, schema=schema)
