"""The server itself: health, readiness, metrics. (The API description and
/docs are served by the app: vecdb.server.app and vecdb.server.openapi.)"""

from __future__ import annotations

from fastapi import APIRouter
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response

from vecdb._version import __version__
from vecdb.server import models
from vecdb.server.openapi import answers
from vecdb.server.state import state_of

router = APIRouter(tags=["service"])


@router.get("/healthz", summary="Liveness: the process answers (no API key needed)", **answers(models.Health))
async def healthz() -> Response:
    return JSONResponse({"status": "ok", "version": __version__})


@router.get("/readyz", summary="Readiness: indexes loaded, not shutting down (no API key needed)",
            response_model=models.Readiness,
            responses={503: {"model": models.Readiness, "description": "starting or shutting down"}})
async def readyz(request: Request) -> Response:
    ready = state_of(request).ready
    return JSONResponse({"status": "ready" if ready else "starting"}, status_code=200 if ready else 503)


@router.get("/metrics", summary="Prometheus metrics: requests and latencies per route, collection sizes",
            response_class=PlainTextResponse,
            responses={200: {"content": {"text/plain": {"schema": {"type": "string"}}},
                             "description": "the Prometheus text format"}})
async def metrics(request: Request) -> Response:
    # Off the event loop: collection sizes are read from LMDB.
    text = await state_of(request).read(generate_latest, request.app.state.metrics.registry)
    return Response(text, media_type=CONTENT_TYPE_LATEST)
