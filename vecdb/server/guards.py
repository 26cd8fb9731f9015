"""ASGI middleware that runs before any route: the API key check and the
body size cap. Both act on headers (and the byte count) only, so a request
is refused before a byte of its body is parsed, and an unknown path gets
401 like any other when a key is set (no unauthenticated side doors)."""

from __future__ import annotations

import hmac
from typing import Any, Awaitable, Callable, MutableMapping, Optional

import orjson

from vecdb.errors import RequestTooLargeError
from vecdb.wire import error_to_wire

Scope = MutableMapping[str, Any]  # as ASGI frameworks (Starlette, FastAPI) declare them
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

# Probes for orchestrators (Kubernetes, load balancers) carry no keys; nor
# can a browser opening /docs, which is the same for every vecdb server of
# a version (the key is entered under "Authorize" there).
PROBES = frozenset({"/healthz", "/readyz"})
DOCS = "/docs"
DOCS_ASSETS = "/docs/assets"
OPENAPI = "/openapi.json"
OPEN_PATHS = PROBES | {DOCS, OPENAPI}


def is_open(path: str) -> bool:
    """Whether ``path`` is served without a key: the probes, the API
    description, /docs and its files (Swagger UI's assets, OAuth redirect)."""
    return path in OPEN_PATHS or path.startswith(DOCS + "/")


READ = "read"
WRITE = "write"


async def send_error(send: Send, status: int, kind: str, message: str,
                     headers: Optional[list] = None) -> None:
    body = orjson.dumps(error_to_wire(kind, message, status))
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
                + (headers or [])})
    await send({"type": "http.response.body", "body": body})


class ApiKeyMiddleware:
    """Sets ``scope["state"]["access"]`` to ``"write"`` or ``"read"``; with
    keys configured, refuses requests without a valid one (401). Keys are
    read from ``Authorization: Bearer <key>`` or ``X-API-Key`` and compared
    in constant time."""

    def __init__(self, app: ASGIApp, api_key: Optional[str], read_only_key: Optional[str]) -> None:
        self.app = app
        self.api_key = None if api_key is None else api_key.encode()
        self.read_only_key = None if read_only_key is None else read_only_key.encode()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "websocket":  # no route speaks it: refuse, key or not
            await send({"type": "websocket.close", "code": 1008})
            return
        if scope["type"] != "http":  # lifespan
            await self.app(scope, receive, send)
            return
        access = self._access(scope)
        if access is None:
            await send_error(send, 401, "AuthenticationError",
                             "this server needs an API key: send 'Authorization: Bearer <key>' or 'X-API-Key: <key>'",
                             [(b"www-authenticate", b"Bearer")])
            return
        scope.setdefault("state", {})["access"] = access
        await self.app(scope, receive, send)

    def _access(self, scope: Scope) -> Optional[str]:
        if self.api_key is None or is_open(scope["path"]):
            return WRITE
        presented = _presented_key(scope["headers"])
        if presented is None:
            return None
        # Both comparisons always run, so timing tells nothing about which key.
        is_writer = hmac.compare_digest(presented, self.api_key)
        is_reader = self.read_only_key is not None and hmac.compare_digest(presented, self.read_only_key)
        return WRITE if is_writer else READ if is_reader else None


def _presented_key(headers: list) -> Optional[bytes]:
    for name, value in headers:
        if name == b"x-api-key":
            return value
        if name == b"authorization" and value[:7].lower() == b"bearer ":
            return value[7:].strip()
    return None


class BodySizeMiddleware:
    """413 for bodies over ``max_bytes``: at once when ``Content-Length``
    says so, else as soon as the streamed bytes pass it (chunked uploads).
    ``PUT`` under ``streamed_prefix`` (backup uploads, written to disk as
    they arrive) is left to its route, which has a limit of its own."""

    def __init__(self, app: ASGIApp, max_bytes: int, streamed_prefix: str) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.streamed_prefix = streamed_prefix

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or (scope["method"] == "PUT" and scope["path"].startswith(self.streamed_prefix)):
            await self.app(scope, receive, send)
            return
        bounded = False
        for name, value in scope["headers"]:
            if name == b"content-length":
                try:
                    declared = int(value)
                except ValueError:
                    await send_error(send, 400, "InvalidArgumentError", "Content-Length is not a number")
                    return
                if declared > self.max_bytes:
                    await self._refuse(send, declared)
                    return
                bounded = True
            elif name == b"transfer-encoding":  # wins over Content-Length in h11: the body is unbounded
                bounded = False
                break
        if bounded:  # the server reads exactly Content-Length bytes of body: nothing to count
            await self.app(scope, receive, send)
            return
        received = 0
        started = False

        async def counting_receive() -> MutableMapping[str, Any]:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:  # the app's error handler turns this into 413
                    raise RequestTooLargeError(self._message(received))
            return message

        async def tracking_send(message: MutableMapping[str, Any]) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, counting_receive, tracking_send)
        except RequestTooLargeError:
            if not started:
                await self._refuse(send, received)

    def _message(self, size: int) -> str:
        return (f"request body of {size:,}+ bytes exceeds the server's limit of {self.max_bytes:,} bytes "
                "(vecdb serve --max-body-bytes)")

    async def _refuse(self, send: Send, size: int) -> None:
        await send_error(send, 413, "RequestTooLargeError", self._message(size), [(b"connection", b"close")])
