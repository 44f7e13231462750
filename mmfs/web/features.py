"""`POST /api/features`: one item's features, computed as `mmfs run` computes them, nothing written.

The item is an upload (multipart `file`, with an optional `sidecar` caption file) or a `path` under
the server's allowed roots (`mmfs serve --allow-root DIR`; none by default). The body's size is checked
from its Content-Length before it is read (an upload over the limit is refused unread). The answer is
every table's rows for the item as JSON, or one table (`table`, default `segments`) as an Arrow IPC
stream when the client sends `Accept: application/vnd.apache.arrow.stream`. The computation is
`mmfs.pipelines.online`: the store's recorded config, the run's own stages, models kept loaded.
"""

from __future__ import annotations

import base64
import math
import re
import tempfile
from datetime import date, datetime
from pathlib import Path, PurePosixPath, PureWindowsPath
from typing import Annotated, Any

import pyarrow as pa
from fastapi import APIRouter, HTTPException, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse, Response
from starlette.datastructures import UploadFile

from mmfs.errors import ConfigError, EmptyFile, MediaError, MediaLimitExceeded, SourceRejected
from mmfs.pipelines.online import ItemFeatures, OnlineItem, item_at, shared_online

router = APIRouter(prefix="/api")
ARROW_STREAM = "application/vnd.apache.arrow.stream"
MAX_UPLOAD_BYTES = 256 * 1024 * 1024  # the default of `create_app(max_upload_bytes=...)`
_FORM_OVERHEAD = 64 * 1024  # multipart boundaries, headers and the small fields
_TABLES = ("media", "frames", "flow", "shots", "audio", "text", "segments", "quarantine")
_CHUNK = 1024 * 1024

_REQUEST_BODY = {
    "required": True,
    "content": {
        "multipart/form-data": {
            "schema": {
                "type": "object",
                "properties": {
                    "file": {"type": "string", "format": "binary", "description": "the item's bytes"},
                    "sidecar": {
                        "type": "string",
                        "format": "binary",
                        "description": "its captions or transcript (.srt, .vtt, .txt), as a run pairs them",
                    },
                    "path": {
                        "type": "string",
                        "description": "instead of file: a path under the allowed roots",
                    },
                },
            }
        },
        "application/json": {
            "schema": {"type": "object", "properties": {"path": {"type": "string"}}, "required": ["path"]}
        },
    },
}
_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "the item's rows per table (JSON), or one table as an Arrow IPC stream",
        "content": {ARROW_STREAM: {"schema": {"type": "string", "format": "binary"}}},
    },
    403: {"description": "a path outside the allowed roots"},
    404: {"description": "no such file under the allowed roots"},
    409: {"description": "the store has no completed run, so no config to compute with"},
    411: {"description": "no Content-Length"},
    413: {"description": "over the size limit"},
    422: {"description": "the item failed (its quarantine rows say why)"},
}


@router.post("/features", openapi_extra={"requestBody": _REQUEST_BODY}, responses=_RESPONSES)
async def features(
    request: Request,
    table: Annotated[str, Query(pattern="^(" + "|".join(_TABLES) + ")$")] = "segments",
) -> Response:
    """One item's aligned segments and rows, computed with the store's recorded config (nothing written)."""
    limit = int(request.app.state.max_upload_bytes)
    _check_length(request, limit)
    kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
    with tempfile.TemporaryDirectory(prefix="mmfs-online-") as folder:
        if kind == "multipart/form-data":
            item = await _from_form(request, Path(folder), limit)
        elif kind == "application/json":
            item = _from_path(request, await _json_path(request))
        else:
            raise HTTPException(415, 'send multipart/form-data (file, sidecar, path) or JSON {"path": ...}')
        arrow = ARROW_STREAM in request.headers.get("accept", "")
        # computed and encoded in a worker thread: the event loop goes on taking other requests
        return await run_in_threadpool(_answer, request.app.state.store_uri, item, table if arrow else None)


def _answer(store_uri: str, item: OnlineItem, arrow_table: str | None) -> Response:
    """The item's features as the response: one table as Arrow, or every table as JSON."""
    result = _compute(store_uri, item)
    if arrow_table is not None:
        return _arrow(result, arrow_table)
    body = features_json(result)
    if result.failed:
        quarantine = result.tables["quarantine"].column("message").to_pylist()
        body["error"] = quarantine[0] if quarantine else "the item failed"
    return JSONResponse(body, status_code=422 if result.failed else 200)


def _check_length(request: Request, limit: int) -> None:
    """Refuse a body over the limit before reading it (a chunked body has no length: refused too)."""
    raw = request.headers.get("content-length")
    if raw is None or not raw.isdigit():
        raise HTTPException(411, "a Content-Length is required")
    if int(raw) > limit + _FORM_OVERHEAD:
        raise HTTPException(413, f"uploads up to {limit // (1024 * 1024)} MiB")


async def _from_form(request: Request, folder: Path, limit: int) -> OnlineItem:
    """The multipart form as an item: the upload saved under a private folder, or the named path."""
    form = await request.form(max_files=2, max_fields=3)
    upload, sidecar, path = form.get("file"), form.get("sidecar"), form.get("path")
    if isinstance(path, str) and path:
        if upload is not None:
            raise HTTPException(400, "send a file or a path, not both")
        return _from_path(request, path)
    if not isinstance(upload, UploadFile):
        raise HTTPException(400, "a `file` upload (or a `path`) is required")
    local = await _save(upload, folder / "item" / safe_name(upload.filename, "upload"), limit)
    captions = None
    if isinstance(sidecar, UploadFile):
        stem = Path(local.name).stem
        suffix = Path(safe_name(sidecar.filename, "captions.srt")).suffix
        captions = await _save(sidecar, folder / "sidecar" / f"{stem}{suffix}", limit)
    return OnlineItem(local, f"upload:{local.name}", captions)


async def _json_path(request: Request) -> Any:
    """The `path` of a JSON body `{"path": ...}`."""
    try:
        body = await request.json()
    except ValueError:
        raise HTTPException(400, "the body is not valid JSON") from None
    if not isinstance(body, dict):
        raise HTTPException(400, 'send a JSON object: {"path": ...}')
    return body.get("path")


def _from_path(request: Request, path: Any) -> OnlineItem:
    if not isinstance(path, str) or not path:
        raise HTTPException(400, "`path` must be a non-empty string")
    try:
        return item_at(path, request.app.state.allowed_roots)
    except SourceRejected as err:
        raise HTTPException(404 if err.code.name == "NOT_FOUND" else 403, err.message) from None


async def _save(upload: UploadFile, target: Path, limit: int) -> Path:
    """Copy an upload to `target`, refusing it past `limit` bytes."""
    target.parent.mkdir(parents=True, exist_ok=True)
    written = 0
    with target.open("wb") as out:
        while chunk := await upload.read(_CHUNK):
            written += len(chunk)
            if written > limit:
                raise HTTPException(413, f"uploads up to {limit // (1024 * 1024)} MiB")
            out.write(chunk)
    return target


def safe_name(name: str | None, default: str) -> str:
    """A client's file name reduced to a safe base name (its suffix kept: it tells captions and HTML)."""
    base = PureWindowsPath(PurePosixPath(name or "").name).name
    base = re.sub(r"[^A-Za-z0-9._ -]", "_", base).strip(" .")[-120:]
    return base or default


def _compute(store_uri: str, item: OnlineItem) -> ItemFeatures:
    """The item through the process's online pipeline of the store (in a worker thread)."""
    try:
        return shared_online(store_uri).features(item)
    except ConfigError as err:  # no run recorded: nothing to compute with
        raise HTTPException(409, err.message) from None
    except EmptyFile as err:
        raise HTTPException(400, err.message) from None
    except MediaLimitExceeded as err:
        raise HTTPException(413, err.message) from None
    except MediaError as err:
        raise HTTPException(400, err.message) from None


def features_json(result: ItemFeatures) -> dict[str, Any]:
    """The JSON body: the item, how it was computed, and its rows per table (every table, maybe empty)."""
    return {
        "media_id": result.media_id,
        "kind": result.kind,
        "status": result.status,
        "run_id": result.run_id,
        "config_hash": result.config_hash,
        "batch_size": result.batch_size,
        "seconds": {k: round(v, 6) for k, v in result.seconds.items()},
        "tables": {name: jsonable(result.tables[name].to_pylist()) for name in _TABLES},
    }


def jsonable(value: Any) -> Any:
    """Arrow values as JSON: bytes as base64, times as ISO 8601, non-finite floats as null."""
    if isinstance(value, dict):
        return {k: jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [jsonable(v) for v in value]
    if isinstance(value, bytes):
        return base64.b64encode(value).decode("ascii")
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def _arrow(result: ItemFeatures, table: str) -> Response:
    """One table as an Arrow IPC stream, in the store's schema (provenance metadata included)."""
    data = result.tables[table]
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, data.schema) as writer:
        writer.write_table(data)
    headers = {
        "X-Mmfs-Media-Id": result.media_id,
        "X-Mmfs-Status": result.status,
        "X-Mmfs-Run-Id": result.run_id,
        "X-Mmfs-Table": table,
    }
    status = 422 if result.failed else 200
    return Response(
        sink.getvalue().to_pybytes(), status_code=status, media_type=ARROW_STREAM, headers=headers
    )
