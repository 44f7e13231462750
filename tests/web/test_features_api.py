"""`POST /api/features` returns, for a sample file, exactly what `mmfs run` stored for the same bytes.

The store is the sample data run once with the default config (real decoders, real models); each test
sends one of its files (an upload, or a path under the allowed root) and compares every table and
column the run wrote for that item with the returned rows: floats within 1e-5, everything else equal,
except the columns that say which run wrote a row and when (listed in RUN_SPECIFIC).
"""

from __future__ import annotations

import base64
import io
import math
import os
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest
from fastapi.testclient import TestClient

from mmfs.store.db import Store
from mmfs.store.filters import in_list
from mmfs.web.app import create_app
from tests.web.conftest import SampleStore

TABLES = ("media", "frames", "flow", "shots", "audio", "text", "segments", "quarantine")
ROW_KEYS = {
    "media": ("media_id",),
    "frames": ("frame_index",),
    "flow": ("frame_index",),
    "shots": ("shot_index",),
    "audio": ("window_index",),
    "text": ("segment_index",),
    "segments": ("segment_index",),
    "quarantine": ("stage",),
}
# Columns that are about the run that wrote a row, not the item's features: left out of the comparison.
RUN_SPECIFIC = {
    "*": ("run_id",),  # online rows belong to no run ("online")
    # where the bytes were found (an upload has no path), when and how long, and the store's own
    # bookkeeping written at commit time (the ledger of row versions, the hash cache's file stats)
    "media": ("uri", "uris", "ingested_at", "process_s", "row_versions", "uri_stats"),
    "quarantine": ("uri", "first_seen", "last_seen", "attempts"),  # when, and how often, runs saw it
}
ATOL = 1e-5


@pytest.fixture(scope="module")
def client(sample_store: SampleStore) -> TestClient:
    return TestClient(create_app(sample_store.store, allowed_roots=[sample_store.data]))


def stored_rows(store: Path, media_id: str) -> dict[str, pa.Table]:
    """What the run wrote for the item, per table (tables without its rows left out)."""
    st = Store(store)
    tables = {name: st.read(name, where=in_list("media_id", [media_id])) for name in TABLES if st.has(name)}
    return {name: t for name, t in tables.items() if t.num_rows}


def decoded(rows: list[dict[str, Any]], schema: pa.Schema) -> list[dict[str, Any]]:
    """JSON rows with their binary columns back to bytes (the API sends them as base64)."""
    binary = {f.name for f in schema if pa.types.is_binary(f.type) or pa.types.is_large_binary(f.type)}
    return [
        {k: base64.b64decode(v) if k in binary and v is not None else v for k, v in r.items()} for r in rows
    ]


def same(a: Any, b: Any, where: str) -> None:
    """Deep equality with floats within ATOL; a non-finite stored float is sent as null."""
    if isinstance(a, float) and b is None:
        assert not math.isfinite(a), f"{where}: stored {a}, returned null"
    elif isinstance(a, float) or isinstance(b, float):
        assert a is not None and b is not None, f"{where}: {a!r} != {b!r}"
        assert abs(float(a) - float(b)) <= ATOL or (math.isnan(a) and math.isnan(b)), f"{where}: {a} != {b}"
    elif isinstance(a, list | tuple):
        assert isinstance(b, list | tuple) and len(a) == len(b), (
            f"{where}: lengths {len(a)} != {len(b or [])}"
        )
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            same(x, y, f"{where}[{i}]")
    elif isinstance(a, dict):
        assert isinstance(b, dict) and set(a) == set(b), f"{where}: keys {set(a)} != {set(b or {})}"
        for k in a:
            same(a[k], b[k], f"{where}.{k}")
    else:
        assert a == b, f"{where}: {a!r} != {b!r}"


def assert_same_features(
    stored: dict[str, pa.Table], returned: dict[str, list[dict[str, Any]]], *, from_json: bool = True
) -> int:
    """Every stored table and column equals the returned one; returns the number of values compared."""
    assert {n for n, rows in returned.items() if rows} == set(stored), "tables with rows differ"
    compared = 0
    for name, table in stored.items():
        keys = ROW_KEYS[name]
        want = sorted(table.to_pylist(), key=lambda r: tuple(r[k] for k in keys))
        rows = decoded(returned[name], table.schema) if from_json else returned[name]
        got = sorted(rows, key=lambda r: tuple(r[k] for k in keys))
        assert len(got) == len(want), f"{name}: {len(got)} rows returned, {len(want)} stored"
        skip = {*RUN_SPECIFIC["*"], *RUN_SPECIFIC.get(name, ())}
        columns = [c for c in table.schema.names if c not in skip]
        for i, (w, g) in enumerate(zip(want, got, strict=True)):
            assert set(columns) <= set(g), f"{name}: columns missing {set(columns) - set(g)}"
            for column in columns:
                same(w[column], g[column], f"{name}[{i}].{column}")
                compared += 1
    return compared


def upload(client: TestClient, path: Path, sidecar: Path | None = None) -> Any:
    files = {"file": (path.name, path.read_bytes(), "application/octet-stream")}
    if sidecar is not None:
        files["sidecar"] = (sidecar.name, sidecar.read_bytes(), "text/plain")
    return client.post("/api/features", files=files)


@pytest.mark.parametrize(
    ("name", "sidecar", "kind"),
    [
        ("cockatoo.mp4", "cockatoo.srt", "video"),
        ("coffee.jpg", None, "image"),
        ("scandal_in_bohemia.txt", None, "text"),
        ("dashwood_speech.wav", "dashwood_speech.txt", "audio"),
    ],
)
def test_an_upload_gets_the_features_the_run_stored(
    client: TestClient, sample_store: SampleStore, name: str, sidecar: str | None, kind: str
) -> None:
    data = sample_store.data
    response = upload(client, data / name, data / sidecar if sidecar else None)
    assert response.status_code == 200, response.text
    body = response.json()
    media_id = sample_store.ids[name]
    assert (body["media_id"], body["kind"], body["status"]) == (media_id, kind, "ok")
    assert body["run_id"] == sample_store.run_id  # computed with that run's recorded config
    stored = stored_rows(sample_store.store, media_id)
    assert {"media", "segments"} <= set(stored)
    assert assert_same_features(stored, body["tables"]) > 10


def test_a_path_under_the_allowed_root_gets_the_same_features_and_its_captions(
    client: TestClient, sample_store: SampleStore
) -> None:
    path = sample_store.data / "dashwood_speech.wav"
    response = client.post("/api/features", json={"path": str(path)})
    assert response.status_code == 200, response.text
    body = response.json()
    stored = stored_rows(sample_store.store, sample_store.ids[path.name])
    assert_same_features(stored, body["tables"])
    assert body["tables"]["media"][0]["uri"] == stored["media"].column("uri")[0].as_py()


def test_arrow_stream_is_the_stored_table(client: TestClient, sample_store: SampleStore) -> None:
    path = sample_store.data / "coffee.jpg"
    response = client.post(
        "/api/features",
        json={"path": str(path)},
        headers={"Accept": "application/vnd.apache.arrow.stream"},
        params={"table": "frames"},
    )
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/vnd.apache.arrow.stream"
    got = pa.ipc.open_stream(io.BytesIO(response.content)).read_all()
    stored = stored_rows(sample_store.store, sample_store.ids[path.name])["frames"]
    stored_schema = Store(sample_store.store).table("frames").schema
    assert [(f.name, f.type) for f in got.schema] == [(f.name, f.type) for f in stored_schema]
    assert_same_features({"frames": stored}, {"frames": got.to_pylist()}, from_json=False)


def test_a_broken_file_is_refused_with_the_run_s_quarantine_row(
    client: TestClient, sample_store: SampleStore
) -> None:
    # by path: the decoder's message names the file, so an upload's would name its temporary copy
    response = client.post("/api/features", json={"path": str(sample_store.data / "broken_clip.mp4")})
    assert response.status_code == 422
    body = response.json()
    assert body["status"] == "failed" and "broken_clip.mp4" in body["error"]
    stored = stored_rows(sample_store.store, sample_store.ids["broken_clip.mp4"])
    assert_same_features(stored, body["tables"])


def test_nothing_is_written(client: TestClient, sample_store: SampleStore) -> None:
    before = Store(sample_store.store).versions()
    assert upload(client, sample_store.data / "chelsea_cat.jpg").status_code == 200
    assert Store(sample_store.store).versions() == before


def test_paths_outside_the_allowed_roots_are_refused(
    client: TestClient, sample_store: SampleStore, tmp_path: Path
) -> None:
    outside = tmp_path / "secret.txt"
    outside.write_text("not yours")
    link = sample_store.data / "link_out.txt"
    os.symlink(outside, link)
    try:
        cases = {
            str(outside): 403,
            str(link): 403,  # resolved before the check: a link out of the root is outside
            str(sample_store.data / ".." / "store" / "media.lance"): 403,
            "dashwood_speech.wav": 403,  # relative: refused, not resolved against the server's cwd
            str(sample_store.data / "no_such_file.wav"): 404,
            "/etc/passwd\x00.wav": 403,
        }
        for raw, status in cases.items():
            response = client.post("/api/features", json={"path": raw})
            assert response.status_code == status, (raw, response.text)
            assert "not yours" not in response.text
    finally:
        link.unlink()
    no_roots = TestClient(create_app(sample_store.store))
    response = no_roots.post("/api/features", json={"path": str(sample_store.data / "coffee.jpg")})
    assert response.status_code == 403 and "--allow-root" in response.json()["error"]


def test_size_limits_and_bad_requests(sample_store: SampleStore) -> None:
    small = TestClient(create_app(sample_store.store, max_upload_bytes=100 * 1024))
    big = (sample_store.data / "cockatoo.mp4").read_bytes()  # 712 KiB
    assert small.post("/api/features", files={"file": ("c.mp4", big)}).status_code == 413

    def chunks() -> Any:
        yield b"--x\r\n"

    chunked = small.post(
        "/api/features", content=chunks(), headers={"Content-Type": "multipart/form-data; boundary=x"}
    )
    assert chunked.status_code == 411
    assert small.post("/api/features", files={"file": ("empty.txt", b"")}).status_code == 400
    assert (
        small.post("/api/features", content=b"abc", headers={"Content-Type": "text/plain"}).status_code == 415
    )
    assert small.post("/api/features", data={"k": "v"}).status_code == 415  # a urlencoded form
    assert small.post("/api/features", files={"other": ("x", b"1")}).status_code == 400  # no `file`
    for body in (b"[1, 2]", b"{not json", b'{"path": 7}'):
        answer = small.post("/api/features", content=body, headers={"Content-Type": "application/json"})
        assert answer.status_code == 400, body
    spec = small.get("/api/openapi.json").json()
    assert "multipart/form-data" in spec["paths"]["/api/features"]["post"]["requestBody"]["content"]


def test_the_server_stops_its_feature_pipelines_on_shutdown(sample_store: SampleStore) -> None:
    """The app's shutdown closes the shared online pipelines (their decode workers and threads)."""
    from mmfs.pipelines import online

    with TestClient(create_app(sample_store.store)) as client:
        assert upload(client, sample_store.data / "chelsea_cat.jpg").status_code == 200
        assert online._SHARED, "the request built no shared pipeline"
    assert not online._SHARED
