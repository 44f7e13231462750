"""Rows staged as Lance data files by the worker that built them, committed later by one committer.

The two-phase write of Lance's distributed-write guide (and of lance-ray's datasink): a worker writes
its rows into a table's `data/` folder (`write_fragments`, no commit) and hands on only the fragment
metadata (JSON, a few hundred bytes a file) and the key columns of its rows. One committer lands any
number of staged batches of a table in one commit (`append.commit_rows`: an `Append`, or an `Update`
that deletes the stored rows of the same keys in that commit), so readers see all of a commit or none.

Staged but not committed is a state a killed run leaves behind: data files that no version
references. So before handing its metadata on, the worker records the batch's data files in
`<store>/.mmfs-staged/<run_id>/<token>.json` (`write_record`); the committer removes the record once
the batch's ledger rows are committed. `sweep_orphans` (run by `mmfs maintain`) deletes data files
that no remaining version references and that are older than a grace period, and the records of
runs older than it: a live run's files are younger than the grace (and maintenance refuses to run
beside a registered writer), so they are never touched.
"""

from __future__ import annotations

import json
import os
import secrets
import socket
import time
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import lance
import pyarrow as pa

from mmfs.schemas import KEYS
from mmfs.store.append import commit_lock, commit_rows, stage_rows, stored_keys
from mmfs.store.db import Store, _check_finite, _retry_conflicts
from mmfs.store.objstore import is_object_uri, s3_filesystem, split_s3

STAGED_DIR = ".mmfs-staged"
HASH_RESULTS = "hash-"  # under STAGED_DIR: a plan's Beam hashing results, read back and removed


@dataclass
class StagedTable:
    """One table's staged rows: fragment metadata (JSON), the rows' key columns, their data files."""

    fragments: list[str]
    keys: pa.Table
    files: list[str]

    @property
    def rows(self) -> int:
        """Rows staged."""
        return self.keys.num_rows

    def to_json(self) -> dict[str, Any]:
        """The metadata part (the keys travel separately, as Arrow IPC)."""
        return {"fragments": self.fragments, "files": self.files}

    @classmethod
    def concat(cls, parts: list[StagedTable]) -> StagedTable:
        """Several batches' staged rows of one table, committed as one."""
        return cls(
            fragments=[f for p in parts for f in p.fragments],
            keys=pa.concat_tables([p.keys for p in parts]),
            files=[f for p in parts for f in p.files],
        )


def stage_table(store: Store, name: str, rows: pa.Table) -> StagedTable:
    """Write `rows` as new, uncommitted data files of table `name` (worker side)."""
    dataset = store.table(name).to_lance()
    rows = rows.select(dataset.schema.names).cast(dataset.schema)
    _check_finite(name, rows)
    fragments = stage_rows(dataset, rows, store.storage_options)
    files = [f"data/{data.path}" for fragment in fragments for data in fragment.files]
    return StagedTable(
        fragments=[json.dumps(f.to_json()) for f in fragments],
        keys=rows.select(list(KEYS[name])),
        files=files,
    )


def commit_staged(
    store: Store, name: str, staged: StagedTable, *, replace: str | None, retries: int = 5
) -> int:
    """Commit staged rows of `name` in one Lance commit; the new version.

    The stored rows under the staged rows' keys, and those matching `replace`, are deleted in the
    same commit (as `Store.write` does for rows in hand). A commit conflict re-reads and retries with
    the same fragments: staged files are committed by reference, never written again.
    """
    table = store.table(name)
    fragments = [lance.FragmentMetadata.from_json(f) for f in staged.fragments]
    keys = list(KEYS[name])

    def attempt() -> int | None:
        table.checkout_latest()
        dataset = store.lance_dataset(name)
        old = stored_keys(dataset, staged.keys, keys)
        version = commit_rows(dataset, staged.keys, old, fragments, keys, replace, store.storage_options)
        table.checkout_latest()
        return version

    with commit_lock(None if store.remote else store.uri):
        version = _retry_conflicts(name, retries, attempt)
    return int(version) if version is not None else int(table.version)


# --- the record of staged, uncommitted batches ------------------------------------------------


def _fs(store: Store) -> tuple[Any, str]:
    """A pyarrow filesystem for the store and the store's root path on it."""
    import pyarrow.fs as pafs

    if is_object_uri(store.uri):
        bucket, key = split_s3(store.uri)
        return s3_filesystem(store.storage_options), "/".join(p for p in (bucket, key.strip("/")) if p)
    return pafs.LocalFileSystem(), os.path.abspath(store.uri)


def write_record(store: Store, run_id: str, files: dict[str, list[str]]) -> str:
    """Record a staged batch's data files (per table) before its metadata is handed on; its name."""
    fs, root = _fs(store)
    name = f"{run_id}/{socket.gethostname()}-{os.getpid()}-{secrets.token_hex(6)}.json"
    path = f"{root}/{STAGED_DIR}/{name}"
    fs.create_dir(path.rsplit("/", 1)[0], recursive=True)
    body = json.dumps({"run_id": run_id, "written": time.time(), "files": files}, sort_keys=True)
    with fs.open_output_stream(path) as out:  # one small object: whole or absent on object storage
        out.write(body.encode())
    return name


def remove_records(store: Store, names: Iterable[str]) -> None:
    """Drop the records of batches whose rows are now committed (a missing one is fine)."""
    fs, root = _fs(store)
    for name in names:
        try:
            fs.delete_file(f"{root}/{STAGED_DIR}/{name}")
        except (FileNotFoundError, OSError):
            continue


def close_run(store: Store, run_id: str) -> None:
    """Remove a finished run's folder of records when none is left (local stores: objects have none)."""
    if is_object_uri(store.uri):
        return
    folder = os.path.join(os.path.abspath(store.uri), STAGED_DIR, run_id)
    try:
        os.rmdir(folder)  # only an empty folder goes: a record left means a batch never committed
    except OSError:
        return


def pending_records(store: Store) -> list[dict[str, Any]]:
    """The records of staged batches not (known to be) committed: `{name, run_id, written, files}`."""
    import pyarrow.fs as pafs

    fs, root = _fs(store)
    selector = pafs.FileSelector(f"{root}/{STAGED_DIR}", recursive=True, allow_not_found=True)
    out = []
    for info in fs.get_file_info(selector):
        if info.type != pafs.FileType.File or not info.path.endswith(".json"):
            continue
        try:
            with fs.open_input_stream(info.path) as src:
                doc = json.loads(src.read().decode())
        except (OSError, ValueError):
            continue  # unreadable: a torn write of a run that died; its files age out regardless
        doc["name"] = info.path.split(f"{STAGED_DIR}/", 1)[1]
        out.append(doc)
    return out


# --- orphan sweep ---------------------------------------------------------------------------


def sweep_orphans(store: Store, grace_s: float) -> dict[str, Any]:
    """Delete data files no remaining version references, older than `grace_s`; drop old records.

    Returns per table the files removed and their bytes, plus the runs whose records were dropped.
    Only `data/` is swept: Lance's own cleanup owns deletion files, indexes and manifests.
    """
    cutoff = time.time() - grace_s
    records = pending_records(store)
    young = {f for r in records if r.get("written", 0) >= cutoff for fs in r["files"].values() for f in fs}
    report: dict[str, Any] = {"tables": {}, "runs": []}
    for name in store.table_names():
        removed, n_bytes = _sweep_table(store, name, cutoff, young)
        if removed:
            report["tables"][name] = {"files": removed, "bytes": n_bytes}
    old = [r for r in records if r.get("written", 0) < cutoff]
    remove_records(store, [r["name"] for r in old])
    report["runs"] = sorted({str(r.get("run_id")) for r in old})
    for run_id in report["runs"]:
        close_run(store, run_id)
    _sweep_hash_results(store, cutoff)
    return report


def _sweep_hash_results(store: Store, cutoff: float) -> None:
    """Remove folders of worker hashing results (`HASH_RESULTS`*) whose files are all older than
    `cutoff`: a plan that died between its Beam hashing and reading the results left them."""
    import pyarrow.fs as pafs

    fs, root = _fs(store)
    for info in fs.get_file_info(pafs.FileSelector(f"{root}/{STAGED_DIR}", allow_not_found=True)):
        if info.type != pafs.FileType.Directory or not info.base_name.startswith(HASH_RESULTS):
            continue
        files = fs.get_file_info(pafs.FileSelector(info.path, recursive=True))
        if all(_mtime(f) < cutoff for f in files if f.type == pafs.FileType.File):
            fs.delete_dir(info.path)


def _sweep_table(store: Store, name: str, cutoff: float, keep: set[str]) -> tuple[int, int]:
    """Orphan data files of one table removed: (count, bytes)."""
    import pyarrow.fs as pafs

    table = store.table(name)
    table.checkout_latest()
    dataset = table.to_lance()
    fs, _ = _fs(store)
    base = _dataset_path(store, dataset.uri)
    infos = fs.get_file_info(pafs.FileSelector(f"{base}/data", allow_not_found=True))
    old = {
        f"data/{i.path.rsplit('/', 1)[-1]}": i
        for i in infos
        if i.type == pafs.FileType.File and _mtime(i) < cutoff
    }
    candidates = set(old) - keep - _files_of(dataset)
    if candidates:  # only then read the older versions' manifests: what time travel still needs
        for version in table.list_versions()[:-1]:
            candidates -= _files_of(dataset.checkout_version(version["version"]))
            if not candidates:
                break
    n_bytes = 0
    for rel in sorted(candidates):
        n_bytes += int(old[rel].size or 0)
        fs.delete_file(f"{base}/{rel}")
    return len(candidates), n_bytes


def _files_of(dataset: lance.LanceDataset) -> set[str]:
    """The data files (relative to the dataset) a version's fragments use."""
    return {f"data/{d.path}" for fragment in dataset.get_fragments() for d in fragment.metadata.files}


def _dataset_path(store: Store, uri: str) -> str:
    """A dataset URI as a path on the store's pyarrow filesystem."""
    if is_object_uri(uri):
        bucket, key = split_s3(uri)
        return "/".join(p for p in (bucket, key.strip("/")) if p)
    return os.path.abspath(uri.removeprefix("file://"))


def _mtime(info: Any) -> float:
    """A file's last-modified time as a POSIX timestamp."""
    stamp = info.mtime
    if isinstance(stamp, datetime):
        return (stamp if stamp.tzinfo else stamp.replace(tzinfo=UTC)).timestamp()
    return float(info.mtime_ns or 0) / 1e9
