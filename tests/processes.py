"""Find the processes a test started, by a token in their environment (children inherit it)."""

from __future__ import annotations

import os
import time
from pathlib import Path


def processes_with_token(token: str) -> list[int]:
    """PIDs of live processes, other than this one, whose environment carries `token`."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            environ = (entry / "environ").read_bytes()
        except OSError:
            continue
        if token.encode() in environ:
            found.append(int(entry.name))
    return found


def wait_until_gone(token: str, timeout_s: float = 10.0) -> list[int]:
    """Wait for every process carrying `token` to exit; returns those still alive at the deadline."""
    deadline = time.monotonic() + timeout_s
    while (alive := processes_with_token(token)) and time.monotonic() < deadline:
        time.sleep(0.2)
    return alive
