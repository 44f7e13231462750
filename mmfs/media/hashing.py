"""Content hashing: `media_id` is the sha256 of the bytes, so one file at two paths is one item.

Hashing reads every byte, so re-runs use a cache: a path whose (size, mtime_ns, inode) is the one
recorded when it was hashed keeps its media_id without being read (`HashCache`; `--rehash` skips it).
"""

from __future__ import annotations

import hashlib
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

_CHUNK = 1 << 20


def sha256_file(path: Path) -> str:
    """Hex sha256 of a file, read in 1 MiB chunks so memory stays flat."""
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        while chunk := fh.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


@dataclass(frozen=True)
class FileStat:
    """What identifies a file's bytes without reading them: a cached hash is valid while this holds."""

    size: int
    mtime_ns: int
    inode: int

    def as_row(self, uri: str) -> dict[str, Any]:
        """The `media.uri_stats` entry of `uri`."""
        return {"uri": uri, **asdict(self)}


def file_stat(path: Path) -> FileStat:
    """The file's size, modification time (ns) and inode (one stat call, no byte read)."""
    st = path.stat()
    return FileStat(size=int(st.st_size), mtime_ns=int(st.st_mtime_ns), inode=int(st.st_ino))


class HashCache:
    """uri → (stat when hashed, media_id), read from the `media` ledger's `uri_stats`.

    A path whose size, mtime_ns and inode are unchanged is not read again: its media_id is the
    cached one. Anything else (a rewrite, a copy, a touch) is hashed afresh.
    """

    def __init__(self, entries: dict[str, tuple[FileStat, str]] | None = None) -> None:
        self.entries = entries or {}
        self.hits = 0

    def lookup(self, uri: str, stat: FileStat) -> str | None:
        """The cached media_id of `uri` if its stat is unchanged, else None."""
        found = self.entries.get(uri)
        if found is None or found[0] != stat:
            return None
        self.hits += 1
        return found[1]
