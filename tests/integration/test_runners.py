"""The same sample corpus under the local, Ray and Beam runners gives the same rows, table by table.

Also: a Ray worker killed mid-run (SIGKILL) is retried by Ray and the run still lands every row.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from mmfs.config import PipelineConfig, config_from_dict
from mmfs.demo import SAMPLE_DIR
from mmfs.pipelines.run import RunSummary, run_pipeline
from mmfs.store.db import Store
from mmfs.store.fragments import STAGED_DIR, pending_records, sweep_orphans
from tests import media_factory as mf
from tests.fake_encoders import FAKE_ENCODERS
from tests.processes import processes_with_token, wait_until_gone
from tests.store_diff import COMPARED_TABLES, table_differences

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[2]  # where `tests` is importable from


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


@pytest.fixture(scope="module")
def ray_run(corpus: Path) -> tuple[Store, RunSummary, list[Any], list[int]]:
    """One Ray run over the corpus in which a decode worker is SIGKILLed mid-run: the run, what each
    batch sent to the driver, and the killed PIDs. One run serves the equivalence, transfer and retry
    tests (a local Ray costs most of a minute to start and warm on 2 cores)."""
    pytest.importorskip("ray", reason="Ray is an optional extra: pip install 'mmfs[ray]'")
    from mmfs.runners import ray as runner_ray

    token = uuid.uuid4().hex  # the local Ray started for this run, and its workers, inherit it
    killer = _Killer("ray::MapBatches(_decode_batch)", token)
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("MMFS_TEST_TOKEN", token)
        killer.start()
        try:
            store, summary = _run_other("ray", corpus)
        finally:
            killer.stop.set()
            killer.join()
    return store, summary, list(runner_ray.TRANSFERS), killer.killed


@pytest.mark.ray
def test_ray_runner_writes_the_same_rows_as_local(
    ray_run: tuple[Store, RunSummary, list[Any], list[int]], local_run: tuple[Store, RunSummary]
) -> None:
    store, summary, _, _ = ray_run
    _assert_same(local_run[0], store)
    _assert_same_summary(local_run[1], summary)
    runs = store.read("runs").to_pylist()
    assert [r["runner"] for r in runs] == ["ray"]


@pytest.mark.ray
def test_ray_workers_write_the_rows_and_the_driver_receives_metadata(
    ray_run: tuple[Store, RunSummary, list[Any], list[int]],
) -> None:
    """Encode actors stage their rows as data files; per batch the driver gets a small fraction of them."""
    store, summary, transfers, _ = ray_run
    assert len(transfers) >= 2  # batches of 4 over the corpus
    to_driver = sum(t.driver_bytes for t in transfers)
    built = sum(t.row_bytes for t in transfers)
    assert to_driver * 10 < built, (to_driver, built)
    biggest = max(transfers, key=lambda t: t.row_bytes)
    assert biggest.driver_bytes * 20 < biggest.row_bytes, biggest
    # every staged batch was committed: no record of uncommitted files is left, and no orphan file
    assert pending_records(store) == [] and not list((Path(store.uri) / STAGED_DIR).iterdir())
    assert sweep_orphans(store, grace_s=0)["tables"] == {}
    assert store.count("frames") == summary.rows["frames"] > 0


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


def _ray_processes(title: str, token: str) -> Iterator[int]:
    """PIDs of this test's Ray workers (their environment carries `token`) whose title starts with `title`."""
    for pid in processes_with_token(token):
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if cmdline.startswith(title):
            yield pid


class _Killer(threading.Thread):
    """Kills the first of this test's Ray processes running `title` (SIGKILL), once; remembers it."""

    def __init__(self, title: str, token: str, timeout_s: float = 240.0) -> None:
        super().__init__(daemon=True)
        self.title, self.token, self.deadline = title, token, time.monotonic() + timeout_s
        self.killed: list[int] = []
        self.stop = threading.Event()

    def run(self) -> None:
        while not self.stop.is_set() and time.monotonic() < self.deadline and not self.killed:
            for pid in _ray_processes(self.title, self.token):
                os.kill(pid, signal.SIGKILL)
                self.killed.append(pid)
                break
            time.sleep(0.01)


@pytest.mark.ray
def test_a_killed_ray_worker_is_retried_and_every_row_lands(
    ray_run: tuple[Store, RunSummary, list[Any], list[int]], local_run: tuple[Store, RunSummary]
) -> None:
    """The shared Ray run had a decode worker SIGKILLed mid-run: Ray retried its task, every row landed."""
    store, summary, _, killed = ray_run
    assert killed, "no decode worker was seen running, so none was killed"
    _assert_same(local_run[0], store)
    _assert_same_summary(local_run[1], summary)


@pytest.mark.ray
def test_the_cli_joins_a_running_cluster_by_address(tmp_path: Path) -> None:
    """`mmfs run --runner ray --address`: a separately started Ray head (a one-node cluster) does the work,
    and its rows equal a local run's.

    The deterministic `test.*` encoders stand in for the models: this is about the command joining a
    cluster (the Ray run above compares real-model rows with the local runner's).
    """
    pytest.importorskip("ray", reason="Ray is an optional extra: pip install 'mmfs[ray]'")
    data = tmp_path / "data"
    mf.write_image(data / "photo.png", seed=5)
    mf.write_text(data / "note.txt", "The harbour lamp burns all night.")
    mf.write_video(data / "clip.mp4", times_s=[i / 4 for i in range(12)], audio_tone_hz=330.0)
    (data / "empty.mp4").write_bytes(b"")  # a quarantine row on both sides
    config = tmp_path / "config.yaml"
    config.write_text(yaml.safe_dump({"encoders": FAKE_ENCODERS, "runner": {"batch_media": 2}}))
    reference = run_pipeline(
        [str(data)], config_from_dict({"encoders": FAKE_ENCODERS}), tmp_path / "local", show_progress=False
    )
    session_dir = tempfile.mkdtemp(prefix="ray", dir="/tmp")  # short: Ray's socket paths must fit
    # Ray >= 2.59 authenticates with a token: the cluster and its clients share it.
    env = {
        **os.environ,
        "RAY_TMPDIR": session_dir,
        "RAY_AUTH_MODE": "token",
        "RAY_AUTH_TOKEN": secrets.token_hex(16),
        # the workers import tests.fake_encoders
        "PYTHONPATH": os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH", "")) if p),
    }
    env["MMFS_TEST_TOKEN"] = token = uuid.uuid4().hex  # to stop this cluster only, not every Ray here
    head = [str(Path(sys.executable).with_name("ray")), "start", "--head", f"--port={_free_port()}"]
    head += ["--num-cpus=3", "--include-dashboard=false"]
    try:
        started = subprocess.run(head, env=env, capture_output=True, text=True, timeout=180)
        assert started.returncode == 0, started.stderr[-2000:]
        address = re.search(r"ray start --address='([^']+)'", started.stdout + started.stderr)
        assert address is not None, started.stdout[-2000:]
        cmd = [sys.executable, "-m", "mmfs.cli", "run", str(data), "--store", str(tmp_path / "store")]
        cmd += ["--config", str(config), "--runner", "ray", "--address", address[1], "--json", "--quiet"]
        done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=900)
    finally:
        _stop(token)  # not `ray stop`, which stops every Ray cluster on the machine
        shutil.rmtree(session_dir, ignore_errors=True)
    assert done.returncode == 0, done.stderr[-3000:]
    store = Store(tmp_path / "store")
    _assert_same(Store(tmp_path / "local"), store)
    assert json.loads(done.stdout)["rows"] == reference.rows
    assert [r["runner"] for r in store.read("runs").to_pylist()] == ["ray"]


def _stop(token: str) -> None:
    """Terminate the processes of the cluster this test started (then kill what is left)."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        for pid in processes_with_token(token):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, sig)
        if not wait_until_gone(token, timeout_s=15):
            return


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])
