"""Timing a search function over a query set at a fixed batch size.

Batch 1 issues the queries one at a time as 1-D vectors, the single-query latency path;
larger batches pass consecutive blocks of rows in one call. Each timed run cycles through
the batches until ``min_seconds`` have passed, so a fast configuration is repeated enough
to be stable and a slow one stops after a subset of queries. The best of ``repeats`` runs
is reported, after an untimed warm-up that fills caches and starts thread pools.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

SearchFunction = Callable[[np.ndarray], np.ndarray]


@dataclass(frozen=True)
class SearchTiming:
    """Throughput and latency of the best run, and the ids returned for the queries it covered.

    ``found_ids`` answers ``queries[:len(found_ids)]``, one row per query, as returned by the
    timed calls themselves so recall measures exactly the path that was timed.
    """

    queries_per_second: float
    latency_ms_p50: float
    latency_ms_p99: float
    queries_timed: int
    found_ids: np.ndarray


@dataclass(frozen=True)
class _Run:
    elapsed: float
    queries: int
    call_seconds: list[float]


def split_batches(queries: np.ndarray, batch: int) -> list[np.ndarray]:
    """Rows of ``queries`` as 1-D vectors for batch 1, else as consecutive blocks of ``batch`` rows."""
    if batch == 1:
        return list(queries)
    return [queries[start : start + batch] for start in range(0, len(queries), batch)]


def _run(
    search: SearchFunction,
    batches: list[np.ndarray],
    min_seconds: float,
    results: list[np.ndarray | None],
) -> _Run:
    call_seconds: list[float] = []
    queries = 0
    call = 0
    start = time.perf_counter()
    while True:
        position = call % len(batches)
        before = time.perf_counter()
        ids = search(batches[position])
        after = time.perf_counter()
        call_seconds.append(after - before)
        if results[position] is None:
            results[position] = ids
        queries += 1 if batches[position].ndim == 1 else len(batches[position])
        call += 1
        if after - start >= min_seconds:
            return _Run(elapsed=after - start, queries=queries, call_seconds=call_seconds)


def time_search(
    search: SearchFunction,
    queries: np.ndarray,
    batch: int,
    min_seconds: float = 1.0,
    repeats: int = 3,
    warmup_seconds: float = 0.2,
) -> SearchTiming:
    """Time ``search`` (queries -> ids) over ``queries`` issued ``batch`` at a time."""
    batches = split_batches(queries, batch)
    results: list[np.ndarray | None] = [None] * len(batches)
    _run(search, batches, warmup_seconds, [None] * len(batches))
    best = max(
        (_run(search, batches, min_seconds, results) for _ in range(repeats)),
        key=lambda run: run.queries / run.elapsed,
    )
    # Every run starts at the first batch, so the answered batches are a prefix.
    answered = list(itertools.takewhile(lambda ids: ids is not None, results))
    latencies_ms = np.percentile(best.call_seconds, [50, 99]) * 1e3
    return SearchTiming(
        queries_per_second=best.queries / best.elapsed,
        latency_ms_p50=float(latencies_ms[0]),
        latency_ms_p99=float(latencies_ms[1]),
        queries_timed=best.queries,
        found_ids=np.concatenate([np.atleast_2d(ids) for ids in answered]).astype(np.int64, copy=False),
    )
