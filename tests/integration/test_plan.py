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


def _by_key(store: Store, table: str, key: str) -> dict[tuple[str, int], dict]:
    return {(r["media_id"], r[key]): r for r in store.read(table).to_pylist()}


def test_a_changed_audio_parameter_recomputes_only_audio_rows_and_segment_audio(tmp_path: Path) -> None:
    """Issue 9: change n_mels; only audio rows and the segments' audio change, nothing else is rewritten."""
    data = tmp_path / "data"
    mf.write_video(data / "clip.mp4", times_s=mf.constant_rate_times(40, 10.0), audio_tone_hz=330.0)
    (data / "clip.srt").write_text("1\n00:00:00,000 --> 00:00:02,000\nA counter ticks on a grey card.\n")
    store_dir = tmp_path / "store"
    run_pipeline([str(data)], PipelineConfig(), store_dir, show_progress=False)
    store = Store(store_dir)
    old = {t: store.read(t).to_pylist() for t in ("frames", "flow", "text")}
    old_segments = _by_key(store, "segments", "segment_index")
    old_audio = _by_key(store, "audio", "window_index")
    assert old["frames"] and old["flow"] and old["text"] and old_audio  # every modality is there

    changed = config_from_dict({"audio": {"n_mels": 40}})
    plan = make_plan([str(data)], changed, store_dir)
    assert [s["tables"] for s in plan.stale] == [["audio", "segments"]]
    before = store.versions()
    summary = run_pipeline([str(data)], changed, store_dir, show_progress=False)
    after = Store(store_dir).versions()
    assert summary.n_ok == 1
    rewritten = sorted(t for t in before if t != "runs" and after[t] != before[t])
    assert rewritten == ["audio", "media", "segments"]
    store = Store(store_dir)
    assert {t: store.read(t).to_pylist() for t in ("frames", "flow", "text")} == old  # untouched rows

    new_audio = _by_key(store, "audio", "window_index")
    assert new_audio.keys() == old_audio.keys()
    assert {r["run_id"] for r in new_audio.values()} == {summary.run_id}
    assert {len(r["log_mel"]) for r in new_audio.values()} == {40}
    new_segments = _by_key(store, "segments", "segment_index")
    assert new_segments.keys() == old_segments.keys()
    for key, seg in new_segments.items():
        was = old_segments[key]
        assert seg["feature_version"] != was["feature_version"] and seg["run_id"] == summary.run_id
        for column in ("visual", "motion", "text", "labels", "start_s", "end_s", "transcript", "modalities"):
            assert seg[column] == was[column], column  # rebuilt from the kept rows, bit for bit
    media = store.read("media").to_pylist()
    assert [m["status"] for m in media] == ["ok"]
    assert make_plan([str(data)], changed, store_dir).stale == []


def test_a_sparser_sampling_deletes_the_frames_it_no_longer_produces(tmp_path: Path) -> None:
    """Rows an item no longer produces go in the same commit: no orphans, and the item is up to date."""
    data = tmp_path / "data"
    mf.write_video(data / "clip.mp4", times_s=mf.constant_rate_times(40, 10.0))
    store_dir = tmp_path / "store"
    run_pipeline([str(data)], config_from_dict({"video": {"fps": 2.0}}), store_dir, show_progress=False)
    assert Store(store_dir).count("frames") == 8 and Store(store_dir).count("flow") == 7

    sparse = config_from_dict({"video": {"fps": 1.0}})
    plan = make_plan([str(data)], sparse, store_dir)
    assert [s["tables"] for s in plan.stale] == [["flow", "frames", "segments"]]
    run_pipeline([str(data)], sparse, store_dir, show_progress=False)
    store = Store(store_dir)
    frames = store.read("frames", ["t_s", "feature_version"]).to_pylist()
    assert sorted(r["t_s"] for r in frames) == [0.0, 1.0, 2.0, 3.0]
    assert len({r["feature_version"] for r in frames}) == 1
    assert store.count("flow") == 3
    assert make_plan([str(data)], sparse, store_dir).stale == []
