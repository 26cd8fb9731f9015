"""The search routes straight from ASGI, without FastAPI's and Starlette's
per-request machinery.

A search costs ~0.1 ms in process; FastAPI's routing, dependency solving,
the Request and Response objects and the middleware stack cost about as
much again per request here. Searches are what a server mostly answers, so
their routes are matched by their own regular expressions, the body is read
from ``receive`` and the answer written to ``send`` directly, by the same
functions the FastAPI endpoints (which declare and document the routes)
call. Errors go through the same :func:`failures.error_response` as every
other route.
"""

from __future__ import annotations

from typing import Any, Callable, Dict, List, Tuple

from fastapi import APIRouter, FastAPI
from fastapi.routing import APIRoute
from starlette.requests import ClientDisconnect, Request

from vecdb.server.bodies import encode_answer
from vecdb.server.failures import error_response
from vecdb.server.guards import ASGIApp, Receive, Scope, Send
from vecdb.server.routes.search import Answer
from vecdb.server.state import ServerState
from vecdb.wire import JSON, MSGPACK

_MSGPACK = MSGPACK.encode()


class SearchFastPath:
    """ASGI: POSTs to the routes of ``answers``' endpoints (declared on
    ``router``, included in ``app``) are answered by the matching
    :data:`Answer`; everything else goes to ``app``."""

    def __init__(self, app: FastAPI, router: APIRouter, answers: Dict[Callable[..., Any], Answer]) -> None:
        self.app: ASGIApp = app
        self.state: ServerState = app.state.vecdb
        self.routes: List[Tuple[APIRoute, Answer]] = [
            (route, answers[route.endpoint]) for route in router.routes
            if isinstance(route, APIRoute) and route.endpoint in answers]
        assert len(self.routes) == len(answers), "every fast endpoint must be a route of the router"

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] == "POST":
            for route, answer in self.routes:
                match = route.path_regex.fullmatch(scope["path"])  # match() would take a path ending in "\n"
                if match:
                    # What Starlette's router would have put in the scope: error
                    # responses read the app and path parameters, metrics the route.
                    scope.update(app=self.app, route=route, path_params=match.groupdict())
                    await self._answer(answer, scope, receive, send)
                    return
        await self.app(scope, receive, send)

    async def _answer(self, answer: Answer, scope: Scope, receive: Receive, send: Send) -> None:
        content_type, binary = _media_of(scope["headers"])
        try:
            value = await answer(self.state, scope["path_params"]["name"], await _body(receive), content_type, binary)
            content, media = encode_answer(value, binary)
        except Exception as exc:
            await error_response(Request(scope, receive), exc)(scope, receive, send)
            return
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-length", b"%d" % len(content)), (b"content-type", media.encode())]})
        await send({"type": "http.response.body", "body": content})


def _media_of(headers: List[Tuple[bytes, bytes]]) -> Tuple[str, bool]:
    """The request's Content-Type (JSON when absent) and whether it accepts
    MessagePack, read as Starlette's Request reads them (first header of a
    name wins)."""
    content_type = accept = None
    for name, value in headers:
        if name == b"content-type" and content_type is None:
            content_type = value.decode("latin-1")
        elif name == b"accept" and accept is None:
            accept = value
    return JSON if content_type is None else content_type, accept is not None and _MSGPACK in accept


async def _body(receive: Receive) -> bytes:
    """The whole request body, as Starlette's ``Request.body()`` reads it."""
    chunks = []
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise ClientDisconnect()
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            return b"".join(chunks)
