"""The server itself: health, readiness, metrics, the API description."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.openapi.docs import get_swagger_ui_html
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response

from vecdb import __version__
from vecdb.server.state import state_of

router = APIRouter(tags=["service"])


@router.get("/healthz", summary="Liveness: the process answers (no API key needed)")
async def healthz() -> Response:
    return JSONResponse({"status": "ok", "version": __version__})


@router.get("/readyz", summary="Readiness: indexes loaded, not shutting down (no API key needed)")
async def readyz(request: Request) -> Response:
    ready = state_of(request).ready
    return JSONResponse({"status": "ready" if ready else "starting"}, status_code=200 if ready else 503)


@router.get("/metrics", summary="Prometheus metrics: requests and latencies per route, collection sizes")
async def metrics(request: Request) -> Response:
    # Off the event loop: collection sizes are read from LMDB.
    text = await state_of(request).read(generate_latest, request.app.state.metrics.registry)
    return Response(text, media_type=CONTENT_TYPE_LATEST)


@router.get("/openapi.json", include_in_schema=False)
async def openapi(request: Request) -> Response:
    return JSONResponse(request.app.openapi())


@router.get("/docs", include_in_schema=False)
async def docs() -> HTMLResponse:
    return get_swagger_ui_html(openapi_url="/openapi.json", title="vecdb API")
