"""Rows become Arrow strictly: a key outside the table's schema is refused, never a silent null column."""

from __future__ import annotations

import pyarrow as pa
import pytest

from mmfs.schemas import Dims, all_schemas
from mmfs.schemas.rows import UnknownColumn, rows_to_table


def test_a_misspelt_key_is_refused_with_the_names() -> None:
    schema = all_schemas(Dims(image=4, text=4, audio=4))["media"]
    good = {"media_id": "a" * 64, "uri": "/x.png", "kind": "image", "status": "ok", "duration_s": 1.5}
    table = rows_to_table([good], schema, "media")
    assert table.schema == schema and table.column("duration_s").to_pylist() == [1.5]
    with pytest.raises(UnknownColumn, match=r"table 'media' has no column\(s\) \['durtion_s'\]"):
        rows_to_table([good, {**good, "durtion_s": 2.0}], schema, "media")
    # what the strict builder guards against: pyarrow alone drops the key and stores a null
    silent = pa.Table.from_pylist([{**good, "duration_s": None, "durtion_s": 2.0}], schema=schema)
    assert silent.column("duration_s").to_pylist() == [None]
