"""Open a LanceDB store, create its tables from `schemas/`, and write rows idempotently.

Writes are upserts on each table's key columns (appended fragments that replace the stored rows of the
same keys in one commit, see `append`), so replaying a batch after a crash replaces what was
half-written instead of duplicating it. An empty write is skipped outright: LanceDB makes a
new version even for a merge that changes nothing, and a re-run must not.
"""

from __future__ import annotations

import json
import logging
import random
import time
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

import lance
import lancedb
import pyarrow as pa

from mmfs.errors import ConfigError, ErrorCode, StoreConflict, StoreError
from mmfs.schemas import KEYS, TABLES
from mmfs.schemas.tables import FEATURES_META, PRIMARY_KEY_META
from mmfs.store.append import commit_lock, commit_rows, merge_uris, stage_rows, stored_keys
from mmfs.store.boundary import is_conflict, store_error
from mmfs.store.lock import active_writers
from mmfs.store.objstore import is_object_uri, resolve_options

log = logging.getLogger(__name__)


_PROV = b"mmfs.provenance."  # schema-metadata key prefix of a vector column's encoder provenance


def _provenance_meta(schema: pa.Schema) -> dict[str, str]:
    """The provenance entries of a schema's metadata, as text."""
    return {k.decode(): v.decode() for k, v in (schema.metadata or {}).items() if k.startswith(_PROV)}


class Store:
    """A directory (or object-store URI) holding the mmfs tables."""

    def __init__(
        self,
        uri: str | Path,
        *,
        pinned: Mapping[str, int] | None = None,
        storage_options: Mapping[str, str] | None = None,
    ) -> None:
        self.uri = str(uri)
        self.remote = is_object_uri(self.uri)
        # object storage: the config's options, completed from AWS_* (Lance reads those too)
        self.storage_options = resolve_options(storage_options) if self.remote else {}
        try:
            self.db = lancedb.connect(self.uri, storage_options=self.storage_options or None)
        except (OSError, ValueError, RuntimeError) as err:
            raise store_error(f"cannot open store {self.uri}", err) from err
        self._tables: dict[str, Any] = {}
        self._lance_uris: dict[str, str] = {}
        self.pinned = dict(pinned) if pinned is not None else None

    @classmethod
    def at_run(cls, uri: str | Path, run_id: str, storage_options: Mapping[str, str] | None = None) -> Store:
        """A read-only view of the store as `run_id` left it (every table at that run's version)."""
        live = cls(uri, storage_options=storage_options)
        rows = live.read("runs", ["run_id", "table_versions"]).to_pylist() if live.has("runs") else []
        match = next((r for r in rows if r["run_id"] == run_id), None)
        if match is None:
            raise ConfigError(f"no run '{run_id}' in {live.uri} (see `mmfs versions`)")
        versions = {t: int(v) for t, v in json.loads(match["table_versions"] or "{}").items() if t != "runs"}
        return cls(uri, pinned=versions, storage_options=storage_options)

    # --- tables -------------------------------------------------------------------------------
    def table_names(self) -> list[str]:
        """The mmfs tables present (in a pinned view: those the pinned run had), in DESIGN.md order."""
        try:
            present = set(_list_tables(self.db))
        except (OSError, ValueError, RuntimeError) as err:  # an unreachable endpoint, say
            raise store_error(f"cannot list the tables of {self.uri}", err) from err
        if self.pinned is not None:
            present &= set(self.pinned) | {"runs"}
        return [name for name in TABLES if name in present]

    def has(self, name: str) -> bool:
        """Whether the table exists."""
        return name in self.table_names()

    def table(self, name: str) -> Any:
        """The open LanceDB table (cached per store object)."""
        if name not in self._tables:
            if not self.has(name):
                raise StoreError(f"table '{name}' does not exist in {self.uri}", code=ErrorCode.STORE_MISSING)
            table = self.db.open_table(name)
            if self.pinned is not None and name in self.pinned:
                table.checkout(self.pinned[name])  # read-only at that version
            self._tables[name] = table
        return self._tables[name]

    def lance_dataset(self, name: str) -> lance.LanceDataset:
        """The table as a Lance dataset at its newest version (pinned: that version), opened in this
        process's shared Lance session: the index pages one commit's key lookup reads stay cached for
        the next (a fresh dataset re-reads every BTREE page its random keys touch, ~10× slower)."""
        uri = self._lance_uris.get(name)
        if uri is None:
            uri = self._lance_uris.setdefault(name, self.table(name).to_lance().uri)
        version = self.pinned.get(name) if self.pinned is not None else None
        return lance.dataset(
            uri, version=version, session=lance_session(), storage_options=self.storage_options or None
        )

    def ensure_tables(self, schemas: Mapping[str, pa.Schema]) -> None:
        """Create the missing tables; check vector widths of existing ones against `schemas`."""
        existing = set(_list_tables(self.db))
        for name, schema in schemas.items():
            if name in existing:
                _check_compatible(name, self.table(name).schema, schema)
                self._add_missing_columns(name, schema)
                self._mark_keys(name)
                self._record_feature_params(name, schema)
                self._refresh_provenance(name, schema)
                continue
            try:
                self._tables[name] = self.db.create_table(name, schema=schema)
            except (OSError, ValueError, RuntimeError) as err:
                if "already exists" in str(err):
                    self._tables[name] = self.db.open_table(name)
                    continue
                raise StoreError(f"cannot create table '{name}': {err}") from err

    def _add_missing_columns(self, name: str, schema: pa.Schema) -> None:
        """Migrate a table made by an earlier release: columns added since then arrive as nulls."""
        if self.pinned is not None:
            return
        table = self.table(name)
        missing = [f for f in schema if f.name not in table.schema.names]
        missing += _missing_children(table.schema, schema)  # struct fields added since (pii_counts.card)
        if not missing:
            return
        if any(not f.nullable for f in missing):
            raise StoreError(
                f"table '{name}' lacks required columns {[f.name for f in missing if not f.nullable]}; "
                "re-create it",
                code=ErrorCode.STORE_SCHEMA,
            )
        try:
            table.add_columns(missing)
        except (OSError, RuntimeError, ValueError) as err:
            table.checkout_latest()
            if any(f.name not in table.schema.names for f in missing):  # not a racing migration
                raise store_failure(f"cannot add columns to '{name}'", err) from err
        table.checkout_latest()
        log.info("added columns %s to '%s' (schema migration)", [f.name for f in missing], name)

    def _refresh_provenance(self, name: str, schema: pa.Schema) -> None:
        """Record the current encoders' provenance on an existing table (another encoder now fills a column).

        One metadata commit, only when a column's provenance changed: a re-run with the same encoders
        writes nothing.
        """
        if self.pinned is not None:
            return
        table = self.table(name)
        want, have = _provenance_meta(schema), _provenance_meta(table.schema)
        changed = {k: v for k, v in want.items() if have.get(k) != v}
        if not changed:
            return
        table.to_lance().update_schema_metadata(changed)
        table.checkout_latest()

    def _mark_keys(self, name: str) -> None:
        """Migrate a table made before key columns carried Lance's primary-key marker (one commit)."""
        if self.pinned is not None:
            return
        table = self.table(name)
        unmarked = [k for k in KEYS[name] if not _is_marked(table.schema.field(k))]
        if not unmarked:
            return
        try:
            table.to_lance().update_field_metadata({k: dict(PRIMARY_KEY_META) for k in unmarked})
        except (OSError, RuntimeError, ValueError) as err:
            table.checkout_latest()
            if any(not _is_marked(table.schema.field(k)) for k in KEYS[name]):  # not a racing migration
                raise StoreError(f"cannot mark the keys of '{name}': {err}") from err
        table.checkout_latest()
        log.info("marked key columns %s of '%s' as its primary key (schema migration)", unmarked, name)

    def _record_feature_params(self, name: str, schema: pa.Schema) -> None:
        """Bring the `mmfs.features*` schema metadata of an existing table up to this config's (one
        commit, and only when it changed: a re-run with the same config writes nothing)."""
        if self.pinned is not None:
            return
        table = self.table(name)
        have = table.schema.metadata or {}
        wanted = {k: v for k, v in (schema.metadata or {}).items() if k.startswith(FEATURES_META.encode())}
        changed = {k.decode(): v.decode() for k, v in wanted.items() if have.get(k) != v}
        if not changed:
            return
        try:
            table.to_lance().update_schema_metadata(changed)
        except (OSError, RuntimeError, ValueError) as err:
            raise store_failure(f"cannot record the feature parameters of '{name}'", err) from err
        table.checkout_latest()
        log.info("recorded feature parameters %s of '%s'", sorted(changed), name)

    def current(self, name: str) -> Any:
        """The table at its newest version, or at the pinned one in a view of a past run."""
        table = self.table(name)
        if self.pinned is None:
            table.checkout_latest()  # other processes may have committed since it was opened
        return table

    def drop(self, name: str) -> None:
        """Drop a table and forget its handle (a rollback of the run that created it)."""
        self.db.drop_table(name)
        self._tables.pop(name, None)

    def versions(self) -> dict[str, int]:
        """Current version of every table present."""
        out = {}
        for name in self.table_names():
            tbl = self.table(name)
            if self.pinned is None:
                tbl.checkout_latest()
            out[name] = int(tbl.version)
        return out

    def count(self, name: str, where: str | None = None) -> int:
        """Rows in a table (0 when it does not exist)."""
        if not self.has(name):
            return 0
        return int(self.table(name).count_rows(where))

    # --- writes -------------------------------------------------------------------------------
    def write(self, name: str, rows: pa.Table, *, replace: str | None = None, retries: int = 5) -> int | None:
        """Upsert rows on the table's keys; returns the new version, or None when nothing to write.

        `replace` (a built where-clause) names the rows these replace: those of them that `rows` does
        not carry (the frames of a video sampled more sparsely now, say) are deleted in the same commit.
        The rows are appended as new fragments, stored rows of the same keys deleted in that commit
        (`append`): O(rows), whatever the table's size. On object storage while other runs write,
        where no commit lock spans them, it is a `merge_insert` instead.
        """
        if self.remote and active_writers(self.uri, self.storage_options):
            return self._merge(name, rows, retries=retries, replace=replace)
        return self._append(name, rows, retries=retries, replace=replace)

    def _append(self, name: str, rows: pa.Table, *, retries: int, replace: str | None) -> int | None:
        """`write` by fragment append plus deletion vectors, under the store's commit lock."""
        if self.pinned is not None:
            raise StoreError(
                f"this view of {self.uri} is pinned to a past run: read-only", code=ErrorCode.STORE_READ_ONLY
            )
        if rows.num_rows == 0:
            return self._delete(name, replace) if replace else None
        table = self.table(name)
        _check_finite(name, rows)
        rows = rows.select(table.schema.names).cast(table.schema)
        keys = list(KEYS[name])

        def attempt() -> int | None:
            table.checkout_latest()
            dataset = self.lance_dataset(name)
            old = stored_keys(dataset, rows, keys)
            staged = merge_uris(rows, old) if name == "media" else rows
            fragments = stage_rows(dataset, staged, self.storage_options)
            version = commit_rows(dataset, staged, old, fragments, keys, replace, self.storage_options)
            table.checkout_latest()
            return version

        with commit_lock(None if self.remote else self.uri):
            return _retry_conflicts(name, retries, attempt)

    def update_columns(self, name: str, rows: pa.Table, *, retries: int = 5) -> int | None:
        """Set some columns of existing rows: `rows` holds the keys and those columns only."""
        return self._merge(name, rows, retries=retries, partial=True)

    def replace_all(self, name: str, rows: pa.Table, *, retries: int = 5) -> int | None:
        """Make the table hold exactly `rows` (one commit: upsert, and delete the keys not in `rows`)."""
        return self._merge(name, rows, retries=retries, delete_missing=True)

    def _merge(
        self,
        name: str,
        rows: pa.Table,
        *,
        retries: int,
        partial: bool = False,
        replace: str | None = None,
        delete_missing: bool = False,
    ) -> int | None:
        """One merge-insert on the table's keys, retried with backoff on commit conflicts."""
        if self.pinned is not None:
            raise StoreError(
                f"this view of {self.uri} is pinned to a past run: read-only", code=ErrorCode.STORE_READ_ONLY
            )
        if rows.num_rows == 0:
            return self._delete(name, replace) if replace else None
        table = self.table(name)
        _check_finite(name, rows)
        if partial:
            schema = pa.schema([table.schema.field(n) for n in rows.schema.names])
            rows = rows.cast(schema)
        else:
            rows = rows.select(table.schema.names).cast(table.schema)
        keys = list(KEYS[name])

        def attempt() -> int | None:
            builder = table.merge_insert(keys).when_matched_update_all()
            if not partial:
                builder = builder.when_not_matched_insert_all()
            if delete_missing or replace:
                builder = builder.when_not_matched_by_source_delete(replace)
            result = builder.execute(rows, on_bad_vectors="null")  # absent modality = null vector
            return int(result.version)

        return _retry_conflicts(name, retries, attempt)

    def _delete(self, name: str, where: str) -> int | None:
        """Delete the rows matching a built where-clause; the new version, or None when none matched."""
        if not self.has(name) or not self.count(name, where):
            return None
        table = self.table(name)
        for attempt in range(1, 6):
            try:
                table.delete(where)
                return int(table.version)
            except (OSError, RuntimeError, ValueError) as err:
                if attempt < 5 and _is_conflict(err):
                    time.sleep(min(2.0, 0.05 * 2**attempt) * (0.5 + random.random()))
                    continue
                raise store_failure(f"delete from '{name}' failed", err) from err
        return None  # unreachable: the loop returns or raises

    def read(self, name: str, columns: Iterable[str] | None = None, where: str | None = None) -> pa.Table:
        """A table's rows (optionally some columns, optionally filtered by a built where-clause)."""
        if not self.has(name):
            return pa.table({})
        query = self.table(name).search()
        if where:
            query = query.where(where)
        if columns is not None:
            query = query.select(list(columns))
        return query.limit(None).to_arrow()

    def provenance(self, name: str) -> dict[str, dict[str, Any]]:
        """Per vector column, the encoder provenance recorded in the table's schema metadata."""
        meta = self.table(name).schema.metadata or {}
        prefix = _PROV
        return {
            key[len(prefix) :].decode(): json.loads(value)
            for key, value in meta.items()
            if key.startswith(prefix)
        }


_SESSION: list[lance.Session] = []
# Lance's defaults (GiBs) let a long run's caches grow with every version and fragment it touched;
# these hold a commit's key-index pages and the manifests of the tables it writes
SESSION_INDEX_CACHE_BYTES = 256 * 2**20
SESSION_METADATA_CACHE_BYTES = 64 * 2**20


def lance_session() -> lance.Session:
    """One Lance session per process (index and metadata caches shared by every dataset opened),
    with bounded caches."""
    if not _SESSION:
        _SESSION.append(
            lance.Session(
                index_cache_size_bytes=SESSION_INDEX_CACHE_BYTES,
                metadata_cache_size_bytes=SESSION_METADATA_CACHE_BYTES,
            )
        )
    return _SESSION[0]


def _retry_conflicts(name: str, retries: int, attempt: Callable[[], int | None]) -> int | None:
    """Run one write attempt, again with backoff while it loses commit races; map what is left."""
    for n in range(1, retries + 1):
        try:
            return attempt()
        except (OSError, RuntimeError, ValueError) as err:
            if n < retries and _is_conflict(err):
                time.sleep(min(2.0, 0.05 * 2**n) * (0.5 + random.random()))
                continue
            if _is_conflict(err):
                raise StoreConflict(f"write to '{name}' conflicted: {err}") from err
            raise StoreError(f"write to '{name}' failed: {err}", code=ErrorCode.STORE_WRITE_FAILED) from err
    return None  # unreachable: the loop returns or raises


def _list_tables(db: Any) -> list[str]:
    """Table names across LanceDB API versions (list_tables pages; table_names is older)."""
    if hasattr(db, "list_tables"):
        result = db.list_tables()
        names = getattr(result, "tables", result)
        return list(names)
    return list(db.table_names())


def _check_finite(name: str, rows: pa.Table) -> None:
    """Refuse NaN/Inf in vector columns: LanceDB would silently null them (RELIABILITY item 30)."""
    import pyarrow.compute as pc

    for column in rows.schema:
        if pa.types.is_fixed_size_list(column.type) and pa.types.is_floating(column.type.value_type):
            values = rows.column(column.name).combine_chunks().flatten()
            if len(values) and not pc.all(pc.is_finite(values)).as_py():
                raise StoreError(
                    f"non-finite values in {name}.{column.name}; the writer refuses them",
                    code=ErrorCode.STORE_BAD_VALUES,
                )


def store_failure(message: str, err: BaseException) -> StoreError:
    """The store error for a failed Lance operation (`boundary.store_error`): one readable line."""
    return store_error(message, err)


_is_conflict = is_conflict


PRIMARY_KEY_META_BYTES = {k.encode(): v.encode() for k, v in PRIMARY_KEY_META.items()}


def _is_marked(field: pa.Field) -> bool:
    meta = field.metadata or {}
    return all(meta.get(k) == v for k, v in PRIMARY_KEY_META_BYTES.items())


def _missing_children(actual: pa.Schema, wanted: pa.Schema) -> list[pa.Field]:
    """For each struct column of both schemas, the wanted children it lacks, as a struct of those alone
    (Lance adds them as nulls to the existing struct)."""
    out = []
    for field in wanted:
        if not pa.types.is_struct(field.type) or field.name not in actual.names:
            continue
        have = actual.field(field.name).type
        if not pa.types.is_struct(have):
            continue
        names = {have.field(i).name for i in range(have.num_fields)}
        new = [
            field.type.field(i) for i in range(field.type.num_fields) if field.type.field(i).name not in names
        ]
        if new:
            out.append(pa.field(field.name, pa.struct(new), nullable=field.nullable))
    return out


def _check_compatible(name: str, actual: pa.Schema, wanted: pa.Schema) -> None:
    """Refuse to write vectors of another width into an existing table (a different encoder)."""
    for field in wanted:
        if not pa.types.is_fixed_size_list(field.type) or field.name not in actual.names:
            continue
        have = actual.field(field.name).type
        if pa.types.is_fixed_size_list(have) and have.list_size != field.type.list_size:
            raise StoreError(
                f"table '{name}' column '{field.name}' holds {have.list_size}-d vectors but the "
                f"configured encoder makes {field.type.list_size}-d ones; use another store or "
                "re-create the table",
                code=ErrorCode.STORE_SCHEMA,
            )
