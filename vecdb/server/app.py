"""The server application: FastAPI routes behind the key check, the body
cap and the metrics, over one open :class:`vecdb.Database`.

Layers, outermost first: metrics (every request, refused ones too) ->
API key -> body size cap -> the search fast path (searches) or FastAPI
(everything else: routing, error bodies) -> routes -> the collection
methods, on the read pool or the writer thread.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
from typing import Any, AsyncIterator, MutableMapping, Optional

from fastapi import APIRouter, FastAPI
from fastapi_offline import FastAPIOffline
from starlette.exceptions import HTTPException
from starlette.routing import Route

from vecdb._version import __version__
from vecdb.database import Database
from vecdb.errors import VecdbError
from vecdb.server.failures import error_response
from vecdb.server.fast_path import SearchFastPath
from vecdb.server.forward import ForwardWrites
from vecdb.server import openapi
from vecdb.server.guards import (DOCS, DOCS_ASSETS, OPENAPI, ApiKeyMiddleware, ASGIApp, BodySizeMiddleware, Receive,
                                 Scope, Send)
from vecdb.server.prometheus import Metrics
from vecdb.server.routes import backups, collections, points, search, service
from vecdb.server.settings import ServerSettings
from vecdb.server.state import Follower, ServedDatabase, ServerState
from vecdb.transfer.collection_backup import remove_leftover_staging

log = logging.getLogger("vecdb.server")

_DESCRIPTION = """A vecdb database over HTTP: the same collections, searches and errors as
`vecdb.open(path)` in process (`vecdb.connect(url)` is the Python client).

Bodies are JSON, or MessagePack with `Content-Type: application/msgpack`
(and `Accept: application/msgpack` for the response), where vectors may be
little-endian float32 bytes. A collection created with `vectors` holds
several named vectors per point: upserts send `{name: vectors}`, searches
pick one with `using`. With an API key set, send
`Authorization: Bearer <key>` (or `X-API-Key`; "Authorize" above). Errors
come back as `{"error": {"type": <vecdb.errors class>, "message": ...,
"status": ...}}`.

The examples work in order: create the collection `docs` (3 dimensions),
upsert its points, then search, get, count, scroll...
"""


def create_app(database: ServedDatabase, settings: ServerSettings = ServerSettings(), *,
               writer_socket: Optional[str] = None) -> ASGIApp:
    """The ASGI application serving ``database``, embedded or a cluster's
    (run it with uvicorn, or ``vecdb serve``). It closes the database when
    the server shuts down.

    With ``writer_socket``, the app of a reader process of ``vecdb serve
    --workers N``: ``database`` is open read-only (an embedded
    :class:`vecdb.Database`), every read catches up with the writer's
    commits first, and writes go to the writer process listening on that
    Unix socket (:mod:`vecdb.server.forward`)."""
    reader = writer_socket is not None
    follower = None
    if reader:
        if not isinstance(database, Database):
            raise TypeError("a reader process serves an embedded database opened read-only")
        follower = Follower(catch_up=database.refresh, behind=database._is_behind)
    state = ServerState(database, settings, follower)
    forward: Optional[ForwardWrites] = None

    @contextlib.asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        loop = asyncio.get_running_loop()
        if not reader:  # a backup's staging in use by the writer is not a reader's to remove
            await loop.run_in_executor(state.writer, remove_leftover_staging, state.database.path / backups.FOLDER)
        warm_up = loop.run_in_executor(state.writer, state.warm_up)  # health answers meanwhile
        yield
        with contextlib.suppress(Exception):
            await warm_up
        if forward is not None:
            await forward.close()
        await loop.run_in_executor(None, state.shut_down)
        log.info("vecdb: database closed")

    # fastapi-offline serves Swagger UI's files from the package (/docs works
    # offline), under DOCS_ASSETS.
    app = FastAPIOffline(title="vecdb", version=__version__, description=_DESCRIPTION, lifespan=lifespan,
                         docs_url=DOCS, redoc_url=None, openapi_url=OPENAPI, static_url=DOCS_ASSETS,
                         favicon_url=f"{DOCS_ASSETS}/favicon.png", redirect_slashes=False,
                         swagger_ui_parameters={"persistAuthorization": True})
    app.state.vecdb = state
    app.state.metrics = metrics = Metrics(database)
    # Routes are matched in order and FastAPI's matching is not free (~10 us
    # a route here): the searches come first.
    routers = [router for module in (search, points, collections, backups)
               for router in (module.reads, getattr(module, "writes", None)) if router is not None]
    for router in routers + [service.router]:
        app.include_router(router)
    # Every route, for the description and the Allow header (newer FastAPI
    # keeps included routers whole in app.routes).
    app.state.routes = [route for router in routers + [service.router] for route in router.routes] + [
        route for route in app.routes if isinstance(route, Route)]

    description = functools.lru_cache(maxsize=None)(lambda: openapi.describe(app, settings))
    app.openapi = description  # type: ignore[method-assign]

    # Exception covers the rest (a bug: logged, answered 500); Starlette
    # runs its handler outermost.
    for kind in (VecdbError, HTTPException, Exception):
        app.add_exception_handler(kind, error_response)

    hot: ASGIApp = SearchFastPath(app, search.reads, search.FAST_ROUTES)
    if writer_socket is not None:
        writes = [route for module in (search, points, collections, backups)
                  for route in getattr(module, "writes", APIRouter()).routes]
        hot = forward = ForwardWrites(hot, writes, writer_socket)
    sized = BodySizeMiddleware(_answered_errors_end_here(hot), settings.max_body_bytes, backups.UPLOAD_PREFIX)
    return metrics.middleware(state.counted(ApiKeyMiddleware(sized, settings.api_key, settings.read_only_key)))


def _answered_errors_end_here(app: ASGIApp) -> ASGIApp:
    """Starlette re-raises an exception after its handler has answered
    (for the server's log); uvicorn would then drop the keep-alive
    connection, failing the client's next request too. It is logged and
    answered already: stop it here."""

    async def contained(scope: Scope, receive: Receive, send: Send) -> None:
        started = False

        async def tracking_send(message: MutableMapping[str, Any]) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await app(scope, receive, tracking_send)
        except Exception:
            if not started or scope["type"] != "http":
                raise

    return contained
