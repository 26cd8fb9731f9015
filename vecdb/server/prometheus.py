"""Prometheus metrics (``GET /metrics``): requests and latencies per route,
and each collection's size, read when scraped."""

from __future__ import annotations

import time
from typing import Any, Dict, Iterator, MutableMapping

from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from vecdb.api import DatabaseAPI
from vecdb.server.guards import ASGIApp, Receive, Scope, Send

# Search latencies on this kind of machine run from ~100 us to ~50 ms.
_BUCKETS = (0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 10)


class _CollectionSizes(Collector):
    def __init__(self, database: DatabaseAPI) -> None:
        self.database = database

    def collect(self) -> Iterator[GaugeMetricFamily]:
        points = GaugeMetricFamily("vecdb_collection_points", "Points stored in each collection", labels=["collection"])
        try:
            collections = self.database.describe()
        except Exception:  # a closing database: report no sizes rather than fail the scrape
            collections = []
        for collection in collections:
            points.add_metric([collection["name"]], collection["count"])
        yield points


class Metrics:
    """One registry per server (tests run several in one process)."""

    def __init__(self, database: DatabaseAPI) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter("vecdb_http_requests", "HTTP requests by route, method and status",
                                ["route", "method", "status"], registry=self.registry)
        self.latency = Histogram("vecdb_http_request_duration_seconds", "Time to answer, by route and method",
                                 ["route", "method"], buckets=_BUCKETS, registry=self.registry)
        self.registry.register(_CollectionSizes(database))

    def middleware(self, app: ASGIApp) -> ASGIApp:
        """Wraps ``app`` so every HTTP request is counted and timed under its
        route template (``/v1/collections/{name}/search``, never the raw
        path: one series per route, not per collection name)."""

        async def measured(scope: Scope, receive: Receive, send: Send) -> None:
            if scope["type"] != "http":
                await app(scope, receive, send)
                return
            start = time.perf_counter()
            status: Dict[str, Any] = {"code": 500}

            async def recording_send(message: MutableMapping[str, Any]) -> None:
                if message["type"] == "http.response.start":
                    status["code"] = message["status"]
                await send(message)

            try:
                await app(scope, receive, recording_send)
            finally:
                route = scope.get("route")
                template = getattr(route, "path", "unmatched")
                self.requests.labels(template, scope["method"], str(status["code"])).inc()
                self.latency.labels(template, scope["method"]).observe(time.perf_counter() - start)

        return measured


