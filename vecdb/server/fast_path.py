"""The search routes without FastAPI's per-request machinery.

A search costs ~0.25 ms in process; FastAPI's routing, dependency solving
and middleware stack cost about as much again per request here. Searches
are what a server mostly answers, so their routes are matched by their
own regular expressions and their endpoint functions (the same ones
FastAPI declares, documents and would call) are awaited directly. Errors
go through the same :func:`failures.error_response` as every other route.
"""

from __future__ import annotations

from typing import Any, Callable, List, Tuple

from fastapi import APIRouter, FastAPI
from fastapi.routing import APIRoute
from starlette.requests import Request

from vecdb.server.failures import error_response
from vecdb.server.guards import ASGIApp, Receive, Scope, Send


class SearchFastPath:
    """ASGI: POSTs to the routes of ``endpoints`` (declared on ``router``,
    included in ``app``) go straight to them; everything else to ``app``."""

    def __init__(self, app: FastAPI, router: APIRouter, endpoints: Tuple[Callable[..., Any], ...]) -> None:
        self.app: ASGIApp = app
        self.routes: List[APIRoute] = [route for route in router.routes
                                       if isinstance(route, APIRoute) and route.endpoint in endpoints]
        assert len(self.routes) == len(endpoints), "every fast endpoint must be a route of the router"

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] == "POST":
            for route in self.routes:
                match = route.path_regex.fullmatch(scope["path"])  # match() would take a path ending in "\n"
                if match:
                    await self._answer(route, match.groupdict(), scope, receive, send)
                    return
        await self.app(scope, receive, send)

    async def _answer(self, route: APIRoute, params: dict, scope: Scope, receive: Receive, send: Send) -> None:
        # What Starlette's router would have put in the scope: the endpoints
        # read request.app, metrics read the route.
        scope.update(app=self.app, route=route, path_params=params)
        request = Request(scope, receive)
        try:
            response = await route.endpoint(request=request, **params)
        except Exception as exc:
            response = error_response(request, exc)
        await response(scope, receive, send)
