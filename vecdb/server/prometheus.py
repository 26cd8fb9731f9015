"""Prometheus metrics (``GET /metrics``): requests and latencies per route,
and each collection's size, read when scraped."""

from __future__ import annotations

import time
from typing import Any, Dict, Iterator, MutableMapping, Tuple

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
        # labels() validates and locks on every call (~3 us, twice a request):
        # each series' child is looked up once. Keys grow as the metrics' own
        # series do (routes x methods x statuses).
        self._counts: Dict[Tuple[str, str, int], Any] = {}
        self._latencies: Dict[Tuple[str, str], Any] = {}

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
                self._record(getattr(scope.get("route"), "path", "unmatched"), scope["method"], status["code"],
                             time.perf_counter() - start)

        return measured

    def _record(self, template: str, method: str, status: int, seconds: float) -> None:
        count = self._counts.get((template, method, status))
        if count is None:
            count = self._counts[template, method, status] = self.requests.labels(template, method, str(status))
        latency = self._latencies.get((template, method))
        if latency is None:
            latency = self._latencies[template, method] = self.latency.labels(template, method)
        count.inc()
        latency.observe(seconds)


