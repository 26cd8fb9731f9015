"""Exceptions to error responses: one place for the FastAPI handlers and
the search fast path, so every route answers failures the same way."""

from __future__ import annotations

import logging

import lmdb
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response

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
        return _error(request, exc.status_code, kind, str(detail))
    name = request.path_params.get("name")
    if isinstance(exc, _DROPPED_WHILE_READ) and isinstance(name, str):
        # LMDB's answer to reading a database another thread just dropped.
        return _error(request, 404, "CollectionNotFoundError",
                      f"collection {name!r} was dropped while this request read it")
    log.error("vecdb: %s %s failed", request.method, request.url.path, exc_info=exc)
    return _error(request, 500, "ServerError", f"internal error ({type(exc).__name__}); see the server log")


def _error(request: Request, status: int, kind: str, message: str) -> Response:
    return respond(request, error_to_wire(kind, message, status), status=status)
