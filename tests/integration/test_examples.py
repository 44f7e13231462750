"""The scripts in `examples/` run end to end, so they never rot."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[2]


def test_explore_store_runs(tmp_path: Path) -> None:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "PYTHONPATH": str(ROOT)}
    store = tmp_path / "store"
    result = subprocess.run(
        [sys.executable, str(ROOT / "examples" / "explore_store.py"), str(store)],
        capture_output=True, text=True, env=env, timeout=900, cwd=tmp_path,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    out = result.stdout
    segments = int(re.search(r"(\d+) segments\n", out).group(1))  # type: ignore[union-attr]
    assert f"streamed {segments} segments" in out  # the DataLoader saw every segment once
    assert re.search(r"video hits: \['cockatoo\.mp4'\]", out)  # the typed filter kept videos only
    assert "hybrid" in out and (store / "segments.lance").is_dir()
