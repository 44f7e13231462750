"""`mmfs watch` as a user runs it: files dropped into a watched folder land once; SIGTERM exits cleanly."""

from __future__ import annotations

import os
import secrets
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest

from mmfs.ops.watch import changed_files, chunked
from mmfs.store.db import Store
from tests.processes import wait_until_gone

ENV = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
CONFIG = "index: {auto: false}\nmaintenance: {auto: false}\nwatch: {step_ms: 100}\n"


def _media(store: Path) -> list[dict[str, object]]:
    """The store's media rows, read fresh each time (an empty list before the first commit)."""
    st = Store(store)
    return st.read("media", ["media_id", "uri"]).to_pylist() if st.has("media") else []


def _wait_for(
    store: Path, n: int, proc: subprocess.Popen[str], timeout_s: float = 240
) -> list[dict[str, object]]:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
        rows = _media(store)
        if len(rows) >= n:
            return rows
        time.sleep(0.5)
    raise AssertionError(f"only {len(_media(store))} of {n} items landed in {timeout_s} s")


@pytest.mark.slow
def test_dropped_files_land_exactly_once_and_sigterm_stops_cleanly(tmp_path: Path) -> None:
    inbox, store, config = tmp_path / "inbox", tmp_path / "store", tmp_path / "watch.yaml"
    inbox.mkdir()
    config.write_text(CONFIG)
    (inbox / "first.txt").write_text("A lighthouse guides ships at night.")
    token = f"MMFS_WATCH_TEST={secrets.token_hex(4)}"
    env = {**ENV, token.split("=")[0]: token.split("=")[1]}
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "mmfs.cli",
            "watch",
            str(inbox),
            "--store",
            str(store),
            "--config",
            str(config),
        ],
        env=env,
        stderr=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        _wait_for(store, 1, proc)  # the catch-up run over what was there before
        (inbox / "second.txt").write_text("Cockatoos perch on the old fence.")
        nested = inbox / "later"
        nested.mkdir()
        (nested / "third.txt").write_text("Rain fell on the harbour all afternoon.")
        rows = _wait_for(store, 3, proc)
        time.sleep(2.0)  # a change set seen twice would add a run (and rows) now
        (inbox / "first-copy.txt").write_bytes((inbox / "first.txt").read_bytes())  # known bytes, new path
        time.sleep(3.0)
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, err
    assert "watch stopped after" in err
    rows = _media(store)
    assert sorted(Path(str(r["uri"])).name for r in rows) == ["first.txt", "second.txt", "third.txt"]
    st = Store(store)
    segments = st.read("segments", ["media_id", "segment_index"]).to_pylist()
    keys = Counter((s["media_id"], s["segment_index"]) for s in segments)
    assert keys and max(keys.values()) == 1 and {k[0] for k in keys} == {r["media_id"] for r in rows}
    runs = st.read("runs", ["run_id", "n_ok"]).to_pylist()
    assert sum(int(r["n_ok"]) for r in runs) == 3  # each item processed by exactly one run
    assert wait_until_gone(token.split("=")[1]) == []


def test_change_sets_skip_deletions_folders_and_the_store(tmp_path: Path) -> None:
    (tmp_path / "store").mkdir()
    (tmp_path / "store" / "mmfs.log").write_text("x")
    (tmp_path / "a.txt").write_text("a")
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "b.txt").write_text("b")
    (tmp_path / "old").mkdir()
    changes = {
        (1, str(tmp_path / "a.txt")),
        (2, str(tmp_path / "a.txt")),
        (3, str(tmp_path / "gone.txt")),
        (1, str(tmp_path / "sub")),
        (1, str(tmp_path / "sub" / "b.txt")),
        (2, str(tmp_path / "store" / "mmfs.log")),
    }
    found = changed_files(changes, str(tmp_path / "store"))
    assert found == [str(tmp_path / "a.txt"), str(tmp_path / "sub")]  # a new folder whole, its files once
    assert list(chunked(["a", "b", "c"], 2)) == [["a", "b"], ["c"]]
