"""The `mmfs` command as users call it: exit codes, --json on stdout, one-line errors."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image

from tests import media_factory as mf

pytestmark = pytest.mark.slow
MMFS = [sys.executable, "-m", "mmfs.cli"]
ENV = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}


def _mmfs(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*MMFS, *args], capture_output=True, text=True, env=ENV, timeout=600, cwd=cwd)


@pytest.fixture(scope="module")
def small_store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("cli")
    data = root / "data"
    mf.write_image(data / "square.png", width=128, height=96)
    mf.write_wav(data / "tone.wav", duration_s=2.5)
    (data / "tone.srt").write_text("1\n00:00:00,000 --> 00:00:02,000\nA steady tone rings out.\n")
    (data / "note.txt").write_text("A short note about lighthouses. They guide ships at night.")
    (data / "empty.mp4").write_bytes(b"")
    store = root / "store"
    result = _mmfs("run", str(data), "--store", str(store), "--json", "--quiet")
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout)
    assert summary["n_ok"] == 3 and summary["n_quarantined"] == 1
    assert summary["rows"]["segments"] == 1 + 3 + 1
    return store


def test_status_json(small_store: Path) -> None:
    result = _mmfs("status", "--store", str(small_store), "--json")
    assert result.returncode == 0, result.stderr
    doc = json.loads(result.stdout)
    assert doc["tables"]["segments"]["rows"] == 5
    assert doc["quarantine"] == {"read: EmptyFile (1001)": 1}


def test_search_text_json(small_store: Path) -> None:
    result = _mmfs(
        "search",
        "--text",
        "ships and lighthouses",
        "-k",
        "2",
        "--store",
        str(small_store),
        "--json",
    )
    assert result.returncode == 0, result.stderr
    hits = json.loads(result.stdout)["hits"]
    assert Path(hits[0]["uri"]).name == "note.txt"
    assert set(hits[0]) >= {"media_id", "uri", "start_s", "end_s", "score", "modality"}
    filtered = _mmfs(
        "search", "--text", "tone", "--where", "kind=audio", "--store", str(small_store), "--json"
    )
    assert {h["kind"] for h in json.loads(filtered.stdout)["hits"]} == {"audio"}


def test_sql(small_store: Path) -> None:
    result = _mmfs(
        "sql",
        "SELECT kind, count(*) AS n FROM media GROUP BY kind ORDER BY kind",
        "--store",
        str(small_store),
        "--json",
    )
    assert result.returncode == 0, result.stderr
    rows = json.loads(result.stdout)["rows"]
    # the empty file has its `failed` media row too (kind unknown: it was never read)
    assert {r["kind"]: r["n"] for r in rows} == {"audio": 1, "image": 1, "text": 1, "unknown": 1}


def test_usage_errors_exit_2_with_one_line(small_store: Path, tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("video:\n  fpss: 3\n")
    result = _mmfs("run", str(tmp_path), "--store", str(tmp_path / "s"), "--config", str(bad))
    assert result.returncode == 2
    assert (
        result.stderr.strip()
        .splitlines()[-1]
        .startswith("mmfs: error: invalid config: unknown key 'video.fpss'")
    )
    assert _mmfs("sql", "SELEC nonsense", "--store", str(small_store)).returncode == 2
    assert _mmfs("search", "--store", str(small_store)).returncode == 2
    assert _mmfs("status", "--store", str(tmp_path / "nowhere")).returncode == 2


def test_beam_options_pass_through_and_a_bad_one_is_a_usage_error(tmp_path: Path) -> None:
    pytest.importorskip("apache_beam", reason="Beam is an optional extra: pip install 'mmfs[beam]'")
    data = tmp_path / "data"
    (data).mkdir()
    (data / "note.txt").write_text("A note.")
    store = tmp_path / "store"
    result = _mmfs(
        "run", str(data), "--store", str(store), "--runner", "beam", "--beam-option=--runner=NoSuchRunner"
    )
    assert result.returncode == 2
    assert result.stderr.strip().splitlines()[-1].startswith("mmfs: error: beam pipeline options rejected")


def test_unusable_store_exits_1_with_one_line(tmp_path: Path) -> None:
    blocker = tmp_path / "a_file"
    blocker.write_text("not a folder")
    mf.write_image(tmp_path / "data" / "x.png")
    result = _mmfs("run", str(tmp_path / "data"), "--store", str(blocker), "--quiet")
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("mmfs: error: [STORE_IO] cannot open store")


def test_report_accounts_for_the_run(small_store: Path) -> None:
    runs = json.loads(_mmfs("versions", "--store", str(small_store), "--json").stdout)["runs"]
    result = _mmfs("report", runs[0]["run_id"], "--store", str(small_store), "--json")
    assert result.returncode == 0, result.stderr
    doc = json.loads(result.stdout)
    assert doc["inputs"] == 4 and doc["outcomes"]["ok"] == 3
    assert doc["error_codes"] == {"1001 EmptyFile": 1}
    assert len(doc["slowest"]) == 3 and doc["slowest"][0]["seconds"] >= doc["slowest"][-1]["seconds"]
    assert doc["failures"][0]["attempts"] == 1
    assert any("mmfs.log" in hint for hint in doc["where_to_look"])
    assert _mmfs("report", "no-such-run", "--store", str(small_store)).returncode == 2


def test_search_by_image_and_by_sound(small_store: Path, tmp_path: Path) -> None:
    data = small_store.parent / "data"
    thumbs = tmp_path / "thumbs"
    by_image = _mmfs(
        "search", "--image", str(data / "square.png"), "-k", "1", "--store", str(small_store), "--json",
        "--thumbnails", str(thumbs),
    )  # fmt: skip
    assert by_image.returncode == 0, by_image.stderr
    (hit,) = json.loads(by_image.stdout)["hits"]
    assert Path(hit["uri"]).name == "square.png" and hit["modality"] == "visual" and hit["score"] > 0.99
    with Image.open(hit["thumbnail"]) as thumb:  # the stored JPEG, written where --thumbnails said
        assert thumb.format == "JPEG" and thumb.size == (128, 96)  # under the 160 px cap: not upscaled
        assert Path(hit["thumbnail"]).parent == thumbs
    by_sound = _mmfs(
        "search", "--audio", str(data / "tone.wav"), "-k", "2", "--store", str(small_store), "--json",
        "--thumbnails", str(thumbs),
    )  # fmt: skip
    assert by_sound.returncode == 0, by_sound.stderr
    hits = json.loads(by_sound.stdout)["hits"]
    assert {Path(h["uri"]).name for h in hits} == {"tone.wav"} and hits[0]["modality"] == "audio"
    assert [h["thumbnail"] for h in hits] == [None, None]  # a sound has no frame to show
    as_text = _mmfs("search", "--image", str(data / "square.png"), "-k", "1", "--store", str(small_store),
                    "--thumbnails", str(thumbs))  # fmt: skip
    assert as_text.returncode == 0 and f"[{thumbs / '01-square-0.jpg'}]" in as_text.stdout
