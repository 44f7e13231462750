"""Weight digests are remembered across processes by the files' stat, and recomputed when a file changes."""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from mmfs.encoders import digests


@pytest.fixture
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    folder = tmp_path / "cache"
    monkeypatch.setenv("MMFS_CACHE_DIR", str(folder))
    digests.sha256_files.cache_clear()
    yield folder
    digests.sha256_files.cache_clear()


def test_a_digest_is_kept_by_stat_and_recomputed_when_the_file_changes(tmp_path: Path, cache: Path) -> None:
    weights = tmp_path / "w.bin"
    weights.write_bytes(b"a" * 5000)
    first = digests.sha256_files((weights,))
    assert first == hashlib.sha256(b"a" * 5000).hexdigest()
    stored = json.loads((cache / digests.CACHE_FILE).read_text())
    assert [entry["sha256"] for entry in stored.values()] == [first]
    # a later process (no in-process cache) takes the stored digest while the stat is the same:
    # proven by planting a different digest under the same stat
    key = next(iter(stored))
    stored[key]["sha256"] = "planted"
    (cache / digests.CACHE_FILE).write_text(json.dumps(stored))
    digests.sha256_files.cache_clear()
    assert digests.sha256_files((weights,)) == "planted"
    # the same size, new bytes and a new mtime: computed again
    weights.write_bytes(b"b" * 5000)
    os.utime(weights, ns=(1, 1_000_000_000))
    digests.sha256_files.cache_clear()
    assert digests.sha256_files((weights,)) == hashlib.sha256(b"b" * 5000).hexdigest()


def test_an_unwritable_cache_falls_back_to_computing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    monkeypatch.setenv("MMFS_CACHE_DIR", str(blocker / "sub"))
    digests.sha256_files.cache_clear()
    weights = tmp_path / "w.bin"
    weights.write_bytes(b"xyz")
    assert digests.sha256_files((weights,)) == hashlib.sha256(b"xyz").hexdigest()
    digests.sha256_files.cache_clear()
