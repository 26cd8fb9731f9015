"""Writes sent on to the writer process (``vecdb serve --workers N``).

A folder has one writer process (LMDB has one writer, and vecdb's indexes
live in the process that writes them); the other worker processes open it
read-only. A reader answers reads itself and passes every request of a
write route, headers and body as received, to the writer over a private
Unix socket, then streams the writer's answer back unchanged: the writer
checks the key, the limits and the body as it would its own requests, and
acknowledges only what it committed.
"""

from __future__ import annotations

from typing import AsyncIterator, List, Sequence

import httpx
from starlette.routing import BaseRoute, Route

from vecdb.server.guards import ASGIApp, Receive, Scope, Send, send_error

# Headers about one hop's connection, not the request (RFC 9110, 7.6.1).
_HOP_BY_HOP = frozenset({b"connection", b"keep-alive", b"proxy-connection", b"te", b"trailer",
                         b"transfer-encoding", b"upgrade"})
# Set by this process's HTTP server on every answer (uvicorn adds a date).
_OWN = _HOP_BY_HOP | {b"date", b"server"}


class ForwardWrites:
    """ASGI: requests matching one of ``routes`` (method and path) go to the
    writer listening on ``writer_socket``; everything else to ``app``."""

    def __init__(self, app: ASGIApp, routes: Sequence[BaseRoute], writer_socket: str) -> None:
        self.app = app
        self.routes: List[Route] = [route for route in routes if isinstance(route, Route)]
        # One pool of keep-alive connections to the writer; no timeout: a
        # write (an upsert of 100k points, a compaction) takes what it takes,
        # as it would if the client had reached the writer itself.
        self.writer = httpx.AsyncClient(transport=httpx.AsyncHTTPTransport(uds=writer_socket),
                                        base_url="http://vecdb-writer", timeout=None)

    def is_write(self, scope: Scope) -> bool:
        method, path = scope["method"], scope["path"]
        return any(method in (route.methods or ()) and route.path_regex.fullmatch(path) for route in self.routes)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and self.is_write(scope):
            await self._forward(scope, receive, send)
        else:
            await self.app(scope, receive, send)

    async def _forward(self, scope: Scope, receive: Receive, send: Send) -> None:
        # As received: percent-encoding and query string untouched. (httpx
        # keeps a Content-Length given, so a sized body is not sent chunked.)
        target = scope.get("raw_path") or scope["path"].encode()
        if scope["query_string"]:
            target += b"?" + scope["query_string"]
        headers = [(name, value) for name, value in scope["headers"] if name not in _HOP_BY_HOP]
        request = self.writer.build_request(scope["method"], target.decode("latin-1"), headers=headers,
                                            content=_body(receive))
        try:
            response = await self.writer.send(request, stream=True)
        except httpx.TransportError as exc:
            await send_error(send, 503, "WriterUnavailableError",
                             f"this server's writer process is not answering ({type(exc).__name__}): it is starting, "
                             "restarting or shutting down; retry the write")
            return
        try:
            await send({"type": "http.response.start", "status": response.status_code,
                        "headers": [(name.lower(), value) for name, value in response.headers.raw
                                    if name.lower() not in _OWN]})
            async for chunk in response.aiter_raw():
                await send({"type": "http.response.body", "body": chunk, "more_body": True})
            await send({"type": "http.response.body", "body": b""})
        finally:
            await response.aclose()

    async def close(self) -> None:
        await self.writer.aclose()


async def _body(receive: Receive) -> AsyncIterator[bytes]:
    """The request's body as it arrives (a backup upload is streamed, not held)."""
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return
        yield message.get("body", b"")
        if not message.get("more_body", False):
            return
