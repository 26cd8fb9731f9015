"""Timed searches, one query per call on one thread: exact scans of the allowed vectors,
full graph traversals, and graph searches at every selectivity and ef, with recall.

Times are the calling thread's CPU time, which other processes on a shared machine do not
inflate by preempting it (wall-clock medians are kept beside them).
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Optional

import numpy as np

import vecdb
from bench.datasets import Dataset
from bench.planner.calibration.corpus import METRIC, allowed_count, log, random_masks, scan_counts
from bench.recall import recall_at_k

# Untimed calls before each timed configuration: they load the code paths and the graph's
# upper layers into cache, as in a warm server.
WARMUP_CALLS = 5


@dataclass(frozen=True)
class Timing:
    """Per-call times of one configuration, in microseconds."""

    median_us: float  # thread CPU time: what the fits use
    p90_us: float  # thread CPU time
    wall_us: float  # wall-clock median


@dataclass(frozen=True)
class ScanRow:
    """Exact scan of the allowed vectors (``HNSWIndex.exact_search``), a fresh filter per query."""

    dataset: str
    n_total: int
    dim: int
    n_allowed: int
    timing: Timing
    same_mask: Timing  # one filter repeated for every query: its allowed vectors stay in cache
    recall: Optional[float]  # against vecdb.knn: a check that the scan is exact


@dataclass(frozen=True)
class GraphRow:
    """Graph search with fresh random filters of selectivity ``selectivity`` (``None``: no filter)."""

    dataset: str
    n_total: int
    dim: int
    selectivity: Optional[float]
    n_allowed: int
    ef: int
    timing: Timing
    recall: float


@dataclass(frozen=True)
class TraversalRow:
    """A search whose filter allows nothing: it visits every node reachable on layer 0."""

    graph: str
    n_total: int
    dim: int
    timing: Timing

    @property
    def node_us(self) -> float:
        """CPU microseconds per visited node."""
        return self.timing.median_us / self.n_total


def time_calls(call: Callable[..., Any], items: Sequence[tuple]) -> tuple[Timing, list[Any]]:
    """Time ``call(*item)`` once per item (one query per call) and keep what each call returned.

    The last items warm up untimed first.
    """
    for item in items[-WARMUP_CALLS:]:
        call(*item)
    cpu, wall, results = np.empty(len(items)), np.empty(len(items)), []
    for i, item in enumerate(items):
        wall_start, cpu_start = time.perf_counter_ns(), time.thread_time_ns()
        results.append(call(*item))
        cpu[i], wall[i] = time.thread_time_ns() - cpu_start, time.perf_counter_ns() - wall_start
    return Timing(float(np.median(cpu)) / 1e3, float(np.percentile(cpu, 90)) / 1e3,
                  float(np.median(wall)) / 1e3), results


def recall(found: Sequence[np.ndarray], truth: np.ndarray, dataset: Dataset) -> float:
    """Recall of ``found`` (one id row per query of ``dataset``) against the exact ``truth``
    (``bench.recall``: ties at the k-th distance count)."""
    return recall_at_k(np.array(found), truth, dataset.base, dataset.queries, METRIC)


def measure_scans(graph: vecdb.HNSWIndex, dataset: Dataset, masks: list[np.ndarray], k: int,
                  truth: Optional[np.ndarray]) -> ScanRow:
    """Time ``exact_search`` with a fresh filter per query and with the first one repeated;
    check the answers against ``truth`` when given (its first ``min(k, n_allowed)`` columns:
    a filter allowing fewer than k ids has no more neighbours)."""
    def scan(query: np.ndarray, mask: np.ndarray) -> np.ndarray:
        return graph.exact_search(query, k, allowed=mask, threads=1)[0]

    n_allowed = int(masks[0].sum())
    timing, found = time_calls(scan, list(zip(dataset.queries, masks)))
    # Filters that allow everything are all the same filter already.
    same_mask = timing if masks[0].all() else time_calls(scan, [(query, masks[0]) for query in dataset.queries])[0]
    return ScanRow(dataset.name, dataset.n_base, dataset.dim, n_allowed, timing, same_mask,
                   None if truth is None else recall(found, truth[:, :min(k, n_allowed)], dataset))


def measure_traversal(graph: vecdb.HNSWIndex, name: str, dim: int, queries: np.ndarray) -> TraversalRow:
    """Time searches that must visit the whole graph (an all-false filter)."""
    nothing = np.zeros(len(graph), dtype=bool)
    timing, _ = time_calls(lambda q: graph.search(q, 10, ef=10, allowed=nothing, threads=1), [(q,) for q in queries])
    return TraversalRow(name, len(graph), dim, timing)


def graph_sweep(graph: vecdb.HNSWIndex, dataset: Dataset, efs: Sequence[int], k: int, truth: np.ndarray,
                masks: Optional[list[np.ndarray]] = None, selectivity: Optional[float] = None) -> list[GraphRow]:
    """Time ``graph.search`` at every ef, one query per call, with one mask per query (``None``: unfiltered)."""
    items = [(query,) for query in dataset.queries] if masks is None else list(zip(dataset.queries, masks))
    n_allowed = dataset.n_base if masks is None else int(masks[0].sum())
    rows = []
    for ef in efs:
        timing, found = time_calls(lambda q, m=None: graph.search(q, k, ef=ef, allowed=m, threads=1)[0], items)
        rows.append(GraphRow(dataset.name, dataset.n_base, dataset.dim, selectivity, n_allowed, ef, timing,
                             recall(found, truth, dataset)))
    return rows


def filter_sweep(dataset: Dataset, graph: vecdb.HNSWIndex,
                 args: argparse.Namespace) -> tuple[list[ScanRow], list[GraphRow]]:
    """Exact scan and graph search at every selectivity and ef, with recall; plus unfiltered graph search."""
    scans: list[ScanRow] = []
    rows: list[GraphRow] = []
    for n_allowed in scan_counts(dataset.n_base, args):
        masks = random_masks(dataset.n_base, n_allowed, dataset.n_queries, args.seed, dataset.name)
        truth = np.array([vecdb.knn(dataset.base, query, args.k, metric=METRIC, allowed=mask)[0]
                          for query, mask in zip(dataset.queries, masks)])
        scans.append(measure_scans(graph, dataset, masks, args.k, truth))
        for s in (s for s in args.selectivities if allowed_count(dataset.n_base, s, args.k) == n_allowed):
            rows += graph_sweep(graph, dataset, args.ef, args.k, truth, masks, s)
        log(f"  {dataset.name}: {n_allowed:,} allowed done")
    truth = vecdb.knn(dataset.base, dataset.queries, args.k, metric=METRIC)[0]
    return scans, rows + graph_sweep(graph, dataset, args.ef, args.k, truth)
