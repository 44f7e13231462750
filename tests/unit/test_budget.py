"""The thread budget splits the CPUs between decoders and torch; the warm-up guesses the models needed."""

from __future__ import annotations

from pathlib import Path

import pytest

from mmfs.config import config_from_dict
from mmfs.pipelines.sources import SourceItem
from mmfs.runners.budget import thread_budget
from mmfs.runners.local import stream_limits
from mmfs.runners.warm import likely_needs
from mmfs.stages.items import PendingItem


@pytest.mark.parametrize(
    ("cores", "decode", "torch"), [(1, 1, 1), (2, 1, 1), (4, 1, 3), (8, 2, 6), (16, 5, 11)]
)
def test_cpu_runs_give_the_encoders_most_cores_and_never_more_threads_than_cores(
    cores: int, decode: int, torch: int
) -> None:
    budget = thread_budget(config_from_dict({"encoders": {"device": "cpu"}}), cores=cores)
    assert (budget.decode, budget.torch, budget.cores) == (decode, torch, cores)
    assert budget.decode + budget.torch <= max(cores, 2)


def test_a_gpu_run_gives_the_decoders_all_but_a_core() -> None:
    budget = thread_budget(config_from_dict({"encoders": {"device": "cuda"}}), cores=16)
    assert (budget.decode, budget.torch) == (14, 2)


def test_what_the_user_set_is_kept_and_the_other_side_gets_the_rest() -> None:
    both = config_from_dict({"runner": {"workers": 3}, "encoders": {"threads": 5, "device": "cpu"}})
    assert thread_budget(both, cores=4).as_dict() == {"decode": 3, "model": 5, "torch": 5, "cores": 4}
    workers = config_from_dict({"runner": {"workers": 3}, "encoders": {"device": "cpu"}})
    assert (thread_budget(workers, cores=8).decode, thread_budget(workers, cores=8).torch) == (3, 5)
    threads = config_from_dict({"encoders": {"threads": 2, "device": "cpu"}})
    assert (thread_budget(threads, cores=8).decode, thread_budget(threads, cores=8).torch) == (6, 2)


def test_the_queue_holds_two_batches_and_one_item_per_decoder_unless_set() -> None:
    cfg = config_from_dict({"runner": {"batch_media": 8, "workers": 2}})
    assert stream_limits(cfg, thread_budget(cfg, cores=2)).max_in_flight == 18
    set_ = config_from_dict(
        {"runner": {"batch_media": 8, "workers": 2, "queue_media": 5, "batch_wait_s": 0.5}}
    )
    limits = stream_limits(set_, thread_budget(set_, cores=2))
    assert (limits.max_in_flight, limits.batch_wait_s, limits.workers) == (5, 0.5, 2)


def _pending(name: str, sidecar: bool = False) -> PendingItem:
    path = Path("/data") / name
    item = SourceItem(path=path, uri=str(path), sidecar=path.with_suffix(".srt") if sidecar else None)
    return PendingItem(media_id=name, item=item, uris=[str(path)], n_bytes=1)


def test_the_warm_up_loads_what_the_names_promise() -> None:
    assert likely_needs([_pending("a.jpg")]) == {"image", "labels"}
    assert likely_needs([_pending("a.wav")]) == {"audio"}
    assert likely_needs([_pending("a.mp4")]) == {"image", "labels", "audio"}
    assert likely_needs([_pending("a.mp4", sidecar=True)]) == {"image", "labels", "audio", "text", "nlp"}
    assert likely_needs([_pending("notes.txt"), _pending("b.png")]) == {"image", "labels", "text", "nlp"}
    assert likely_needs([]) == set()
    off = config_from_dict({"video": {"audio": False}, "image": {"labels": False}})
    assert likely_needs([_pending("a.mp4")], off) == {"image"}  # what the config switches off stays unloaded
    no_text = config_from_dict({"encoders": {"text": None}})
    assert likely_needs([_pending("notes.txt"), _pending("b.png")], no_text) == {"image", "nlp"}


def test_decode_workers_preload_the_decoders_of_the_kinds_the_run_has() -> None:
    """Imported when a worker starts, not inside the first such item's time budget; none for a run of
    photos and notes."""
    from mmfs.runners.local import decoder_preload
    from mmfs.stages.decode_pool import AUDIO_DECODERS

    def todo(*names: str) -> list[PendingItem]:
        return [_pending(name) for name in names]

    default, video_only = config_from_dict({}), config_from_dict({"video": {"audio": False}})
    assert decoder_preload(todo("a.jpg", "b.txt"), default) == ()
    assert decoder_preload(todo("a.wav"), default) == AUDIO_DECODERS
    assert decoder_preload(todo("a.mp4"), default) == (
        "mmfs.transforms.video.frames",
        "mmfs.transforms.video.flow",
        *AUDIO_DECODERS,
    )
    no_flow = config_from_dict({"video": {"audio": False}, "flow": {"enabled": False}})
    assert decoder_preload(todo("a.mp4"), no_flow) == ("mmfs.transforms.video.frames",)
    assert "mmfs.transforms.audio.windows" not in decoder_preload(todo("a.mp4"), video_only)
