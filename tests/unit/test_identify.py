"""Hashing the inputs that the cache does not know: on several threads, results in input order, each
unreadable or empty file its own failure, stats recorded only for what was read."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from mmfs.config import config_from_dict
from mmfs.errors import EmptyFile
from mmfs.media import hashing
from mmfs.media.hashing import sha256_file
from mmfs.pipelines import identify
from mmfs.stages import hash_files
from mmfs.stages.items import SourceItem, StageFailure


def test_results_follow_the_inputs_and_failures_stay_with_their_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    paths = []
    for i in range(40):
        path = tmp_path / f"note_{i:02d}.txt"
        path.write_text(f"note {i % 30}: the tide turns twice a day\n" * (1 + i))
        paths.append(path)
    (tmp_path / "empty.txt").write_bytes(b"")
    (tmp_path / "gone.txt").symlink_to(tmp_path / "nowhere.txt")  # stat fails: unreadable
    paths[7:7] = [tmp_path / "empty.txt"]
    paths[20:20] = [tmp_path / "gone.txt"]
    seen: set[str] = set()
    real = hashing.sha256_file

    def recording(path: Path) -> str:
        seen.add(threading.current_thread().name)
        return real(path)

    monkeypatch.setattr(hash_files, "sha256_file", recording)
    items = [SourceItem(path=p, uri=str(p)) for p in paths]
    stats: dict[str, hashing.FileStat] = {}
    got = identify.identify_each(items, config_from_dict({}), False, None, stats)

    assert len(got) == len(paths)
    for path, found in zip(paths, got, strict=True):
        if path.name == "empty.txt":
            assert isinstance(found, StageFailure) and isinstance(found.error, EmptyFile)
        elif path.name == "gone.txt":
            assert isinstance(found, StageFailure) and found.stage == "read"
        else:
            assert found == (sha256_file(path), path.stat().st_size)
    assert set(stats) == {str(p) for p in paths if p.name not in ("empty.txt", "gone.txt")}
    assert seen and all(name.startswith("mmfs-hash") for name in seen)
