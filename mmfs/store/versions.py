"""Run-level versions of the store: tag what each run started from and produced, list, roll back.

Every table is tagged `pre-<run_id>` (its version when the run began) and `run-<run_id>` (its version
when the run ended). Tags keep those versions safe from cleanup, so a rollback can always restore
them. Rolling back a run restores every data table to its `pre-` version; tables the run created are
dropped. Later runs are undone with it only when asked (`cascade`), never silently.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from mmfs.errors import ConfigError, StoreError
from mmfs.schemas import TABLES
from mmfs.schemas.rows import rows_to_table
from mmfs.store.db import Store
from mmfs.store.filters import in_list

DATA_TABLES = tuple(t for t in TABLES if t != "runs")


def _tag(store: Store, table: str, name: str, version: int) -> None:
    tags = store.table(table).tags
    if name in tags.list():
        tags.update(name, version)
    else:
        tags.create(name, version)


def tag_versions(store: Store, prefix: str, run_id: str, versions: dict[str, int]) -> None:
    """Tag each table's given version `<prefix>-<run_id>` (tagged versions survive cleanup)."""
    for table, version in versions.items():
        if table in DATA_TABLES and store.has(table):
            _tag(store, table, f"{prefix}-{run_id}", version)


@dataclass(frozen=True)
class RunVersions:
    """One run's place in the store's history."""

    run_id: str
    status: str
    started_at: Any
    before: dict[str, int]
    after: dict[str, int]


def history(store: Store) -> list[RunVersions]:
    """Every recorded run, oldest first, with the table versions before and after it."""
    if not store.has("runs"):
        return []
    cols = ["run_id", "status", "started_at", "versions_before", "table_versions"]
    rows = store.read("runs", cols).to_pylist()
    out = [
        RunVersions(
            r["run_id"],
            r["status"] or "",
            r["started_at"],
            json.loads(r["versions_before"] or "{}"),
            json.loads(r["table_versions"] or "{}"),
        )
        for r in rows
    ]
    return sorted(out, key=lambda r: (r.started_at, r.run_id))


def rollback(store: Store, run_id: str, *, cascade: bool = False) -> dict[str, Any]:
    """Restore every data table to before `run_id`; later runs only with `cascade`."""
    runs = [r for r in history(store) if r.status != "rolled_back"]
    target = next((r for r in runs if r.run_id == run_id), None)
    if target is None:
        raise ConfigError(f"no run '{run_id}' to roll back (see `mmfs versions`)")
    later = [r.run_id for r in runs if (r.started_at, r.run_id) > (target.started_at, target.run_id)]
    if later and not cascade:
        raise ConfigError(f"runs after {run_id} would be undone too: {', '.join(later)}; pass --cascade")
    restored, dropped = {}, []
    for table in DATA_TABLES:
        if not store.has(table):
            continue
        if table not in target.before:
            store.drop(table)
            dropped.append(table)
            continue
        tbl = store.table(table)
        tbl.checkout_latest()
        if tbl.version != target.before[table]:
            try:
                tbl.restore(target.before[table])
            except (OSError, RuntimeError, ValueError) as err:
                raise StoreError(
                    f"cannot restore '{table}' to version {target.before[table]}: {err}"
                ) from err
            restored[table] = int(tbl.version)
    undone = [run_id, *later]
    _mark_rolled_back(store, undone)
    return {"rolled_back": undone, "restored": restored, "dropped": dropped}


def _mark_rolled_back(store: Store, run_ids: list[str]) -> None:
    rows = store.read("runs", where=in_list("run_id", run_ids)).to_pylist()
    for row in rows:
        row["status"] = "rolled_back"
    store.write("runs", rows_to_table(rows, store.table("runs").schema, "runs"))
