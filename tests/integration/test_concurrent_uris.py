"""Three `mmfs run` processes at once over folders holding copies of the same bytes: every path is kept."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from mmfs.store.db import Store
from tests import media_factory as mf

pytestmark = pytest.mark.slow
ENV = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}


def test_three_concurrent_runs_over_copies_record_every_path(tmp_path: Path) -> None:
    original = mf.write_image(tmp_path / "src" / "photo.png", width=64, height=48, seed=3)
    folders = []
    for name in ("a", "b", "c"):
        (tmp_path / name).mkdir()
        shutil.copy(original, tmp_path / name / f"copy_{name}.png")
        folders.append(tmp_path / name)
    store = tmp_path / "store"
    cmd = [sys.executable, "-m", "mmfs.cli", "run", "--store", str(store), "--json", "--quiet"]
    procs = [
        subprocess.Popen([*cmd, str(f)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=ENV)
        for f in folders
    ]
    for proc in procs:
        _, err = proc.communicate(timeout=900)
        assert proc.returncode == 0, err[-2000:]

    rows = Store(store).read("media", ["media_id", "uris"]).to_pylist()
    assert len(rows) == 1  # one item: the same bytes
    names = sorted(Path(u).name for u in rows[0]["uris"])
    assert names == ["copy_a.png", "copy_b.png", "copy_c.png"]
    frames = Store(store).read("frames", ["media_id", "frame_index"]).to_pylist()
    assert len(frames) == len({(r["media_id"], r["frame_index"]) for r in frames}) == 1
