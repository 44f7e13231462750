"""A run's inputs as Arrow columns, so that planning over 100k unchanged files makes no object per file.

Files listed from folders (one `scandir` per folder) are rows: `uri` (the resolved path), `path` (as
listed), `sidecar`, and the `lstat` the listing gave (`size`, `mtime_ns`, `inode`). Inputs that carry
more (manifest rows with text and metadata, objects, files named on the command line) are kept as
`SourceItem`s in `extras` and have a row too, pointing at them (`extra` ≥ 0). The plan joins these
columns with the `media` ledger; a `SourceItem` is made only for a row that has work (`item`).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from mmfs.media.hashing import FileStat
from mmfs.stages.items import SourceItem

INPUT_SCHEMA = pa.schema(
    [
        pa.field("uri", pa.string()),
        pa.field("path", pa.string()),
        pa.field("sidecar", pa.string()),
        pa.field("size", pa.int64()),
        pa.field("mtime_ns", pa.int64()),
        pa.field("inode", pa.int64()),
        pa.field("extra", pa.int32()),  # index into `Inputs.extras`, -1 for a plain listed file
    ]
)


@dataclass
class Inputs:
    """The inputs, one row each, sorted by uri (see the module docstring)."""

    table: pa.Table
    extras: list[SourceItem]

    def __len__(self) -> int:
        return self.table.num_rows

    @classmethod
    def build(
        cls, listed: dict[str, list[Any]], extras: list[SourceItem], stats: dict[int, FileStat] | None = None
    ) -> Inputs:
        """Rows from the listing's columns, then one row per extra, with its stat where `stats` has it
        (by index into `extras`: manifest rows, stat-ed when resolved), else null."""
        n = len(extras)
        known = stats or {}
        columns: dict[str, list[Any]] = {name: list(listed.get(name, [])) for name in INPUT_SCHEMA.names}
        columns["extra"] = [-1] * len(columns["uri"]) + list(range(n))
        columns["uri"] += [item.uri for item in extras]
        columns["path"] += [str(item.path) for item in extras]
        columns["sidecar"] += [None] * n
        for name in ("size", "mtime_ns", "inode"):
            columns[name] += [getattr(known[i], name) if i in known else None for i in range(n)]
        return cls(pa.table(columns, schema=INPUT_SCHEMA), extras)

    def unique_sorted(self, keys: list[str], limit: int | None) -> Inputs:
        """One row per key (the last given wins, as a dict would keep it), sorted by uri, at most `limit`."""
        table = self.table.append_column("_key", pa.array(keys, pa.string()))
        table = table.append_column("_pos", pa.array(range(table.num_rows), pa.int64()))
        last = table.group_by("_key", use_threads=False).aggregate([("_pos", "max")]).column("_pos_max")
        table = table.take(last.take(pc.sort_indices(last)))  # each key's last row, in input order
        table = table.take(pc.sort_indices(table, [("uri", "ascending")]))  # stable: ties keep that order
        table = table.drop_columns(["_key", "_pos"])
        if limit is not None:
            table = table.slice(0, limit)
        return Inputs(table, self.extras)

    def keep(self, mask: pa.Array) -> Inputs:
        """The rows where `mask` is true."""
        return Inputs(self.table.filter(mask), self.extras)

    def item(self, row: int) -> SourceItem:
        """The `SourceItem` of one row (made here for a listed file)."""
        return self.items([row])[0]

    def items(self, rows: list[int] | None = None) -> list[SourceItem]:
        """`SourceItem`s of the given rows (all rows by default), in that order."""
        table = self.table if rows is None else self.table.take(pa.array(rows, pa.int64()))
        cols = table.select(["uri", "path", "sidecar", "extra"]).to_pydict()
        out = []
        for uri, path, sidecar, extra in zip(
            cols["uri"], cols["path"], cols["sidecar"], cols["extra"], strict=True
        ):
            if extra >= 0:
                out.append(self.extras[extra])
            else:
                out.append(SourceItem(path=Path(path), uri=uri, sidecar=Path(sidecar) if sidecar else None))
        return out
