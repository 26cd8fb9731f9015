"""The server application: FastAPI routes behind the key check, the body
cap and the metrics, over one open :class:`vecdb.Database`.

Layers, outermost first: metrics (every request, refused ones too) ->
API key -> body size cap -> FastAPI (routing, error bodies) -> routes ->
the collection methods, on the read pool or the writer thread.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any, AsyncIterator, Dict

import lmdb
from fastapi import FastAPI
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response

from vecdb import __version__
from vecdb.database import Database
from vecdb.errors import VecdbError
from vecdb.server.bodies import respond
from vecdb.server.guards import ApiKeyMiddleware, ASGIApp, BodySizeMiddleware, Receive, Scope, Send
from vecdb.server.metrics import Metrics
from vecdb.server.routes import backups, collections, points, search, service
from vecdb.server.settings import ServerSettings
from vecdb.server.state import ServerState
from vecdb.wire import error_to_wire

log = logging.getLogger("vecdb.server")
_DROPPED_WHILE_READ = (lmdb.BadDbiError, lmdb.InvalidParameterError)

_DESCRIPTION = """A vecdb database over HTTP: the same collections, searches and errors as
`vecdb.open(path)` in process (`vecdb.connect(url)` is the Python client).

Bodies are JSON, or MessagePack with `Content-Type: application/msgpack`
(and `Accept: application/msgpack` for the response), where vectors may be
little-endian float32 bytes. With an API key set, send
`Authorization: Bearer <key>` (or `X-API-Key`). Errors come back as
`{"error": {"type": <vecdb.errors class>, "message": ..., "status": ...}}`.
"""


def create_app(database: Database, settings: ServerSettings = ServerSettings()) -> ASGIApp:
    """The ASGI application serving ``database`` (run it with uvicorn, or
    ``vecdb serve``). It closes the database when the server shuts down."""
    state = ServerState(database, settings)

    @contextlib.asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        loop = asyncio.get_running_loop()
        warm_up = loop.run_in_executor(state.writer, state.warm_up)  # health answers meanwhile
        yield
        with contextlib.suppress(Exception):
            await warm_up
        await loop.run_in_executor(None, state.shut_down)
        log.info("vecdb: database closed")

    app = FastAPI(title="vecdb", version=__version__, description=_DESCRIPTION, lifespan=lifespan,
                  docs_url=None, redoc_url=None, openapi_url=None, redirect_slashes=False)
    app.state.vecdb = state
    app.state.metrics = metrics = Metrics(database)
    # Routes are matched in order and FastAPI's matching is not free (~10 us
    # a route here): the searches come first.
    for module in (search, points, collections, backups):
        app.include_router(module.reads)
        if hasattr(module, "writes"):
            app.include_router(module.writes)
    app.include_router(service.router)

    @app.exception_handler(VecdbError)
    async def vecdb_error(request: Request, exc: VecdbError) -> Response:
        return _error(request, exc.http_status, type(exc).__name__, str(exc))

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, exc: HTTPException) -> Response:
        kind = "NotFoundError" if exc.status_code == 404 else "InvalidArgumentError"
        detail = f"no route {request.method} {request.url.path}" if exc.status_code in (404, 405) else exc.detail
        return _error(request, exc.status_code, kind, str(detail))

    @app.exception_handler(Exception)
    async def server_error(request: Request, exc: Exception) -> Response:
        name = request.path_params.get("name")
        if isinstance(exc, _DROPPED_WHILE_READ) and isinstance(name, str):
            # LMDB's answer to reading a database another thread just dropped.
            return _error(request, 404, "CollectionNotFoundError",
                          f"collection {name!r} was dropped while this request read it")
        log.exception("vecdb: %s %s failed", request.method, request.url.path)
        return _error(request, 500, "ServerError", f"internal error ({type(exc).__name__}); see the server log")

    guarded = BodySizeMiddleware(_answered_errors_end_here(app), settings.max_body_bytes, backups.UPLOAD_PREFIX)
    guarded = ApiKeyMiddleware(guarded, settings.api_key, settings.read_only_key)
    return metrics.middleware(guarded)


def _answered_errors_end_here(app: ASGIApp) -> ASGIApp:
    """Starlette re-raises an exception after its handler has answered
    (for the server's log); uvicorn would then drop the keep-alive
    connection, failing the client's next request too. It is logged and
    answered already: stop it here."""

    async def contained(scope: Scope, receive: Receive, send: Send) -> None:
        started = False

        async def tracking_send(message: Dict[str, Any]) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await app(scope, receive, tracking_send)
        except Exception:
            if not started or scope["type"] != "http":
                raise

    return contained


def _error(request: Request, status: int, kind: str, message: str) -> Response:
    return respond(request, error_to_wire(kind, message, status), status=status)
