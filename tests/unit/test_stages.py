"""The stage contract: every batch stage is a `Stage`, returns new frozen items, never edits its input,
and gives the same result when applied again (the per-item retry after a batch failure relies on it)."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest

from mmfs.config import config_from_dict
from mmfs.media.hashing import sha256_file
from mmfs.pipelines.sources import SourceItem
from mmfs.stages.align import AlignStage
from mmfs.stages.base import Stage, StageTimes, apply_stage
from mmfs.stages.decode import extract
from mmfs.stages.encode import Enricher
from mmfs.stages.items import Extracted, Item, PendingItem
from tests import media_factory as mf
from tests.fake_encoders import FAKE_ENCODERS

# frames sampled at 0, 1, 2 s have mean grey 0, 64, 128: the first is dark and dropped
DROP_DARK = {
    "encoders": FAKE_ENCODERS,
    "quality": {"action": "drop", "min_brightness": 0.1, "max_brightness": None}
    | {"min_sharpness": None, "min_contrast": None},
}


def _pending(path: Path) -> PendingItem:
    return PendingItem(
        sha256_file(path), SourceItem(path=path, uri=str(path)), [str(path)], path.stat().st_size
    )


@pytest.fixture(scope="module")
def decoded(tmp_path_factory: pytest.TempPathFactory) -> tuple[list[Extracted], dict]:
    tmp = tmp_path_factory.mktemp("stages")
    cfg = config_from_dict(DROP_DARK)
    video = mf.write_video(tmp / "v.mp4", times_s=[i / 8 for i in range(24)], audio_tone_hz=440.0)
    text = mf.write_text(tmp / "t.txt", "The keeper lit the lamp. The ferry left at dawn.")
    return [extract(_pending(p), cfg) for p in (video, text)], DROP_DARK


def test_every_batch_stage_is_a_stage_with_a_name_a_timing_and_resources(decoded: tuple) -> None:
    _, raw = decoded
    stages = [*Enricher(config_from_dict(raw)).stages, AlignStage(config_from_dict(raw))]
    assert all(isinstance(s, Stage) for s in stages)
    names = [s.name for s in stages]
    assert names[0] == "embed_image" and names[-1] == "align"
    assert {"text", "embed_text", "embed_audio"} <= set(names)


def test_the_stages_leave_the_decoded_item_as_it_was(decoded: tuple) -> None:
    """Image analysis drops the dark frame on the item it returns, not on the decoded record."""
    extracted, raw = decoded
    video = extracted[0]
    with pytest.raises(dataclasses.FrozenInstanceError):
        video.frames = None  # type: ignore[misc]
    before = (len(video.frames.times_s), len(video.flow), video.texts, dict(video.audio_columns), video.flags)
    times = StageTimes()
    items = Enricher(config_from_dict(raw)).run(extracted, times)
    assert (
        len(video.frames.times_s),
        len(video.flow),
        video.texts,
        dict(video.audio_columns),
        video.flags,
    ) == before
    item = items[0]
    kept = item.frames
    assert kept is not None and len(kept.times_s) == len(video.frames.times_s) - 1
    assert "quality_dropped=1" in item.flags and "quality_dropped=1" not in video.flags
    assert {p.frame_index for p in item.flow} | {p.next_frame_index for p in item.flow} <= set(kept.indices)
    assert len(item.flow) == len(video.flow) - 1
    assert item.vectors.frame is not None and len(item.vectors.frame) == len(kept.times_s)
    assert item.aligned is not None and item.aligned.segments
    assert {"analyse", "text", "embed", "align"} <= set(times.seconds)
    document = items[1]
    assert document.prepared is not None and document.texts and not extracted[1].failures


def test_applying_a_stage_again_gives_the_same_items(decoded: tuple) -> None:
    extracted, raw = decoded
    enricher = Enricher(config_from_dict(raw))
    items = [Item(ex) for ex in extracted]
    for stage in enricher.stages:
        once = apply_stage(stage, items)
        twice = apply_stage(stage, items)
        for a, b in zip(once, twice, strict=True):
            assert a.failures == b.failures and [t.text for t in a.texts] == [t.text for t in b.texts]
            for field in ("frame", "label", "text"):
                va, vb = getattr(a.vectors, field), getattr(b.vectors, field)
                assert (va is None) == (vb is None) and (va is None or np.array_equal(va, vb))
        items = once


def test_the_data_path_comes_from_the_stages_and_follows_the_switches() -> None:
    from mmfs.stages.path import data_path

    path = data_path(config_from_dict({"encoders": FAKE_ENCODERS}))
    assert path.batch_stages[0] == "embed_image" and path.batch_stages[-1] == "align"
    assert {"test.image", "test.text", "test.audio"} <= set(path.encode.models)
    off = data_path(config_from_dict({"encoders": {**FAKE_ENCODERS, "text": None}, "audio": {"asr": "none"}}))
    assert "test.text" not in off.encode.models and "asr" not in off.batch_stages
    assert off.describe()["batch_stages"][0] == "decode"


def test_a_beam_encode_worker_loads_only_the_encoders_that_are_on(tmp_path: Path) -> None:
    """Beam's worker setup goes through the stages' models: a switched-off text encoder is not loaded."""
    pytest.importorskip("apache_beam", reason="Beam is an optional extra: pip install 'mmfs[beam]'")
    from mmfs.encoders.registry import loaded_count
    from mmfs.runners.beam import EmbedFn
    from mmfs.stages.batch import BatchJob

    cfg = config_from_dict({"encoders": {**FAKE_ENCODERS, "text": None}, "audio": {"asr": "none"}})
    before = loaded_count()
    fn = EmbedFn(BatchJob(cfg=cfg, run_id="r", versions={}, schemas={}, store_uri=str(tmp_path)))
    fn.setup()
    assert fn.enricher is not None and fn.enricher.models.encoder("text") is None
    assert loaded_count() - before <= 2  # the image and audio encoders, at most (cached from earlier tests)
