"""The streaming executor: every item once, batches in order, bounded memory, deadlines, errors, Ctrl-C.

The three stages are plain callables here (the executor knows nothing of media): each test counts
what passes through them, so the bounds are checked from outside the executor as well as by its
own counter.
"""

from __future__ import annotations

import threading
import traceback
from pathlib import Path

import pytest

from mmfs.runners.stream import StreamLimits, run_stream

WAIT_S = 20.0  # a generous limit for anything a test waits on: reaching it is a failure, not a pass


def _stream_threads() -> list[str]:
    return [t.name for t in threading.enumerate() if t.name.startswith("mmfs-stream")]


class Recorder:
    """Counts items decoded but not yet encoded, and batches encoded but not yet committed."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.decoded = self.live = self.max_live = 0
        self.uncommitted = self.max_uncommitted = 0
        self.encoded: list[list[int]] = []
        self.committed: list[list[int]] = []

    def decode(self, item: int) -> int:
        with self.lock:
            self.decoded += 1
            self.live += 1
            self.max_live = max(self.max_live, self.live)
        return item

    def encode(self, batch: list[int]) -> list[int]:
        with self.lock:
            self.live -= len(batch)
            self.encoded.append(list(batch))
            self.uncommitted += 1
            self.max_uncommitted = max(self.max_uncommitted, self.uncommitted)
        return list(batch)

    def commit(self, batch: list[int]) -> None:
        with self.lock:
            self.uncommitted -= 1
            self.committed.append(batch)


def test_every_item_is_committed_once_in_batches_in_the_order_they_were_encoded() -> None:
    rec = Recorder()
    limits = StreamLimits(workers=3, batch_size=4, batch_wait_s=30.0, max_in_flight=10)
    stats = run_stream(list(range(50)), rec.decode, rec.encode, rec.commit, limits)
    assert sorted(i for batch in rec.committed for i in batch) == list(range(50))
    assert rec.committed == rec.encoded  # the commit thread keeps the encoder's order
    assert all(len(b) <= 4 for b in rec.committed)
    assert sum(len(b) == 4 for b in rec.committed) >= 12  # full batches, the end of input cuts the last
    assert (stats.items, stats.batches) == (50, len(rec.committed))
    assert _stream_threads() == []


def test_one_decoder_keeps_the_input_order() -> None:
    rec = Recorder()
    limits = StreamLimits(workers=1, batch_size=3, batch_wait_s=30.0, max_in_flight=4)
    run_stream(list(range(20)), rec.decode, rec.encode, rec.commit, limits)
    assert [i for batch in rec.committed for i in batch] == list(range(20))


def test_no_items_no_batches() -> None:
    rec = Recorder()
    stats = run_stream([], rec.decode, rec.encode, rec.commit, StreamLimits(2, 4, 1.0, 8))
    assert rec.committed == [] and stats.batches == 0


def test_a_slow_encoder_stops_the_decoders_at_the_bound() -> None:
    """While the first batch is being encoded, decoders fill every free slot and then wait: the items
    decoded reach the bound exactly and never pass it, over a run many times longer than the bound."""
    rec = Recorder()
    limits = StreamLimits(workers=3, batch_size=4, batch_wait_s=30.0, max_in_flight=9, commit_queue=2)
    seen_in_first: list[int] = []

    def encode(batch: list[int]) -> list[int]:
        if not rec.encoded:  # the first batch: hold it until the decoders have filled every slot
            done = threading.Event()
            while rec.decoded < limits.max_in_flight and not done.wait(0.01):
                pass
            done.wait(0.2)  # time for a decoder that ignored the bound to overshoot
            seen_in_first.append(rec.decoded)
        return rec.encode(batch)

    stats = run_stream(list(range(300)), rec.decode, encode, rec.commit, limits)
    assert seen_in_first == [limits.max_in_flight]
    assert rec.max_live <= limits.max_in_flight and stats.max_in_flight <= limits.max_in_flight
    assert stats.in_flight_limit == limits.max_in_flight
    assert sorted(i for b in rec.committed for i in b) == list(range(300))


def test_a_slow_store_stops_the_encoder_after_the_commit_queue() -> None:
    """Commits blocked: the encoder hands over `commit_queue` batches (and one being committed), then
    waits; the decoders stop at their bound; nothing is lost once the store moves again."""
    rec = Recorder()
    limits = StreamLimits(workers=2, batch_size=2, batch_wait_s=30.0, max_in_flight=4, commit_queue=2)
    release = threading.Event()
    stalled_at: list[tuple[int, int]] = []

    def commit(batch: list[int]) -> None:
        if not release.is_set():
            waited = threading.Event()
            # one batch in commit, commit_queue queued, one encoded and waiting to be queued
            while len(rec.encoded) < 1 + limits.commit_queue + 1 and not waited.wait(0.01):
                pass
            waited.wait(0.2)  # an executor without back-pressure would encode more meanwhile
            stalled_at.append((len(rec.encoded), rec.decoded))
            release.set()
        rec.commit(batch)

    run_stream(list(range(40)), rec.decode, rec.encode, commit, limits)
    encoded, decoded = stalled_at[0]
    assert encoded == 1 + limits.commit_queue + 1
    assert decoded <= encoded * limits.batch_size + limits.max_in_flight
    assert rec.max_uncommitted <= limits.commit_queue + 2
    assert sorted(i for b in rec.committed for i in b) == list(range(40))


def test_the_deadline_sends_a_partial_batch_when_decoding_is_slow() -> None:
    """Item 0 decodes at once, the others only after the encoder has seen a batch: the encoder must
    take item 0 alone when its deadline passes (without the deadline it waits for a full batch)."""
    rec = Recorder()
    first_batch = threading.Event()

    def decode(item: int) -> int:
        if item > 0:
            first_batch.wait(WAIT_S)
        return rec.decode(item)

    def encode(batch: list[int]) -> list[int]:
        first_batch.set()
        return rec.encode(batch)

    limits = StreamLimits(workers=2, batch_size=4, batch_wait_s=0.05, max_in_flight=8)
    stats = run_stream(list(range(6)), decode, encode, rec.commit, limits)
    assert rec.encoded[0] == [0]
    assert stats.deadline_batches >= 1
    assert sorted(i for b in rec.committed for i in b) == list(range(6))


class Boom(RuntimeError):
    pass


def test_a_decode_error_stops_the_run_and_is_raised_with_its_traceback() -> None:
    rec = Recorder()

    def failing_decode(item: int) -> int:
        if item == 7:
            raise Boom("item 7 is cursed")
        return rec.decode(item)

    with pytest.raises(Boom, match="item 7 is cursed") as caught:
        run_stream(list(range(100)), failing_decode, rec.encode, rec.commit, StreamLimits(2, 4, 30.0, 8))
    frames = [f.name for f in traceback.extract_tb(caught.value.__traceback__)]
    assert "failing_decode" in frames  # raised where it happened, not re-made in the caller's thread
    assert rec.decoded < 100  # the run stopped: the decoders did not go on to the end
    assert _stream_threads() == []


def test_an_encode_error_stops_the_decoders_and_the_committer() -> None:
    rec = Recorder()

    def encode(batch: list[int]) -> list[int]:
        if len(rec.encoded) == 2:
            raise Boom("the model broke")
        return rec.encode(batch)

    with pytest.raises(Boom, match="the model broke"):
        run_stream(list(range(200)), rec.decode, encode, rec.commit, StreamLimits(2, 4, 30.0, 10))
    assert rec.decoded <= 2 * 4 + 10
    assert all(b in rec.encoded for b in rec.committed)
    assert _stream_threads() == []


def test_a_commit_error_stops_the_run_and_later_batches_are_not_committed() -> None:
    rec = Recorder()

    def commit(batch: list[int]) -> None:
        if len(rec.committed) == 3:
            raise Boom("the disk is full")
        rec.commit(batch)

    with pytest.raises(Boom, match="the disk is full"):
        run_stream(list(range(200)), rec.decode, rec.encode, commit, StreamLimits(2, 4, 30.0, 10, 2))
    assert rec.committed == rec.encoded[:3]  # in order, and nothing after the failed one
    assert len(rec.encoded) <= 3 + 1 + 2 + 1  # committed, failed, queued, one waiting to be queued
    assert _stream_threads() == []


def test_ctrl_c_in_the_encoder_stops_every_thread() -> None:
    """KeyboardInterrupt reaches the encoder's (the caller's) thread; the run must not hang on its
    decoders or its committer, and the interrupt is what the caller sees."""
    rec = Recorder()

    def encode(batch: list[int]) -> list[int]:
        if len(rec.encoded) == 1:
            raise KeyboardInterrupt
        return rec.encode(batch)

    with pytest.raises(KeyboardInterrupt):
        run_stream(list(range(500)), rec.decode, encode, rec.commit, StreamLimits(3, 4, 30.0, 12))
    assert rec.decoded < 500
    assert _stream_threads() == []


def test_limits_below_one_are_refused() -> None:
    with pytest.raises(ValueError, match=">= 1"):
        StreamLimits(workers=0, batch_size=4, batch_wait_s=1.0, max_in_flight=8)


def test_a_closed_decode_pool_refuses_work_instead_of_waiting_for_ever(tmp_path: Path) -> None:
    """A decode thread still taking an item after its run stopped (and closed the pool) must not
    block on a worker that will never come back, nor start a new one."""
    from mmfs.config import PipelineConfig
    from mmfs.pipelines.sources import SourceItem
    from mmfs.stages.decode_pool import DecodePool, DecodePoolClosed
    from mmfs.stages.items import PendingItem

    path = tmp_path / "note.txt"
    path.write_text("the ferry leaves at six")
    pending = PendingItem("m", SourceItem(path=path, uri=str(path)), [str(path)], path.stat().st_size)
    pool = DecodePool(PipelineConfig(), 1)
    pool.close()
    with pytest.raises(DecodePoolClosed):
        pool.extract(pending)
    assert pool._all == []
