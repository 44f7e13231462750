"""Sources and the store on S3: a real S3 server (moto) on loopback, the `mmfs` command end to end.

One pipeline run reads the media from a bucket and writes the store to another bucket; the tests then
read it back with `status`, `search`, `sql`, the PyTorch reader and the maintenance commands.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests import media_factory as mf

pytestmark = pytest.mark.slow
MMFS = [sys.executable, "-m", "mmfs.cli"]
SECRET = "mmfs-test-secret-7f3a"  # any key works with moto; it must never show up in a log or the store
KEY_ID = "mmfs-test-key"
SOURCE_BUCKET, STORE_BUCKET = "mmfs-src", "mmfs-store"
STORE = f"s3://{STORE_BUCKET}/stores/main"


@dataclass(frozen=True)
class S3Run:
    """The server, the local copies of the uploaded media, and the outcome of the pipeline run."""

    endpoint: str
    local: dict[str, Path]  # object key -> the same bytes on local disk
    env: dict[str, str]  # AWS_* pointing at the server
    summary: dict[str, Any]
    stderr: str
    cwd: Path


def _mmfs(*args: str, env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*MMFS, *args], capture_output=True, text=True, env=env, timeout=600, cwd=cwd)


def _media(folder: Path) -> dict[str, Path]:
    """Small media of every kind: a video, an image, audio with a caption sidecar, a note, an empty file."""
    files = {
        "data/clip.mp4": mf.write_video(folder / "clip.mp4", times_s=mf.constant_rate_times(24, 8.0)),
        "data/square.png": mf.write_image(folder / "square.png", width=128, height=96),
        "data/sub/tone.wav": mf.write_wav(folder / "sub" / "tone.wav", duration_s=2.5),
        "data/sub/note.txt": mf.write_text(folder / "note.txt", "Lighthouses guide ships at night."),
    }
    srt = folder / "sub" / "tone.srt"
    srt.write_text("1\n00:00:00,000 --> 00:00:02,000\nA steady tone rings out.\n")
    files["data/sub/tone.srt"] = srt
    (folder / "empty.mp4").write_bytes(b"")
    files["data/empty.mp4"] = folder / "empty.mp4"
    return files


@pytest.fixture(scope="module")
def s3_run(tmp_path_factory: pytest.TempPathFactory) -> Iterator[S3Run]:
    """A moto S3 server with the media uploaded, and one `mmfs run s3://… --store s3://…`."""
    import boto3
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    try:
        host, port = server.get_host_and_port()
        endpoint = f"http://{host}:{port}"
        client = boto3.client(
            "s3",
            endpoint_url=endpoint,
            aws_access_key_id=KEY_ID,
            aws_secret_access_key=SECRET,
            region_name="us-east-1",
        )
        root = tmp_path_factory.mktemp("s3")
        local = _media(root / "media")
        for bucket in (SOURCE_BUCKET, STORE_BUCKET):
            client.create_bucket(Bucket=bucket)
        for key, path in local.items():
            client.upload_file(str(path), SOURCE_BUCKET, key)
        base = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
        base |= {"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
        env = base | {
            "AWS_ENDPOINT_URL": endpoint,
            "AWS_ACCESS_KEY_ID": KEY_ID,
            "AWS_SECRET_ACCESS_KEY": SECRET,
            "AWS_REGION": "us-east-1",
        }
        # the run gets its options from the config file only (no AWS_* in its environment)
        options = {
            "aws_endpoint": endpoint,
            "aws_access_key_id": KEY_ID,
            "aws_secret_access_key": SECRET,
            "aws_region": "us-east-1",
            "allow_http": "true",
        }
        config = root / "s3.yaml"
        config.write_text(
            json.dumps({"store": {"storage_options": options}, "sources": {"storage_options": options}})
        )
        cwd = root / "cwd"
        cwd.mkdir()
        result = _mmfs(
            "run", f"s3://{SOURCE_BUCKET}/data/", "--store", STORE, "--config", str(config), "--json", "-q",
            env=base, cwd=cwd,
        )  # fmt: skip
        assert result.returncode == 0, result.stderr
        yield S3Run(endpoint, local, env, json.loads(result.stdout), result.stderr, cwd)
    finally:
        server.stop()


def test_run_reads_sources_from_s3_and_writes_the_store_there(s3_run: S3Run) -> None:
    summary = s3_run.summary
    assert summary["n_inputs"] == 5  # the sidecar is attached to tone.wav, not an item
    assert summary["n_ok"] == 4 and summary["n_quarantined"] == 1  # empty.mp4
    assert summary["rows"]["frames"] >= 3 + 1 and summary["rows"]["audio"] > 0
    assert not any(s3_run.cwd.iterdir())  # nothing written locally: no `s3:` folder, no log file


def test_same_bytes_same_media_id_and_s3_uris(s3_run: S3Run) -> None:
    result = _mmfs(
        "sql", "SELECT media_id, uris, status FROM media ORDER BY media_id", "--store", STORE, "--json",
        env=s3_run.env, cwd=s3_run.cwd,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    rows = json.loads(result.stdout)["rows"]
    by_uri = {uri: row["media_id"] for row in rows for uri in row["uris"]}
    for key, path in s3_run.local.items():
        if key.endswith((".srt", "empty.mp4")):
            continue
        assert by_uri[f"s3://{SOURCE_BUCKET}/{key}"] == hashlib.sha256(path.read_bytes()).hexdigest()


def test_sidecar_on_s3_becomes_caption_text(s3_run: S3Run) -> None:
    result = _mmfs(
        "sql", "SELECT text FROM text WHERE source = 'caption'", "--store", STORE, "--json",
        env=s3_run.env, cwd=s3_run.cwd,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert [r["text"] for r in json.loads(result.stdout)["rows"]] == ["A steady tone rings out."]


def test_status_and_search_on_the_s3_store(s3_run: S3Run) -> None:
    status = _mmfs("status", "--store", STORE, "--json", env=s3_run.env, cwd=s3_run.cwd)
    assert status.returncode == 0, status.stderr
    tables = json.loads(status.stdout)["tables"]
    assert tables["segments"]["rows"] == s3_run.summary["rows"]["segments"]
    search = _mmfs(
        "search", "--text", "ships and lighthouses", "-k", "2", "--store", STORE, "--json",
        env=s3_run.env, cwd=s3_run.cwd,
    )  # fmt: skip
    assert search.returncode == 0, search.stderr
    hits = json.loads(search.stdout)["hits"]
    assert hits[0]["uri"] == f"s3://{SOURCE_BUCKET}/data/sub/note.txt"


def test_secrets_stay_out_of_logs_and_the_store(s3_run: S3Run) -> None:
    assert SECRET not in s3_run.stderr
    result = _mmfs(
        "sql", "SELECT config FROM runs", "--store", STORE, "--json", env=s3_run.env, cwd=s3_run.cwd
    )
    assert result.returncode == 0, result.stderr
    configs = [r["config"] for r in json.loads(result.stdout)["rows"]]
    assert configs and not any(SECRET in c or "storage_options" in c for c in configs)


def test_reader_streams_the_s3_store(s3_run: S3Run, monkeypatch: pytest.MonkeyPatch) -> None:
    import polars as pl

    from mmfs.store.readers import FeatureDataset, to_polars

    for key in ("AWS_ENDPOINT_URL", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_REGION"):
        monkeypatch.setenv(key, s3_run.env[key])
    ds = FeatureDataset(STORE, "segments", ["media_id", "start_s", "fused"], batch_size=4, shuffle=True)
    batches = list(ds)
    n = sum(len(b["media_id"]) for b in batches)
    assert n == s3_run.summary["rows"]["segments"]
    assert {tuple(b["fused"].shape[1:]) for b in batches} == {(batches[0]["fused"].shape[1],)}
    lazy = to_polars(STORE, "segments").filter(pl.col("start_s").is_not_null()).select(pl.len())
    assert 0 < lazy.collect().item() <= n


def test_rerun_from_s3_writes_nothing(s3_run: S3Run) -> None:
    before = _mmfs("versions", "--store", STORE, "--json", env=s3_run.env, cwd=s3_run.cwd)
    again = _mmfs(
        "run", f"s3://{SOURCE_BUCKET}/data/", "--store", STORE, "--json", "-q", env=s3_run.env, cwd=s3_run.cwd
    )
    assert again.returncode == 0, again.stderr
    doc = json.loads(again.stdout)
    assert doc["n_skipped"] == 4 and doc["rows"] == {}
    status = json.loads(_mmfs("status", "--store", STORE, "--json", env=s3_run.env, cwd=s3_run.cwd).stdout)
    assert status["tables"]["segments"]["rows"] == s3_run.summary["rows"]["segments"]
    assert before.returncode == 0


def test_maintenance_respects_writer_leases_on_s3(s3_run: S3Run) -> None:
    import boto3

    client = boto3.client(
        "s3", endpoint_url=s3_run.endpoint, aws_access_key_id=KEY_ID, aws_secret_access_key=SECRET,
        region_name="us-east-1",
    )  # fmt: skip
    listed = client.list_objects_v2(Bucket=STORE_BUCKET, Prefix="stores/main/.mmfs-writers/")
    assert not [o for o in listed.get("Contents", []) if o["Key"].endswith(".json")]  # the run let go
    lease = "stores/main/.mmfs-writers/other-host-4242-abcd.json"
    client.put_object(Bucket=STORE_BUCKET, Key=lease, Body=b"{}")  # a run elsewhere, renewed just now
    blocked = _mmfs("maintain", "--store", STORE, env=s3_run.env, cwd=s3_run.cwd)
    assert blocked.returncode == 1
    assert "other-host pid 4242" in blocked.stderr and len(blocked.stderr.strip().splitlines()) == 1
    client.delete_object(Bucket=STORE_BUCKET, Key=lease)
    done = _mmfs("maintain", "--store", STORE, "--json", env=s3_run.env, cwd=s3_run.cwd)
    assert done.returncode == 0, done.stderr


def test_erase_with_purge_leaves_no_object_holding_the_item(s3_run: S3Run) -> None:
    import boto3

    client = boto3.client(
        "s3", endpoint_url=s3_run.endpoint, aws_access_key_id=KEY_ID, aws_secret_access_key=SECRET,
        region_name="us-east-1",
    )  # fmt: skip
    needle = b"Lighthouses guide ships"

    def holding() -> list[str]:
        keys = []
        for page in client.get_paginator("list_objects_v2").paginate(
            Bucket=STORE_BUCKET, Prefix="stores/main/"
        ):
            for obj in page.get("Contents", []):
                if needle in client.get_object(Bucket=STORE_BUCKET, Key=obj["Key"])["Body"].read():
                    keys.append(obj["Key"])
        return keys

    assert holding()  # the check can see the data
    note = hashlib.sha256(s3_run.local["data/sub/note.txt"].read_bytes()).hexdigest()
    result = _mmfs(
        "erase", note, "--purge-history", "--store", STORE, "--json", env=s3_run.env, cwd=s3_run.cwd
    )
    assert result.returncode == 0, result.stderr
    assert holding() == []
    left = _mmfs(
        "sql", "SELECT count(*) AS n FROM media", "--store", STORE, "--json", env=s3_run.env, cwd=s3_run.cwd
    )
    assert json.loads(left.stdout)["rows"] == [{"n": 3}]


def test_missing_store_and_empty_prefix_are_usage_errors(s3_run: S3Run) -> None:
    """A store URI with no tables is "no store", and a source prefix with no objects makes no store."""
    missing = _mmfs("status", "--store", f"s3://{STORE_BUCKET}/nostore", env=s3_run.env, cwd=s3_run.cwd)
    assert missing.returncode == 2
    assert missing.stderr.strip().splitlines()[-1] == f"mmfs: error: no store at s3://{STORE_BUCKET}/nostore"
    other = f"s3://{STORE_BUCKET}/stores/never-made"
    run = _mmfs(
        "run", f"s3://{SOURCE_BUCKET}/nothere/", "--store", other, "-q", env=s3_run.env, cwd=s3_run.cwd
    )
    assert run.returncode == 2, run.stderr
    assert "nothing to read" in run.stderr and "no objects there" in run.stderr
    after = _mmfs("status", "--store", other, env=s3_run.env, cwd=s3_run.cwd)
    assert after.returncode == 2 and "no store at" in after.stderr
