"""Run history and rollback: tags per run, restore to before a run, refuse to undo later runs silently."""

from __future__ import annotations

from pathlib import Path

import pytest

from mmfs.config import PipelineConfig
from mmfs.errors import ConfigError
from mmfs.pipelines.run import run_pipeline
from mmfs.store.db import Store
from mmfs.store.versions import history, rollback
from tests import media_factory as mf

pytestmark = pytest.mark.slow
CFG = PipelineConfig()


def _media_names(store: Store) -> list[str]:
    return sorted(Path(u).name for u in store.read("media", ["uri"]).column("uri").to_pylist())


def test_rollback_restores_the_store_before_a_run(tmp_path: Path) -> None:
    first, second = tmp_path / "first", tmp_path / "second"
    mf.write_image(first / "a.png", seed=1)
    mf.write_image(first / "b.png", seed=2)
    mf.write_wav(second / "tone.wav", duration_s=1.2)
    store_dir = tmp_path / "store"
    r1 = run_pipeline([str(first)], CFG, store_dir, show_progress=False)
    store = Store(store_dir)
    after_first = {t: store.read(t).num_rows for t in ("media", "frames", "segments")}
    r2 = run_pipeline([str(second)], CFG, store_dir, show_progress=False)
    store = Store(store_dir)
    assert _media_names(store) == ["a.png", "b.png", "tone.wav"]

    runs = history(store)
    assert [r.run_id for r in runs] == [r1.run_id, r2.run_id]
    assert runs[1].before["media"] == runs[0].after["media"]
    assert f"run-{r2.run_id}" in store.table("media").tags.list()
    assert f"pre-{r2.run_id}" in store.table("media").tags.list()

    with pytest.raises(ConfigError, match=r2.run_id):
        rollback(store, r1.run_id)  # would silently undo the second run too

    result = rollback(store, r2.run_id)
    assert result["rolled_back"] == [r2.run_id] and "media" in result["restored"]
    store = Store(store_dir)
    assert _media_names(store) == ["a.png", "b.png"]
    assert {t: store.read(t).num_rows for t in after_first} == after_first
    assert store.count("audio") == 0
    assert {r.run_id: r.status for r in history(store)}[r2.run_id] == "rolled_back"

    again = run_pipeline([str(second)], CFG, store_dir, show_progress=False)  # the undone item is redone
    assert again.n_ok == 1 and _media_names(Store(store_dir)) == ["a.png", "b.png", "tone.wav"]


def test_rollback_of_the_first_run_with_cascade_empties_the_store(tmp_path: Path) -> None:
    mf.write_image(tmp_path / "d1" / "a.png")
    mf.write_image(tmp_path / "d2" / "b.png", seed=5)
    store_dir = tmp_path / "store"
    r1 = run_pipeline([str(tmp_path / "d1")], CFG, store_dir, show_progress=False)
    r2 = run_pipeline([str(tmp_path / "d2")], CFG, store_dir, show_progress=False)
    result = rollback(Store(store_dir), r1.run_id, cascade=True)
    assert result["rolled_back"] == [r1.run_id, r2.run_id]
    assert "media" in result["dropped"]
    store = Store(store_dir)
    assert not store.has("media") and store.has("runs")
    with pytest.raises(ConfigError, match="no run"):
        rollback(store, r1.run_id)
    assert run_pipeline([str(tmp_path / "d1")], CFG, store_dir, show_progress=False).n_ok == 1


def test_a_view_pinned_to_a_run_sees_the_store_as_it_was(tmp_path: Path) -> None:
    import json
    import os
    import subprocess
    import sys

    from mmfs.errors import StoreError

    mf.write_image(tmp_path / "d1" / "a.png")
    mf.write_wav(tmp_path / "d2" / "t.wav", duration_s=1.0)
    store_dir = tmp_path / "store"
    r1 = run_pipeline([str(tmp_path / "d1")], CFG, store_dir, show_progress=False)
    run_pipeline([str(tmp_path / "d2")], CFG, store_dir, show_progress=False)
    view = Store.at_run(store_dir, r1.run_id)
    assert _media_names(view) == ["a.png"] and view.count("audio") == 0
    assert _media_names(Store(store_dir)) == ["a.png", "t.wav"]
    with pytest.raises(StoreError, match="read-only"):
        view.write("media", view.read("media"))
    with pytest.raises(ConfigError, match="no run"):
        Store.at_run(store_dir, "nope")
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "mmfs.cli",
            "sql",
            "SELECT count(*) AS n FROM media",
            "--store",
            str(store_dir),
            "--run",
            r1.run_id,
            "--json",
        ],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "HF_HUB_OFFLINE": "1"},
    )
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["rows"] == [{"n": 1}]
