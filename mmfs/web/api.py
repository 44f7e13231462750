"""The JSON API (`/api/...`) and the binary endpoints the pages use: thumbnails, plots, audio clips.

Every parameter is typed by FastAPI (numbers are numbers, a media id must be 64 hex digits) and
reaches the store only through typed filters; clients never name a file.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Depends, File, Form, HTTPException, Query, Request, UploadFile
from fastapi import Path as PathParam
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import Response

from mmfs.errors import ConfigError
from mmfs.store.db import Store
from mmfs.web import audio_clip, charts, finder, summary, timeline

router = APIRouter(prefix="/api")
MAX_UPLOAD_BYTES = 20 * 1024 * 1024
MEDIA_PATH = PathParam(pattern="^[0-9a-f]{64}$", description="sha256 of the item's bytes")


def open_store(request: Request) -> Store:
    """A fresh handle per request: every read sees the newest committed versions."""
    return Store(request.app.state.store_uri)


def _media_or_404(store: Store, media_id: str) -> dict[str, Any]:
    """The item's media row, or a 404."""
    row = timeline.media_row(store, media_id)
    if row is None:
        raise HTTPException(404, "no such media item")
    return row


def filters_from(
    kind: str | None, source: str | None, min_duration: float | None, max_duration: float | None
) -> finder.Filters:
    """Form fields to typed filters (empty strings mean "any")."""
    return finder.Filters(
        kind=kind or None, source=source or None, min_duration_s=min_duration, max_duration_s=max_duration
    )


@router.get("/search")
def search_text(
    request: Request,
    text: Annotated[str, Query(max_length=2000)],
    mode: Annotated[str, Query(pattern="^(vector|text|hybrid)$")] = "vector",
    k: Annotated[int, Query(ge=1, le=100)] = 10,
    kind: Annotated[str | None, Query(max_length=32)] = None,
    source: Annotated[str | None, Query(max_length=4096)] = None,
    min_duration: Annotated[float | None, Query(ge=0, allow_inf_nan=False)] = None,
    max_duration: Annotated[float | None, Query(ge=0, allow_inf_nan=False)] = None,
    weights: Annotated[str | None, Query(max_length=200)] = None,
) -> dict[str, Any]:
    """The top-k segments for a text (vector, full-text or hybrid); `weights` as `mmfs search --weights`."""
    filters = filters_from(kind, source, min_duration, max_duration)
    store = open_store(request)
    return {"hits": finder.search(store, text=text, mode=mode, k=k, filters=filters, weights=weights)}


@dataclass(frozen=True)
class ImageSearchForm:
    """The fields of an image search (the API's and the search page's form): the upload, k, filters."""

    image: UploadFile
    k: int
    kind: str | None
    source: str | None
    min_duration: float | None
    max_duration: float | None

    def filters(self) -> finder.Filters:
        """The form's filter fields as typed filters."""
        return filters_from(self.kind, self.source, self.min_duration, self.max_duration)


def image_search_form(
    image: Annotated[UploadFile, File()],
    k: Annotated[int, Form(ge=1, le=100)] = 10,
    kind: Annotated[str | None, Form(max_length=32)] = None,
    source: Annotated[str | None, Form(max_length=4096)] = None,
    min_duration: Annotated[float | None, Form(ge=0, allow_inf_nan=False)] = None,
    max_duration: Annotated[float | None, Form(ge=0, allow_inf_nan=False)] = None,
) -> ImageSearchForm:
    """A FastAPI dependency: the multipart form, each field typed and bounded."""
    return ImageSearchForm(image, k, kind, source, min_duration, max_duration)


@router.post("/search/image")
async def search_image(
    request: Request, form: Annotated[ImageSearchForm, Depends(image_search_form)]
) -> dict[str, Any]:
    """The top-k segments whose frames look like an uploaded image."""
    data = await form.image.read(MAX_UPLOAD_BYTES + 1)
    hits = await run_in_threadpool(
        search_uploaded, open_store(request), data, k=form.k, filters=form.filters()
    )
    return {"hits": hits}  # the encoder ran in a worker thread: the server keeps answering meanwhile


def search_uploaded(store: Store, data: bytes, *, k: int, filters: finder.Filters) -> list[dict[str, Any]]:
    """Search by image bytes: written to a private temporary file that is removed afterwards."""
    if not data:
        raise HTTPException(400, "the uploaded image is empty")
    if len(data) > MAX_UPLOAD_BYTES:
        raise HTTPException(413, f"images up to {MAX_UPLOAD_BYTES // (1024 * 1024)} MiB")
    with tempfile.TemporaryDirectory(prefix="mmfs-query-") as folder:
        path = Path(folder) / "query-image"
        path.write_bytes(data)
        return finder.search(store, image=path, k=k, filters=filters)


@router.get("/media")
def media_list(request: Request) -> dict[str, Any]:
    """Every item: id, name, kind, status, duration."""
    store = open_store(request)
    if not store.has("media"):
        return {"media": []}
    rows = store.read("media", ["media_id", "uri", "kind", "status", "duration_s"]).to_pylist()
    items = [{**r, "name": Path(r["uri"]).name, "url": f"/media/{r['media_id']}"} for r in rows]
    return {"media": sorted(items, key=lambda r: r["name"])}


@router.get("/media/{media_id}")
def media_item(request: Request, media_id: Annotated[str, MEDIA_PATH]) -> dict[str, Any]:
    """The item's probe data (its `media` row) and its timeline."""
    store = open_store(request)
    return {"media": _media_or_404(store, media_id), "timeline": timeline.timeline(store, media_id)}


@router.get("/media/{media_id}/thumbnail/{frame_index}")
def thumbnail(
    request: Request, media_id: Annotated[str, MEDIA_PATH], frame_index: Annotated[int, PathParam(ge=0)]
) -> Response:
    """One frame's JPEG thumbnail."""
    data = timeline.thumbnail(open_store(request), media_id, frame_index)
    if data is None:
        raise HTTPException(404, "no such frame")
    return Response(data, media_type="image/jpeg", headers={"Cache-Control": "max-age=3600"})


@router.get("/media/{media_id}/mel.png")
def mel_png(request: Request, media_id: Annotated[str, MEDIA_PATH]) -> Response:
    """The item's log-mel spectrogram over its timeline, as a PNG."""
    store = open_store(request)
    _media_or_404(store, media_id)
    png = charts.mel_image(store, media_id)
    if png is None:
        raise HTTPException(404, "this item has no audio windows")
    return Response(png, media_type="image/png")


@router.get("/media/{media_id}/plot/{name}.svg")
def plot_svg(
    request: Request,
    media_id: Annotated[str, MEDIA_PATH],
    name: Annotated[str, PathParam(pattern="^(motion|loudness|text)$")],
) -> Response:
    """Motion magnitude, loudness or the timed text over time, as SVG (empty for no timed text)."""
    store = open_store(request)
    row = _media_or_404(store, media_id)
    svg = charts.media_plots(row, timeline.timeline(store, media_id))[name]
    return Response(svg, media_type="image/svg+xml")


@router.get("/media/{media_id}/audio.wav")
def audio_wav(
    request: Request,
    media_id: Annotated[str, MEDIA_PATH],
    start: Annotated[float, Query(ge=0, allow_inf_nan=False)],
    end: Annotated[float, Query(gt=0, allow_inf_nan=False)],
) -> Response:
    """A WAV clip of [start, end) seconds, cut from the item's own recorded source file."""
    row = _media_or_404(open_store(request), media_id)
    if not row.get("has_audio") or row.get("status") == "failed":
        raise HTTPException(404, "this item has no playable audio")
    path = audio_clip.source_file(row)
    if path is None:
        raise HTTPException(404, "the source file is not available here")
    span = audio_clip.check_span(start, end, row.get("duration_s"))
    samples = audio_clip.decode_span(path, *span)
    return Response(audio_clip.wav_bytes(samples), media_type="audio/wav")


@router.get("/runs")
def runs(request: Request) -> dict[str, Any]:
    """Every run, newest first."""
    return {"runs": summary.runs(open_store(request))}


@router.get("/runs/{run_id}")
def run_detail(
    request: Request, run_id: Annotated[str, PathParam(pattern=r"^[A-Za-z0-9_.:-]{1,80}$")]
) -> dict[str, Any]:
    """One run's report: outcomes, error codes, rows, stage times and rates, config."""
    try:
        return summary.run_detail(request.app.state.store_uri, run_id)
    except ConfigError as err:
        raise HTTPException(404, err.message) from None


@router.get("/quarantine")
def quarantine(request: Request) -> dict[str, Any]:
    """Quarantine rows and their groups by error code."""
    return summary.quarantine(open_store(request))


@router.get("/composition")
def composition(request: Request) -> dict[str, Any]:
    """Counts and durations by kind, source, language and status."""
    return summary.composition(open_store(request))
