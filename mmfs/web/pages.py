"""The HTML pages: each renders the same documents the JSON API returns, through Jinja2 templates.

Templates autoescape everything; the only markup passed through unescaped is the SVG that
`mmfs.web.plots` draws (it escapes its own labels).
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Query, Request
from fastapi import Path as PathParam
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse
from jinja2 import Environment, PackageLoader, select_autoescape
from markupsafe import Markup

from mmfs.errors import ConfigError
from mmfs.web import api, charts, finder, summary, timeline

router = APIRouter()
KINDS = ("video", "audio", "image", "text")


def environment() -> Environment:
    """The Jinja2 environment over the package's templates, autoescaping HTML."""
    env = Environment(loader=PackageLoader("mmfs.web", "templates"), autoescape=select_autoescape(["html"]))
    env.filters["svg"] = lambda text: Markup(text)  # only for SVG drawn by mmfs.web.plots
    env.filters["secs"] = lambda v: "–" if v is None else f"{float(v):.2f} s"
    return env


_ENV = environment()


def render(name: str, status: int = 200, **context: Any) -> HTMLResponse:
    """A rendered template as a response."""
    return HTMLResponse(_ENV.get_template(name).render(**context), status_code=status)


def _sources(request: Request) -> list[str]:
    """The source folders present, for the search form's choice list."""
    store = api.open_store(request)
    return sorted(summary.composition(store)["by"].get("source", {}))


def _search_page(request: Request, form: dict[str, Any], run: Any) -> HTMLResponse:
    """The search page with hits from `run()`, or with the one-line reason it could not search."""
    hits, error = None, None
    try:
        hits = run()
    except ConfigError as err:
        error = err.message
    except HTTPException as err:
        error = str(err.detail)
    status = 400 if error else 200
    return render(
        "search.html",
        status,
        page="search",
        form=form,
        hits=hits,
        error=error,
        kinds=KINDS,
        sources=_sources(request),
        modes=finder.MODES,
    )


@router.get("/", response_class=HTMLResponse)
def search_page(
    request: Request,
    text: Annotated[str | None, Query(max_length=2000)] = None,
    mode: Annotated[str, Query(pattern="^(vector|text|hybrid)$")] = "vector",
    k: Annotated[int, Query(ge=1, le=100)] = 10,
    kind: Annotated[str | None, Query(max_length=32)] = None,
    source: Annotated[str | None, Query(max_length=4096)] = None,
    min_duration: Annotated[str | None, Query(max_length=32)] = None,
    max_duration: Annotated[str | None, Query(max_length=32)] = None,
) -> HTMLResponse:
    """The search form; with `text`, the hits under it (empty number fields mean "any")."""
    form = {
        "text": text or "",
        "mode": mode,
        "k": k,
        "kind": kind or "",
        "source": source or "",
        "min_duration": min_duration,
        "max_duration": max_duration,
    }
    if text is None:
        return _search_page(request, form, lambda: None)
    store = api.open_store(request)

    def run() -> list[dict[str, Any]]:
        """Parse the number fields (inside, so a bad one is shown on the page) and search."""
        bounds = _seconds(min_duration, "duration from"), _seconds(max_duration, "duration to")
        filters = api.filters_from(kind, source, *bounds)
        return finder.search(store, text=text, mode=mode, k=k, filters=filters)

    return _search_page(request, form, run)


def _seconds(raw: str | None, name: str) -> float | None:
    """A form field of seconds: empty is None; anything else must be a finite number >= 0."""
    if raw is None or not raw.strip():
        return None
    try:
        value = float(raw)
    except ValueError:
        raise ConfigError(f"{name}: {raw!r} is not a number of seconds") from None
    if not math.isfinite(value) or value < 0:
        raise ConfigError(f"{name}: give a number of seconds, 0 or more")
    return value


@router.post("/", response_class=HTMLResponse)
async def search_image_page(
    request: Request, upload: Annotated[api.ImageSearchForm, Depends(api.image_search_form)]
) -> HTMLResponse:
    """Hits for an uploaded image."""
    data = await upload.image.read(api.MAX_UPLOAD_BYTES + 1)
    form = {
        "text": "",
        "mode": "vector",
        "k": upload.k,
        "kind": upload.kind or "",
        "source": upload.source or "",
        "min_duration": upload.min_duration,
        "max_duration": upload.max_duration,
        "image": upload.image.filename or "image",
    }
    filters, store = upload.filters(), api.open_store(request)
    return await run_in_threadpool(
        _search_page, request, form, lambda: api.search_uploaded(store, data, k=upload.k, filters=filters)
    )


@router.get("/media", response_class=HTMLResponse)
def media_list_page(request: Request) -> HTMLResponse:
    """Every item, with a link to its timeline."""
    return render("media_list.html", page="media", items=api.media_list(request)["media"])


@router.get("/media/{media_id}", response_class=HTMLResponse)
def media_page(request: Request, media_id: Annotated[str, api.MEDIA_PATH]) -> HTMLResponse:
    """One item's timeline: thumbnails, motion, loudness, spectrogram, text, probe data, audio clips."""
    store = api.open_store(request)
    row = timeline.media_row(store, media_id)
    if row is None:
        return render("error.html", 404, page="media", message="No such media item in this store.")
    line = timeline.timeline(store, media_id)
    playable = bool(row.get("has_audio")) and row.get("status") != "failed"
    return render(
        "media.html",
        page="media",
        media=row,
        line=line,
        plots=charts.media_plots(row, line),
        thumbs=[{"t_s": f["t_s"], "src": f["thumbnail_url"], "labels": f["labels"]} for f in line["frames"]],
        mel_src=f"/api/media/{media_id}/mel.png" if line["loudness"] else None,
        playable=playable,
        probe=[(k, v) for k, v in row.items() if k not in ("name",)],
    )


@router.get("/runs", response_class=HTMLResponse)
def runs_page(request: Request) -> HTMLResponse:
    """Every run: counts, duration, status."""
    return render("runs.html", page="runs", runs=summary.runs(api.open_store(request)))


@router.get("/runs/{run_id}", response_class=HTMLResponse)
def run_page(
    request: Request, run_id: Annotated[str, PathParam(pattern=r"^[A-Za-z0-9_.:-]{1,80}$")]
) -> HTMLResponse:
    """One run: outcomes, rates per stage, rows, error codes, slowest items, config."""
    try:
        doc = summary.run_detail(request.app.state.store_uri, run_id)
    except ConfigError as err:
        return render("error.html", 404, page="runs", message=err.message)
    return render("run.html", page="runs", run=doc, plots=charts.run_plots(doc))


@router.get("/quarantine", response_class=HTMLResponse)
def quarantine_page(request: Request) -> HTMLResponse:
    """The quarantine table, grouped by error code."""
    doc = summary.quarantine(api.open_store(request))
    return render("quarantine.html", page="quarantine", q=doc, plot=charts.quarantine_plot(doc))


@router.get("/dataset", response_class=HTMLResponse)
def dataset_page(request: Request) -> HTMLResponse:
    """Dataset composition: counts and durations by kind, source, language and status."""
    doc = summary.composition(api.open_store(request))
    return render("dataset.html", page="dataset", comp=doc, plots=charts.composition_plots(doc))


def static_dir() -> Path:
    """The folder of the package's CSS and JavaScript."""
    return Path(__file__).parent / "static"
