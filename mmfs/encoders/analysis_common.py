"""Shared helpers of the image-analysis models (OCR, faces, NSFW): threads, lazy import, provenance."""

from __future__ import annotations

import hashlib
import importlib
import os
from functools import cache
from pathlib import Path
from types import ModuleType

from mmfs.errors import ConfigError


def cpu_threads() -> int:
    """The CPU threads this process may use (its affinity set), at least one."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return max(1, os.cpu_count() or 1)


def require(module: str, option: str, install: str) -> ModuleType:
    """Import an optional analysis package, or fail as a configuration error that says how to get it."""
    try:
        return importlib.import_module(module)
    except ImportError as err:
        raise ConfigError(
            f"{option} needs the '{module}' package ({err}); install it with: {install}"
        ) from None


@cache
def file_sha256(path: str) -> str:
    """sha256 of a weights file (once per process): the provenance of what the model computed."""
    digest = hashlib.sha256()
    with Path(path).open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
