"""The writer registry on object storage: leases as small objects under `<store>/.mmfs-writers/`.

A PID means nothing across machines, so on object storage a run writes a lease object named
`<host>-<pid>-<token>.json` and rewrites it every `RENEW_S` seconds from a daemon thread while it runs.
A lease whose object was last written more than `LEASE_S` ago (by the object store's clock) belongs to
a run that died or lost its connection, and is ignored; a run that ends deletes its lease.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import socket
import threading
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

from mmfs.errors import StoreError
from mmfs.store.objstore import s3_filesystem, split_s3

LEASE_S = 300.0
RENEW_S = 60.0


def _folder(store_uri: str, writers_dir: str) -> str:
    """`bucket/prefix/<writers_dir>`, the registry's path for pyarrow's filesystem."""
    bucket, key = split_s3(store_uri)
    return "/".join(p for p in (bucket, key.strip("/"), writers_dir) if p)


def live_leases(store_uri: str, writers_dir: str, options: Mapping[str, str] | None) -> list[dict[str, Any]]:
    """The leases of runs still writing (renewed within `LEASE_S`), each `{host, pid, name}`."""
    import pyarrow.fs as pafs

    fs = s3_filesystem(options)
    try:
        entries = fs.get_file_info(pafs.FileSelector(_folder(store_uri, writers_dir), allow_not_found=True))
    except OSError as err:
        raise StoreError(f"cannot list the writers of {store_uri}: {str(err).splitlines()[0]}") from None
    now = datetime.now(UTC)
    out = []
    for entry in entries:
        if entry.type != pafs.FileType.File or not entry.path.endswith(".json"):
            continue
        mtime = entry.mtime if entry.mtime.tzinfo else entry.mtime.replace(tzinfo=UTC)
        if (now - mtime).total_seconds() > LEASE_S:
            continue
        name = entry.path.rsplit("/", 1)[-1]
        parts = name.removesuffix(".json").rsplit("-", 2)
        if len(parts) == 3 and parts[1].isdigit():
            out.append({"host": parts[0], "pid": int(parts[1]), "name": name})
    return out


def _write(fs: Any, path: str) -> None:
    """(Re)write the lease object: its last-modified time is what keeps it alive."""
    body = json.dumps({"host": socket.gethostname(), "pid": os.getpid(), "renewed": time.time()})
    with fs.open_output_stream(path) as out:
        out.write(body.encode())


@contextmanager
def lease(store_uri: str, writers_dir: str, options: Mapping[str, str] | None) -> Iterator[str]:
    """Hold a writer lease for the duration of the block; yields the lease's object name."""
    fs = s3_filesystem(options)
    name = f"{socket.gethostname()}-{os.getpid()}-{secrets.token_hex(4)}.json"
    path = f"{_folder(store_uri, writers_dir)}/{name}"
    try:
        _write(fs, path)
    except OSError as err:
        raise StoreError(f"cannot register as a writer of {store_uri}: {str(err).splitlines()[0]}") from None
    stop = threading.Event()

    def renew() -> None:
        """Rewrite the lease every RENEW_S seconds until the block ends."""
        while not stop.wait(RENEW_S):
            try:
                _write(fs, path)
            except OSError:  # a blip: the next renewal tries again, well within the lease
                continue

    thread = threading.Thread(target=renew, name="mmfs-lease", daemon=True)
    thread.start()
    try:
        yield name
    finally:
        stop.set()
        thread.join(timeout=5)
        with contextlib.suppress(OSError):  # else it expires on its own
            fs.delete_file(path)
