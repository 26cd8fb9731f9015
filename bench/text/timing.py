"""Timing one-query-per-call searches over a list of queries.

Each timed run makes whole passes over the queries, one call per query, until at least
``min_seconds`` have passed: slow and fast systems alike are timed over the whole query
set, each query as often as the others. Each call is also timed on its own, for the latency
percentiles. The best of ``repeats`` runs counts (noise only slows a run down).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np


@dataclass(frozen=True)
class CallTiming:
    """Throughput and per-call latency of the best run."""

    queries_per_second: float
    latency_ms_p50: float
    latency_ms_p99: float
    calls: int


def _run(search: Callable[[Any], Any], queries: Sequence[Any], min_seconds: float) -> tuple[float, list[float]]:
    call_seconds: list[float] = []
    start = time.perf_counter()
    while True:
        for query in queries:
            before = time.perf_counter()
            search(query)
            call_seconds.append(time.perf_counter() - before)
        elapsed = time.perf_counter() - start
        if elapsed >= min_seconds:
            return elapsed, call_seconds


def time_calls(search: Callable[[Any], Any], queries: Sequence[Any], min_seconds: float,
               repeats: int) -> CallTiming:
    """Time ``search`` called once per query (see the module's docstring); the caller has
    warmed it up."""
    if not queries:
        raise ValueError("no queries to time")
    runs = [_run(search, queries, min_seconds) for _ in range(repeats)]
    elapsed, call_seconds = max(runs, key=lambda run: len(run[1]) / run[0])
    p50, p99 = np.percentile(call_seconds, [50, 99]) * 1e3
    return CallTiming(queries_per_second=len(call_seconds) / elapsed, latency_ms_p50=float(p50),
                      latency_ms_p99=float(p99), calls=len(call_seconds))
