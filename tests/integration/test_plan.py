"""`mmfs plan` (a dry run) and lineage: a config change makes exactly the affected items' tables stale."""

from __future__ import annotations

from pathlib import Path

import pytest

from mmfs.config import PipelineConfig, config_from_dict
from mmfs.pipelines.plan import make_plan
from mmfs.pipelines.run import run_pipeline
from mmfs.store.db import Store
from tests import media_factory as mf

pytestmark = pytest.mark.slow


def test_plan_before_and_after_a_run_and_after_a_config_change(tmp_path: Path) -> None:
    data = tmp_path / "data"
    mf.write_image(data / "a.png")
    mf.write_wav(data / "tone.wav", duration_s=1.5)
    (data / "empty.bin").write_bytes(b"")
    store_dir = tmp_path / "store"
    cfg = PipelineConfig()

    first = make_plan([str(data)], cfg, store_dir)
    assert sorted(Path(u).name for u in first.new) == ["a.png", "tone.wav"]
    assert first.stale == [] and len(first.unreadable) == 1 and first.n_inputs == 3
    assert not Store(store_dir).has("media")  # a plan writes nothing

    run_pipeline([str(data)], cfg, store_dir, show_progress=False)
    versions = Store(store_dir).versions()
    after = make_plan([str(data)], cfg, store_dir)
    assert after.new == [] and after.stale == [] and after.up_to_date == 2
    assert Store(store_dir).versions() == versions

    changed = config_from_dict({"audio": {"n_mels": 40}})
    stale = make_plan([str(data)], changed, store_dir)
    assert [(Path(s["uri"]).name, s["tables"]) for s in stale.stale] == [("tone.wav", ["audio", "segments"])]
    assert stale.up_to_date == 1  # the image has no audio: none of its rows depend on n_mels

    before = Store(store_dir).versions()
    summary = run_pipeline([str(data)], changed, store_dir, show_progress=False)
    after = Store(store_dir).versions()
    assert summary.n_ok == 1 and summary.n_skipped == 1
    changed_tables = sorted(t for t in before if t != "runs" and after[t] != before[t])
    assert changed_tables == ["audio", "media", "segments"]  # frames, flow, text untouched
    n_mels = {len(m) for m in Store(store_dir).read("audio", ["log_mel"]).column("log_mel").to_pylist()}
    assert n_mels == {40}
    assert make_plan([str(data)], changed, store_dir).stale == []
