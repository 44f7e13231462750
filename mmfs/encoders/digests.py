"""sha256 of model weight files, remembered across processes by each file's identity (stat).

Every run checks the pinned sha256 of the weights it loads and records it in provenance: ~110 MB for
the default models, 0.3 s of CPU in each new process. The digest is kept in a small JSON file in the
user's cache folder (`$MMFS_CACHE_DIR`, else `$XDG_CACHE_HOME/mmfs`, else `~/.cache/mmfs`) under the
files' paths, and reused only while every file keeps its size, mtime_ns, inode and device, as the
input hash cache does. Whoever can rewrite a package's files in place while keeping all four could
as well rewrite mmfs itself, so this weakens no guarantee. A cache that cannot be read or written is
skipped: the digest is then computed, as before.
"""

from __future__ import annotations

import functools
import hashlib
import json
import logging
import os
import tempfile
import threading
from pathlib import Path

CACHE_FILE = "weights-sha256.json"
MAX_ENTRIES = 256  # the oldest entries go past this (one per weight file set ever seen)

log = logging.getLogger(__name__)
_LOCK = threading.Lock()


def cache_dir() -> Path:
    """The user's mmfs cache folder (not created here)."""
    explicit = os.environ.get("MMFS_CACHE_DIR")
    if explicit:
        return Path(explicit)
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "mmfs"


@functools.lru_cache(maxsize=32)
def sha256_files(paths: tuple[Path, ...]) -> str:
    """sha256 over the bytes of the files, in order (one file: what `sha256sum` prints); cached in this
    process and, by the files' stat, across processes."""
    key = "\n".join(str(Path(p).resolve()) for p in paths)
    identity = [_identity(Path(p)) for p in paths]
    known = _read_cache().get(key)
    if isinstance(known, dict) and known.get("stat") == identity and isinstance(known.get("sha256"), str):
        return str(known["sha256"])
    digest = _digest(paths)
    _remember(key, {"stat": identity, "sha256": digest})
    return digest


def _identity(path: Path) -> list[int]:
    st = path.stat()
    return [st.st_size, st.st_mtime_ns, st.st_ino, st.st_dev]


def _digest(paths: tuple[Path, ...]) -> str:
    digest = hashlib.sha256()
    for path in paths:
        with Path(path).open("rb") as fh:
            while chunk := fh.read(1 << 20):
                digest.update(chunk)
    return digest.hexdigest()


def _read_cache() -> dict[str, object]:
    try:
        data = json.loads((cache_dir() / CACHE_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _remember(key: str, entry: dict[str, object]) -> None:
    """Add `entry` to the cache file (atomically replaced; concurrent writers: the last one wins)."""
    folder = cache_dir()
    with _LOCK:
        data = _read_cache()
        data.pop(key, None)
        data[key] = entry
        while len(data) > MAX_ENTRIES:
            data.pop(next(iter(data)))
        try:
            folder.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(prefix=".weights-", dir=folder)
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                json.dump(data, fh)
            os.replace(tmp, folder / CACHE_FILE)
        except OSError as err:
            log.debug("weight digest cache not written in %s: %s", folder, err)
