"""Encoder lanes: chunks side by side on CPUs that idle decoders lend (encoders/execution.py, local.py)."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest

from mmfs.encoders import create
from mmfs.encoders.execution import chunks, laned, lendable_cpus, lending_cpus, spare_cpus
from mmfs.runners.local import DecodesUnderWay
from mmfs.stages.items import Extracted, PendingItem

skimage_data = pytest.importorskip("skimage.data", reason="scikit-image (dev extra) supplies the test photos")
WAIT_S = 10.0  # generous: a lane that never runs fails the test by timing out, not by hanging it


def test_lending_says_how_many_cpus_are_idle_within_its_bound_and_restores_the_outer_one() -> None:
    assert (spare_cpus(), lendable_cpus()) == (0, 0)
    idle = [3]
    with lending_cpus(lambda: idle[0], 2):
        assert (spare_cpus(), lendable_cpus()) == (2, 2)  # never more than at_most
        idle[0] = -1
        assert spare_cpus() == 0
        with lending_cpus(lambda: 1, 1):
            assert spare_cpus() == 1
        idle[0] = 1
        assert (spare_cpus(), lendable_cpus()) == (1, 2)
    assert (spare_cpus(), lendable_cpus()) == (0, 0)


def test_a_lent_cpu_runs_chunks_beside_the_calling_thread_in_order() -> None:
    second_started = threading.Event()
    ran_on: dict[int, str] = {}

    def work(chunk: Sequence[int]) -> list[int]:
        ran_on[chunk[0]] = threading.current_thread().name
        if chunk[0] == 0:  # the first chunk waits until another lane has taken a chunk: both run at once
            assert second_started.wait(WAIT_S)
        else:
            second_started.set()
        return [x * 10 for x in chunk]

    parts = chunks(list(range(10)), 2)
    got = laned(parts, work, lambda: 1, most=2)
    assert [(start, list(chunk), out) for start, chunk, out in got] == [
        (i, [i, i + 1], [10 * i, 10 * i + 10]) for i in range(0, 10, 2)
    ]
    assert set(ran_on.values()) == {threading.current_thread().name, "mmfs-encoder-lane-1"}
    assert not any(t.name.startswith("mmfs-encoder-lane") for t in threading.enumerate())


def test_without_a_lent_cpu_every_chunk_runs_in_the_calling_thread() -> None:
    ran_on: set[str] = set()

    def work(chunk: Sequence[int]) -> int:
        ran_on.add(threading.current_thread().name)
        return sum(chunk)

    got = laned(chunks(list(range(9)), 2), work, lambda: 0, most=3)
    assert [out for _, _, out in got] == [1, 5, 9, 13, 8]
    assert ran_on == {threading.current_thread().name}


def test_an_error_ends_the_results_at_its_chunk_and_stops_the_lanes() -> None:
    taken: list[int] = []

    def work(chunk: Sequence[int]) -> int:
        taken.append(chunk[0])
        if chunk[0] == 4:
            raise ValueError("bad chunk")
        return chunk[0]

    got = laned(chunks(list(range(40)), 2), work, lambda: 1, most=2)
    assert [out for _, _, out in got[:2]] == [0, 2]
    assert len(got) == 3 and isinstance(got[2][2], ValueError)
    assert len(taken) < 20  # no lane took new chunks once one failed
    assert not any(t.name.startswith("mmfs-encoder-lane") for t in threading.enumerate())


def test_efficientnet_on_a_lent_cpu_gives_the_same_vectors_and_labels() -> None:
    enc = create("image.efficientnet_lite0", device="cpu", batch_size=2, threads=1)
    photos = [skimage_data.chelsea(), skimage_data.coffee(), skimage_data.astronaut(), skimage_data.rocket()]
    batch = [*photos, photos[0][::2, ::2].copy()]
    alone, alone_labels = enc.embed_and_classify(batch, top_k=3)
    prepared_on: set[str] = set()
    prepare = enc._prepare

    def recorded(chunk: Sequence[np.ndarray]) -> object:
        prepared_on.add(threading.current_thread().name)
        return prepare(chunk)

    enc._prepare = recorded  # type: ignore[method-assign]  # observe which thread prepared each chunk
    with lending_cpus(lambda: 1, 1):
        lent, lent_labels = enc.embed_and_classify(batch, top_k=3)
        assert np.allclose(enc.embed(batch), alone, atol=1e-5)
    assert np.allclose(lent, alone, atol=1e-5)
    assert [[n for n, _ in row] for row in lent_labels] == [[n for n, _ in row] for row in alone_labels]
    # the lanes prepared every chunk themselves (no prefetch thread): the lent path ran
    assert prepared_on and prepared_on <= {threading.current_thread().name, "mmfs-encoder-lane-1"}


def test_decodes_under_way_count_only_while_a_decode_runs(tmp_path: Path) -> None:
    under_way = DecodesUnderWay()
    seen: list[int] = []

    def decode(item: PendingItem) -> Extracted:
        seen.append(under_way.idle(2))
        raise ValueError("no media here")

    counted = under_way.wrap(decode)
    assert under_way.idle(2) == 2
    with pytest.raises(ValueError, match="no media"):
        counted(None)  # type: ignore[arg-type]  # the decode fails before looking at its item
    assert seen == [1] and under_way.idle(2) == 2 and under_way.idle(0) == 0
