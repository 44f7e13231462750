"""The FastAPI application: API and pages over one store, static files from the package, uvicorn to serve.

It only reads the store. It binds to loopback by default: there is no authentication, so exposing it
on another interface (`--host`) shows the whole store to whoever can reach the port.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse, Response
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException

from mmfs.errors import ConfigError, MmfsError
from mmfs.pipelines.online import close_shared
from mmfs.web import api, features, pages

log = logging.getLogger(__name__)
LOOPBACK = "127.0.0.1"


@contextlib.asynccontextmanager
async def _lifespan(app: FastAPI) -> AsyncIterator[None]:
    """On shutdown, stop the online-feature pipelines the server started (decode workers, threads)."""
    yield
    close_shared()


def create_app(
    store_uri: str | Path,
    metrics: Any = None,
    *,
    allowed_roots: Sequence[str | Path] = (),
    max_upload_bytes: int = features.MAX_UPLOAD_BYTES,
) -> FastAPI:
    """The app for one store (read-only); every request opens the newest versions of its tables.

    `allowed_roots`: the folders whose files `POST /api/features` may read by path (none: uploads only).
    """
    app = FastAPI(
        title="mmfs",
        docs_url="/api/docs",
        redoc_url=None,
        openapi_url="/api/openapi.json",
        lifespan=_lifespan,
    )
    app.state.store_uri = str(store_uri)
    app.state.allowed_roots = [Path(root).resolve() for root in allowed_roots]
    app.state.max_upload_bytes = max_upload_bytes
    app.include_router(api.router)
    app.include_router(features.router)
    app.include_router(pages.router)
    app.mount("/static", StaticFiles(directory=pages.static_dir()), name="static")
    _mount_metrics(app, metrics)

    # Starlette types every handler as taking a bare Exception; each of ours takes its own class
    app.add_exception_handler(ConfigError, _bad_request)  # type: ignore[arg-type]
    app.add_exception_handler(MmfsError, _failed)  # type: ignore[arg-type]
    app.add_exception_handler(HTTPException, _http_error)  # type: ignore[arg-type]
    app.add_exception_handler(RequestValidationError, _invalid)  # type: ignore[arg-type]
    app.middleware("http")(_security_headers)
    return app


async def _bad_request(request: Request, err: ConfigError) -> Response:
    """Bad input (a filter, a span, a query): 400 with the reason."""
    return _error(request, 400, err.message)


async def _failed(request: Request, err: MmfsError) -> Response:
    """A store or decode failure: 500 with its first line; details in the debug log."""
    log.debug("request failed", exc_info=err)
    return _error(request, 500, str(err).splitlines()[0] if str(err) else type(err).__name__)


async def _http_error(request: Request, err: HTTPException) -> Response:
    """404s and the like, in the same one-line shape."""
    return _error(request, err.status_code, str(err.detail))


async def _invalid(request: Request, err: RequestValidationError) -> Response:
    """A parameter of the wrong type or range: 422 naming the first one."""
    return _error(request, 422, _first_problem(err))


async def _security_headers(
    request: Request, call_next: Callable[[Request], Awaitable[Response]]
) -> Response:
    """Every asset comes from this app: forbid anything else, sniffing, and framing by other sites."""
    response = await call_next(request)
    response.headers["Content-Security-Policy"] = (
        "default-src 'self'; img-src 'self' data:; media-src 'self'; style-src 'self'; "
        "script-src 'self'; frame-ancestors 'none'"
    )
    response.headers["X-Content-Type-Options"] = "nosniff"
    return response


def _first_problem(err: RequestValidationError) -> str:
    """The first invalid parameter as one line, e.g. `k: Input should be less than or equal to 100`."""
    problems = err.errors()
    if not problems:
        return "invalid request"
    first = problems[0]
    where = ".".join(str(part) for part in first.get("loc", ())[1:]) or "request"
    return f"{where}: {first.get('msg', 'invalid')}"


def _error(request: Request, status: int, message: str) -> Response:
    """A one-line error: JSON under /api, a small page elsewhere."""
    if request.url.path.startswith("/api"):
        return JSONResponse({"error": message}, status_code=status)
    response: HTMLResponse = pages.render("error.html", status, page="", message=message)
    return response


def _mount_metrics(app: FastAPI, registry: Any) -> None:
    """Prometheus at /metrics: the given registry (`mmfs serve`: the store's), else the process's."""
    from prometheus_client import REGISTRY, make_asgi_app

    app.mount("/metrics", make_asgi_app(registry=registry if registry is not None else REGISTRY))


def serve(
    store_uri: str,
    *,
    host: str = LOOPBACK,
    port: int = 8765,
    metrics: Any = None,
    allowed_roots: Sequence[str | Path] = (),
) -> None:
    """Run the app with uvicorn until interrupted; `metrics` is the registry /metrics exposes."""
    import uvicorn

    app = create_app(store_uri, metrics, allowed_roots=allowed_roots)
    uvicorn.run(app, host=host, port=port, log_level="warning")
