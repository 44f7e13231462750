"""Sources on S3-compatible object storage: list a prefix, hash objects by streaming, copy one item locally.

Hashing streams the object's bytes through sha256 (nothing touches the disk), so the same bytes get
the same `media_id` wherever they live. Decoding needs a seekable local file (FFmpeg seeks, MP4s keep
their index at the end), so each item is copied into its own temporary folder just for its extract
stage and removed right after: the local footprint is at most `runner.workers` items, each within
`limits.max_bytes`, and nothing lingers between runs.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import tempfile
from collections.abc import Iterator, Mapping
from pathlib import Path, PurePosixPath
from typing import Any

from mmfs.errors import ConfigError, ErrorCode, SourceRejected
from mmfs.store.objstore import is_object_uri, s3_filesystem, split_s3
from mmfs.transforms.text.captions import SIDECAR_SUFFIXES

_CHUNK = 1 << 20


@dataclasses.dataclass(frozen=True)
class RemoteObject:
    """One object found under a prefix: its URI and size in bytes."""

    uri: str
    size: int


def list_objects(
    uri: str, options: Mapping[str, str], *, recursive: bool, hidden: bool
) -> list[RemoteObject]:
    """The objects at `uri`: the object itself, or every object under it taken as a prefix (sorted)."""
    import pyarrow.fs as pafs

    bucket, key = split_s3(uri)
    fs = s3_filesystem(options)
    base = f"{bucket}/{key}".rstrip("/")
    try:
        info = fs.get_file_info(base)
        if info.type == pafs.FileType.File and not uri.endswith("/"):
            return [RemoteObject(f"s3://{base}", int(info.size or 0))]
        found = fs.get_file_info(pafs.FileSelector(base, recursive=recursive, allow_not_found=True))
    except OSError as err:
        raise ConfigError(f"cannot list {uri}: {str(err).splitlines()[0]}") from None
    out = []
    for entry in found:
        rel = PurePosixPath(entry.path).relative_to(base)
        if entry.type != pafs.FileType.File or (not hidden and any(p.startswith(".") for p in rel.parts)):
            continue
        out.append(RemoteObject(f"s3://{entry.path}", int(entry.size or 0)))
    return sorted(out, key=lambda o: o.uri)


def pair_sidecars(objects: list[RemoteObject]) -> list[tuple[RemoteObject, str | None]]:
    """Media objects with the URI of their `.srt`/`.vtt`/`.txt` sidecar (same stem, same folder)."""
    by_stem: dict[str, list[RemoteObject]] = {}
    for obj in objects:
        by_stem.setdefault(str(PurePosixPath(obj.uri).with_suffix("")), []).append(obj)
    out = []
    for obj in objects:
        path = PurePosixPath(obj.uri)
        siblings = by_stem[str(path.with_suffix(""))]
        is_text = path.suffix.lower() in SIDECAR_SUFFIXES
        if is_text and any(PurePosixPath(s.uri).suffix.lower() not in SIDECAR_SUFFIXES for s in siblings):
            continue  # a sidecar, not an item
        sidecar = None
        if not is_text:
            texts = {PurePosixPath(s.uri).suffix.lower(): s.uri for s in siblings}
            sidecar = next((texts[x] for x in SIDECAR_SUFFIXES if x in texts), None)
        out.append((obj, sidecar))
    return out


def sha256_object(uri: str, options: Mapping[str, str]) -> str:
    """Hex sha256 of an object's bytes, streamed in 1 MiB chunks (equal to `sha256_file` of a copy)."""
    digest = hashlib.sha256()
    with _open(uri, options) as stream:
        while chunk := stream.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def _open(uri: str, options: Mapping[str, str]) -> Any:
    """An input stream on the object; a missing or unreadable object is a SourceRejected."""
    bucket, key = split_s3(uri)
    try:
        return s3_filesystem(options).open_input_stream(f"{bucket}/{key}")
    except OSError as err:
        code = ErrorCode.NOT_FOUND if "not found" in str(err).lower() else ErrorCode.UNREADABLE
        raise SourceRejected(f"{uri}: cannot read ({str(err).splitlines()[0][:300]})", code=code) from None


def _download(uri: str, options: Mapping[str, str], folder: Path) -> Path:
    """Copy one object into `folder`, under its own file name (decoders may look at the suffix)."""
    target = folder / (PurePosixPath(split_s3(uri)[1]).name or "object")
    with _open(uri, options) as stream, target.open("wb") as out:
        while chunk := stream.read(_CHUNK):
            out.write(chunk)
    return target


@contextlib.contextmanager
def local_copy(item: Any, options: Mapping[str, str], cache_dir: str | None) -> Iterator[Any]:
    """The item itself when local; for an object, the item pointing at a temporary local copy."""
    if not is_object_uri(item.uri):
        yield item
        return
    with tempfile.TemporaryDirectory(prefix="mmfs-src-", dir=cache_dir) as tmp:
        folder = Path(tmp)
        path = _download(item.uri, options, folder)
        sidecar = None
        if item.sidecar_uri:
            (folder / "sidecar").mkdir()
            sidecar = _download(item.sidecar_uri, options, folder / "sidecar")
        yield dataclasses.replace(item, path=path, sidecar=sidecar)
