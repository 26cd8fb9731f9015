"""Exceptions to error responses: one place for the FastAPI handlers and
the search fast path, so every route answers failures the same way."""

from __future__ import annotations

import logging
from typing import List

import lmdb
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from vecdb.errors import VecdbError
from vecdb.server.bodies import respond
from vecdb.wire import error_to_wire

log = logging.getLogger("vecdb.server")
_DROPPED_WHILE_READ = (lmdb.BadDbiError, lmdb.InvalidParameterError)


def error_response(request: Request, exc: Exception) -> Response:
    """A JSON (or MessagePack) error body naming a vecdb.errors class."""
    if isinstance(exc, VecdbError):
        return _error(request, exc.http_status, type(exc).__name__, str(exc))
    if isinstance(exc, HTTPException):
        kind = "NotFoundError" if exc.status_code == 404 else "InvalidArgumentError"
        detail = f"no route {request.method} {request.url.path}" if exc.status_code in (404, 405) else exc.detail
        response = _error(request, exc.status_code, kind, str(detail))
        if exc.status_code == 405:  # RFC 9110: say which methods the resource has
            response.headers["allow"] = ", ".join(_methods_of(request))
        return response
    name = request.path_params.get("name")
    if isinstance(exc, _DROPPED_WHILE_READ) and isinstance(name, str):
        # LMDB's answer to reading a database another thread just dropped.
        return _error(request, 404, "CollectionNotFoundError",
                      f"collection {name!r} was dropped while this request read it")
    log.error("vecdb: %s %s failed", request.method, request.url.path, exc_info=exc)
    return _error(request, 500, "ServerError", f"internal error ({type(exc).__name__}); see the server log")


def _methods_of(request: Request) -> List[str]:
    """Every method some route answers at this path (Starlette's own Allow
    names only the first route matching the path, one method of several)."""
    path = request.scope["path"]
    return sorted({method for route in request.app.state.routes
                   if isinstance(route, Route) and route.methods and route.path_regex.fullmatch(path)
                   for method in route.methods})


def _error(request: Request, status: int, kind: str, message: str) -> Response:
    return respond(request, error_to_wire(kind, message, status), status=status)
