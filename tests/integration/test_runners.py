"""The same sample corpus under the local, Ray and Beam runners gives the same rows, table by table.

Also: a Ray worker killed mid-run (SIGKILL) is retried by Ray and the run still lands every row.
"""

from __future__ import annotations

import os
import shutil
import signal
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from mmfs.config import PipelineConfig
from mmfs.demo import SAMPLE_DIR
from mmfs.pipelines.run import RunSummary, run_pipeline
from mmfs.store.db import Store
from tests.store_diff import COMPARED_TABLES, table_differences

pytestmark = pytest.mark.slow


def _config(kind: str) -> PipelineConfig:
    # batch of 4: batches span several items under every runner, and no runner sees one batch only
    return PipelineConfig.model_validate({"runner": {"kind": kind, "batch_media": 4}})


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    data = tmp_path_factory.mktemp("runners") / "data"
    shutil.copytree(SAMPLE_DIR, data)
    return data


@pytest.fixture(scope="module")
def local_run(corpus: Path) -> tuple[Store, RunSummary]:
    store_dir = corpus.parent / "store-local"
    summary = run_pipeline([str(corpus)], _config("local"), store_dir, show_progress=False)
    return Store(store_dir), summary


def _run_other(kind: str, corpus: Path) -> tuple[Store, RunSummary]:
    store_dir = corpus.parent / f"store-{kind}"
    summary = run_pipeline([str(corpus)], _config(kind), store_dir, show_progress=False)
    return Store(store_dir), summary


def _assert_same(reference: Store, other: Store) -> None:
    problems = [p for t in COMPARED_TABLES for p in table_differences(reference, other, t)]
    assert not problems, "\n".join(problems)
    for table in COMPARED_TABLES:
        assert reference.count(table) == other.count(table) > 0, table


def _assert_same_summary(reference: RunSummary, other: RunSummary) -> None:
    for name in ("n_inputs", "n_ok", "n_degraded", "n_quarantined", "n_duplicates", "rows"):
        assert getattr(other, name) == getattr(reference, name), name
    assert other.media_seconds == pytest.approx(reference.media_seconds)


@pytest.mark.ray
def test_ray_runner_writes_the_same_rows_as_local(corpus: Path, local_run: tuple[Store, RunSummary]) -> None:
    pytest.importorskip("ray", reason="Ray is an optional extra: pip install 'mmfs[ray]'")
    store, summary = _run_other("ray", corpus)
    _assert_same(local_run[0], store)
    _assert_same_summary(local_run[1], summary)
    runs = store.read("runs").to_pylist()
    assert [r["runner"] for r in runs] == ["ray"]


@pytest.mark.beam
def test_beam_runner_writes_the_same_rows_as_local(corpus: Path, local_run: tuple[Store, RunSummary]) -> None:
    pytest.importorskip("apache_beam", reason="Beam is an optional extra: pip install 'mmfs[beam]'")
    store, summary = _run_other("beam", corpus)
    _assert_same(local_run[0], store)
    _assert_same_summary(local_run[1], summary)
    assert [r["runner"] for r in store.read("runs").to_pylist()] == ["beam"]


@pytest.mark.beam
def test_beam_rerun_of_the_same_input_writes_nothing(corpus: Path) -> None:
    pytest.importorskip("apache_beam", reason="Beam is an optional extra: pip install 'mmfs[beam]'")
    store_dir = corpus.parent / "store-beam"  # written by the test above, or written now
    if not Store(store_dir).has("media"):
        _run_other("beam", corpus)
    before = Store(store_dir).versions()
    summary = run_pipeline([str(corpus)], _config("beam"), store_dir, show_progress=False)
    assert summary.n_skipped == summary.n_inputs == 7  # the broken clip's failure is recorded too
    assert summary.n_ok == 0 and summary.rows == {}
    after = Store(store_dir).versions()
    assert {t: v for t, v in after.items() if t != "runs"} == {t: v for t, v in before.items() if t != "runs"}


def _ray_processes(title: str) -> Iterator[int]:
    """PIDs of Ray worker processes whose title (Ray rewrites argv) starts with `title`."""
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if cmdline.startswith(title):
            yield int(entry.name)


class _Killer(threading.Thread):
    """Kills the first Ray process running `title` (SIGKILL), once, and remembers what it killed."""

    def __init__(self, title: str, timeout_s: float = 240.0) -> None:
        super().__init__(daemon=True)
        self.title, self.deadline = title, time.monotonic() + timeout_s
        self.killed: list[int] = []
        self.stop = threading.Event()

    def run(self) -> None:
        while not self.stop.is_set() and time.monotonic() < self.deadline and not self.killed:
            for pid in _ray_processes(self.title):
                os.kill(pid, signal.SIGKILL)
                self.killed.append(pid)
                break
            time.sleep(0.01)


@pytest.mark.ray
def test_a_killed_ray_worker_is_retried_and_every_row_lands(
    corpus: Path, local_run: tuple[Store, RunSummary]
) -> None:
    pytest.importorskip("ray", reason="Ray is an optional extra: pip install 'mmfs[ray]'")
    store_dir = corpus.parent / "store-ray-killed"
    killer = _Killer("ray::MapBatches(_decode_batch)")
    killer.start()
    try:
        summary = run_pipeline([str(corpus)], _config("ray"), store_dir, show_progress=False)
    finally:
        killer.stop.set()
        killer.join()
    assert killer.killed, "no decode worker was seen running, so none was killed"
    _assert_same(local_run[0], Store(store_dir))
    _assert_same_summary(local_run[1], summary)
