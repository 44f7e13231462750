"""Turn command-line paths into source items: files, folders, globs and manifests, with sidecars.

A manifest (CSV, JSONL or Parquet with a `uri` column) lists items; its other columns travel as
metadata, and a `text` or `caption` column becomes the item's manifest text. Paths in a manifest must
resolve under an allowed root (the manifest's folder by default), so a manifest cannot point mmfs at
`/etc/passwd`. An `s3://bucket/prefix` lists the objects under it (see `remote`). A `.srt`, `.vtt`
or `.txt` file with the same stem as a media file is its sidecar.
"""

from __future__ import annotations

import glob
import json
import os
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from mmfs.config import SourcesConfig
from mmfs.errors import ConfigError, ErrorCode, SourceRejected
from mmfs.media.hashing import FileStat
from mmfs.pipelines.inputs import Inputs
from mmfs.stages.items import SourceItem
from mmfs.stages.remote import list_objects, pair_sidecars
from mmfs.store.objstore import is_object_uri, split_s3
from mmfs.transforms.text.captions import SIDECAR_SUFFIXES

MANIFEST_SUFFIXES = (".csv", ".jsonl", ".parquet")
_TEXT_COLUMNS = ("text", "caption")


@dataclass(frozen=True)
class RejectedSource:
    """An input refused before reading (missing, outside the allowed roots, unsupported scheme)."""

    uri: str
    error: SourceRejected


def discover(
    paths: list[str], cfg: SourcesConfig, exclude: str | Path | None = None
) -> tuple[list[SourceItem], list[RejectedSource]]:
    """Expand paths into items (sorted, de-duplicated by path) and the inputs that were refused.

    `exclude` is the store's location: a store kept inside an input folder is not ingested into
    itself (its tables, manifests and log are not media).
    """
    inputs, rejected = list_inputs(paths, cfg, exclude)
    return inputs.items(), rejected


def list_inputs(
    paths: list[str], cfg: SourcesConfig, exclude: str | Path | None = None
) -> tuple[Inputs, list[RejectedSource]]:
    """`discover` as columns (`inputs.Inputs`): a listed file is a row, with the stat its listing gave."""
    extras: list[SourceItem] = []
    stats: dict[int, FileStat] = {}  # by index into extras: the manifest rows' stats, taken on resolving
    files: list[Path] = []
    rejected: list[RejectedSource] = []
    listed: dict[str, list[Any]] = {
        name: [] for name in ("uri", "path", "sidecar", "size", "mtime_ns", "inode")
    }
    for raw in paths:
        if is_object_uri(raw):
            found = _from_objects(raw, cfg)
            extras.extend(found)
            if not found:
                err = SourceRejected(f"{raw}: no objects there", code=ErrorCode.NOT_FOUND)
                rejected.append(RejectedSource(raw, err))
            continue
        path = Path(raw)
        if path.is_file() and path.suffix.lower() in MANIFEST_SUFFIXES and _is_manifest(path):
            found, bad, found_stats = _from_manifest(path, cfg)
            stats.update(zip(range(len(extras), len(extras) + len(found)), found_stats, strict=True))
            extras.extend(found)
            rejected.extend(bad)
        elif path.is_dir():
            _walk(path, cfg, listed)
        elif path.is_file():
            files.append(path)
        elif any(ch in raw for ch in "*?["):
            files.extend(Path(m) for m in sorted(glob.glob(raw, recursive=True)) if Path(m).is_file())
        else:
            err = SourceRejected(f"{raw}: no such file or directory", code=ErrorCode.NOT_FOUND)
            rejected.append(RejectedSource(raw, err))
    # every extra's uri is its key: an object's uri, a manifest row's or a named file's resolved path
    extras.extend(_with_sidecars(files))
    inputs = Inputs.build(listed, extras, stats)
    resolved = [True] * len(extras)
    keys = list(listed["uri"]) + [item.uri for item in extras]
    if exclude is not None:
        store = str(exclude) if is_object_uri(str(exclude)) else str(Path(exclude).resolve())
        n = len(listed["uri"])
        if is_object_uri(store) or not n:  # listed files are local: never inside an object prefix
            inside = pa.array([False] * n, pa.bool_())
        else:
            uris = inputs.table.column("uri").slice(0, n)
            inside = pc.or_(pc.equal(uris, store), pc.starts_with(uris, store.rstrip(os.sep) + os.sep))
            inside = inside.combine_chunks() if isinstance(inside, pa.ChunkedArray) else inside
        flags = [_inside(item.uri, store, done) for item, done in zip(extras, resolved, strict=True)]
        inside = pa.concat_arrays([inside, pa.array(flags, pa.bool_())])
        keys = [k for k, out in zip(keys, inside.to_pylist(), strict=True) if not out]
        inputs = inputs.keep(pc.invert(inside))
    return inputs.unique_sorted(keys, cfg.max_items), rejected


def _inside(uri: str, store: str, resolved: bool = False) -> bool:
    """Whether a source item lies inside the store (a local folder, resolved, or an object prefix).

    `resolved`: the item's uri is a resolved path already (a listed file), so a string prefix
    test answers without a `realpath` (one `lstat` per path component) per item.
    """
    if is_object_uri(store) or is_object_uri(uri):
        return is_object_uri(store) and uri.rstrip("/").startswith(store.rstrip("/") + "/")
    path = uri if resolved else str(Path(uri).resolve())
    return path == store or path.startswith(store.rstrip(os.sep) + os.sep)


def check_arguments(paths: list[str], rejected: list[RejectedSource]) -> None:
    """A command whose every argument names nothing (a typo, an empty prefix) is a usage error.

    Raised before a store is created. When some arguments name items, the missing ones are
    quarantined instead, so one bad path does not stop a nightly batch.
    """
    missing = [r for r in rejected if r.uri in paths and r.error.code == ErrorCode.NOT_FOUND]
    if paths and len(missing) == len(paths):
        raise ConfigError("nothing to read: " + "; ".join(r.error.message for r in missing))


def _from_objects(uri: str, cfg: SourcesConfig) -> list[SourceItem]:
    """Items for the objects under an s3:// prefix (or the one object it names), sidecars attached."""
    objects = list_objects(uri, cfg.storage_options, recursive=cfg.recursive, hidden=cfg.include_hidden)
    return [
        SourceItem(path=Path(split_s3(obj.uri)[1]), uri=obj.uri, size=obj.size, sidecar_uri=sidecar)
        for obj, sidecar in pair_sidecars(objects)
    ]


def _walk(root: Path, cfg: SourcesConfig, out: dict[str, list[Any]]) -> None:
    """Append to `out`'s columns the regular files under `root` (recursively when configured): links
    are neither listed nor followed, hidden names skipped unless configured, sidecars paired, not
    listed. One `scandir` per folder: the types come with the listing, and each file's `lstat` is the
    one the hash cache compares (no `Path` object, no `realpath` per file)."""
    folders = [str(root)]
    while folders:
        folder = folders.pop()
        try:
            with os.scandir(folder) as listing:
                entries = list(listing)
        except OSError:  # unreadable folder: skipped, as a glob skips it
            continue
        names: list[os.DirEntry[str]] = []
        plain: set[str] = set()  # every file of the folder, links to files too: sidecar pairing sees them
        for entry in entries:
            hidden = not cfg.include_hidden and entry.name.startswith(".")
            if entry.is_symlink():
                if _is_plain_file(entry):
                    plain.add(entry.name)
                continue
            if entry.is_dir(follow_symlinks=False):
                if cfg.recursive and not hidden:
                    folders.append(entry.path)
            elif entry.is_file(follow_symlinks=False):
                plain.add(entry.name)
                if not hidden:
                    names.append(entry)
        if names:
            _add_folder(folder, names, plain, out)


def _add_folder(
    folder: str, entries: list[os.DirEntry[str]], plain: set[str], out: dict[str, list[Any]]
) -> None:
    """One folder's listed files as rows: sidecars paired (and dropped as items), stats from the listing.

    Names are split only where a sidecar may pair: a folder without `.srt`/`.vtt`/`.txt` files
    splits none, one holding only such files splits those alone.
    """
    resolved = str(Path(folder).resolve())
    side = {n: n[: n.rfind(".")] for n in plain if n.lower().endswith(SIDECAR_SUFFIXES) and n.rfind(".") > 0}
    media_stems = _media_stems(plain.difference(side)) if side else set()
    side_stems = set(side.values())
    uri, path, sidecars = out["uri"], out["path"], out["sidecar"]
    size, mtime, inode = out["size"], out["mtime_ns"], out["inode"]
    for entry in entries:
        name = entry.name
        sidecar = None
        if side:
            stem = side.get(name)
            if stem is not None and stem in media_stems:
                continue  # a sidecar of a media file here: not an item
            if stem is None:
                stem = _stem_suffix(name)[0]
            if stem in side_stems:
                sidecar = next(
                    (
                        folder + os.sep + stem + x
                        for x in SIDECAR_SUFFIXES
                        if stem + x != name and stem + x in plain
                    ),
                    None,
                )
        try:
            st = entry.stat(follow_symlinks=False)
        except OSError:  # vanished since the listing: hashing it reports why
            st = None
        uri.append(resolved + os.sep + name)
        path.append(entry.path)
        sidecars.append(sidecar)
        size.append(st.st_size if st is not None else None)
        mtime.append(st.st_mtime_ns if st is not None else None)
        inode.append(st.st_ino if st is not None else None)


def _media_stems(names: set[str]) -> set[str]:
    """Stems of the names that have a suffix that is not a sidecar's."""
    split = [_stem_suffix(n) for n in names]
    return {stem for stem, suffix in split if suffix and suffix.lower() not in SIDECAR_SUFFIXES}


def sidecar_for(path: Path) -> Path | None:
    """The `.srt`, `.vtt` or `.txt` file beside a media file with the same stem, if any."""
    for suffix in SIDECAR_SUFFIXES:
        candidate = path.with_suffix(suffix)
        if candidate != path and candidate.is_file():
            return candidate
    return None


def _is_plain_file(entry: os.DirEntry[str]) -> bool:
    """A file, or a link to one; a link that loops or dangles is neither (and raises nothing)."""
    try:
        return entry.is_file()
    except OSError:  # ELOOP: a symlink cycle planted in the folder
        return False


class _Folder:
    """One listing of a folder: which files are sidecars, and each media file's, without a stat or glob
    per file.

    A folder of 100k files would otherwise be globbed once per file (quadratic) and stat-ed three
    times per file; the folder is also resolved once, not each of its files. Names are split as
    strings (`_stem_suffix`), not as `Path` objects: a no-op run lists every input every time.
    """

    def __init__(self, folder: Path) -> None:
        self.resolved = str(folder.resolve())
        with os.scandir(folder) as listing:
            entries = list(listing)
        self.files = {e.name for e in entries if _is_plain_file(e)}
        self.links = {e.name for e in entries if e.is_symlink()}
        split = [_stem_suffix(n) for n in self.files]
        self.media_stems = {
            stem for stem, suffix in split if suffix and suffix.lower() not in SIDECAR_SUFFIXES
        }

    def is_sidecar(self, name: str) -> bool:
        """A caption/transcript file of this folder that belongs to a media file of the same stem."""
        stem, suffix = _stem_suffix(name)
        return suffix.lower() in SIDECAR_SUFFIXES and stem in self.media_stems

    def sidecar_for(self, path: Path) -> Path | None:
        """As `sidecar_for`."""
        stem = _stem_suffix(path.name)[0]
        for suffix in SIDECAR_SUFFIXES:
            candidate = stem + suffix
            if candidate != path.name and candidate in self.files:
                return path.with_name(candidate)
        return None


def _stem_suffix(name: str) -> tuple[str, str]:
    """A file name's stem and suffix, exactly as `PurePath.stem` / `.suffix` split it."""
    i = name.rfind(".")
    if 0 < i < len(name) - 1:
        return name[:i], name[i:]
    return name, ""


def _with_sidecars(paths: list[Path]) -> list[SourceItem]:
    """Items for media files with their sidecars attached; sidecars themselves are not items."""
    folders: dict[Path, _Folder] = {}
    items = []
    for p in paths:
        folder = folders.get(p.parent) or folders.setdefault(p.parent, _Folder(p.parent))
        name = p.name
        if folder.is_sidecar(name):
            continue
        uri = os.path.join(folder.resolved, name) if name not in folder.links else str(p.resolve())
        items.append(SourceItem(path=p, uri=uri, sidecar=folder.sidecar_for(p)))
    return items


def _is_manifest(path: Path) -> bool:
    """A CSV/JSONL/Parquet file whose first record has a `uri` column."""
    try:
        return "uri" in _read_manifest(path, limit=1)[0] if path.stat().st_size else False
    except (OSError, ValueError, IndexError, KeyError):
        return False


def _read_manifest(path: Path, limit: int | None = None) -> list[dict[str, Any]]:
    import polars as pl

    suffix = path.suffix.lower()
    if suffix == ".csv":
        frame = pl.read_csv(path, n_rows=limit, infer_schema_length=1000)
    elif suffix == ".parquet":
        frame = pl.read_parquet(path, n_rows=limit)
    else:
        rows = []
        with path.open(encoding="utf-8") as lines:  # as far as `limit` rows: a sniff reads one line
            for line in lines:
                if line.strip():
                    rows.append(json.loads(line))
                    if limit and len(rows) >= limit:
                        break
        return rows
    return frame.to_dicts()


def _from_manifest(
    path: Path, cfg: SourcesConfig
) -> tuple[list[SourceItem], list[RejectedSource], list[FileStat]]:
    """The manifest's rows as items (resolved, under an allowed root, regular files), the rows refused,
    and each item's stat: taken while resolving, so a no-op plan over a manifest stats each file once."""
    try:
        rows = _read_manifest(path)
    except (OSError, ValueError) as err:
        raise ConfigError(f"cannot read manifest {path}: {err}") from None
    roots = [Path(r).resolve() for r in cfg.allowed_roots] or [path.parent.resolve()]
    resolver = _Resolver(path.parent, roots)
    items, rejected, stats = [], [], []
    for row in rows:
        uri = str(row.get("uri") or "")
        try:
            local, st = resolver.resolve(uri)
        except SourceRejected as err:
            rejected.append(RejectedSource(uri, err))
            continue
        text = next((str(row[c]) for c in _TEXT_COLUMNS if row.get(c)), None)
        meta = {k: v for k, v in row.items() if k != "uri" and k not in _TEXT_COLUMNS}
        items.append(SourceItem(Path(local), local, _sidecar_of(local), text, meta))
        stats.append(FileStat(size=int(st.st_size), mtime_ns=int(st.st_mtime_ns), inode=int(st.st_ino)))
    return items, rejected, stats


def _sidecar_of(path: str) -> Path | None:
    """`sidecar_for` on a resolved path as text: three `stat`s, no `Path` made unless one is found."""
    folder, sep, name = path.rpartition(os.sep)
    stem = _stem_suffix(name)[0]
    for suffix in SIDECAR_SUFFIXES:
        candidate = stem + suffix
        if candidate != name and os.path.isfile(folder + sep + candidate):
            return Path(folder + sep + candidate)
    return None


class _Resolver:
    """`_resolve_uri` for many rows: each folder resolved once, each file `lstat`-ed once (its stat is
    kept); a row that names a link, or `.`/`..` as its last part, is resolved in full as before."""

    def __init__(self, base: Path, roots: list[Path]) -> None:
        self.base, self.roots = base, roots
        self.prefixes = [str(r).rstrip(os.sep) + os.sep for r in roots]
        self.folders: dict[str, str] = {}

    def resolve(self, uri: str) -> tuple[str, os.stat_result]:
        """The row's resolved path and stat, or SourceRejected (the messages of `_resolve_uri`)."""
        if not uri:
            raise SourceRejected("manifest row without a uri")
        scheme, sep, rest = uri.partition("://")
        if sep and scheme != "file":
            raise SourceRejected(f"{uri}: scheme '{scheme}' is not supported (local files only)")
        raw = rest if sep else uri
        joined = raw if os.path.isabs(raw) else os.path.join(str(self.base), raw)
        folder, _, name = joined.rpartition(os.sep)
        if name in ("", ".", ".."):
            return self._slow(uri)
        try:
            real = self.folders.get(folder)
            if real is None:
                real = self.folders[folder] = str(Path(folder or os.sep).resolve())
            resolved = real.rstrip(os.sep) + os.sep + name
            st = os.lstat(resolved)
        except FileNotFoundError:
            return self._slow(uri)  # missing, or a folder that is not one: the full path says which
        except (OSError, ValueError, RuntimeError):
            return self._slow(uri)
        if stat.S_ISLNK(st.st_mode):
            return self._slow(uri)
        if not any(resolved == r.rstrip(os.sep) or resolved.startswith(r) for r in self.prefixes):
            raise SourceRejected(f"{uri}: outside the allowed roots {', '.join(map(str, self.roots))}")
        if not stat.S_ISREG(st.st_mode):
            raise SourceRejected(f"{uri}: no such file", code=ErrorCode.NOT_FOUND)
        return resolved, st

    def _slow(self, uri: str) -> tuple[str, os.stat_result]:
        local = _resolve_uri(uri, self.base, self.roots)
        try:
            return str(local), local.stat()
        except OSError as err:
            raise SourceRejected(f"{uri[:300]!r}: not a usable path ({str(err)[:300]})") from None


def _resolve_uri(uri: str, base: Path, roots: list[Path]) -> Path:
    """A manifest uri as a local path under one of the allowed roots, or SourceRejected."""
    if not uri:
        raise SourceRejected("manifest row without a uri")
    scheme, sep, rest = uri.partition("://")
    if sep and scheme != "file":
        raise SourceRejected(f"{uri}: scheme '{scheme}' is not supported (local files only)")
    local = Path(rest if sep else uri)
    try:
        # a NUL byte (ValueError), a symlink loop (RuntimeError) or an over-long name (OSError) is one
        # bad row, not a crash of the whole run
        resolved = (local if local.is_absolute() else base / local).resolve()
        inside = any(resolved == root or root in resolved.parents for root in roots)
        is_file = inside and resolved.is_file()
    except (OSError, ValueError, RuntimeError) as err:
        raise SourceRejected(f"{uri[:300]!r}: not a usable path ({str(err)[:300]})") from None
    if not inside:
        raise SourceRejected(f"{uri}: outside the allowed roots {', '.join(map(str, roots))}")
    if not is_file:
        raise SourceRejected(f"{uri}: no such file", code=ErrorCode.NOT_FOUND)
    return resolved
