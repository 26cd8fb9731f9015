"""Measuring search plans of one collection: recall@k over every query, and single-query QPS
in interleaved rounds.

Every case first answers each query once, untimed: its recall comes from those ids, so all
cases are scored on the same queries even when a slow case's timed runs cover only a
prefix of them (``bench.timing`` cycles through queries for a minimum time). Then each
round times every case with ``bench.timing.time_search`` (one query per call, a warm-up,
the best of ``repeats`` runs), in order on odd rounds and in reverse on even ones, so a
slow phase of a shared machine is spread over all cases; a case's QPS is its best
round's, and every round's is kept.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from typing import Any, Callable, Dict, List, Sequence

import numpy as np

from bench.cpu_load import OtherCpuLoad
from bench.recall import recall_at_k
from bench.timing import time_search

SearchOne = Callable[[np.ndarray], np.ndarray]


@dataclass(frozen=True)
class PlanCase:
    """One way of searching: ``search`` maps a 1-D query to its k ids (-1 padded).

    ``kind`` groups cases in reports (graph, funnel, prefix, scan, default, tuned,
    planner); ``label`` is the plan as vecdb prints it; ``params`` its swept settings.
    """

    kind: str
    label: str
    params: Dict[str, Any]
    search: SearchOne


@dataclass(frozen=True)
class TimingSettings:
    """How long and how often each case is timed."""

    rounds: int
    min_seconds: float
    repeats: int


def hit_ids(hits: Sequence[Any], k: int) -> np.ndarray:
    """The integer ids of ``hits`` (vecdb Hit objects), padded with -1 to ``k``."""
    ids = np.full(k, -1, dtype=np.int64)
    ids[: len(hits)] = [hit.id for hit in hits[:k]]
    return ids


def answer_all(search: SearchOne, queries: np.ndarray) -> np.ndarray:
    """The ids ``search`` returns for every query, one call per query."""
    return np.stack([search(query) for query in queries])


def measure_cases(cases: List[PlanCase], queries: np.ndarray, true_ids: np.ndarray, base: np.ndarray,
                  metric: str, timing: TimingSettings) -> List[Dict[str, Any]]:
    """One JSON-ready row per case: recall over all ``queries`` and QPS of the best round."""
    recalls = []
    for case in cases:
        recalls.append(recall_at_k(answer_all(case.search, queries), true_ids, base, queries, metric))
        print(f"    {case.label}: recall {recalls[-1]:.4f}", file=sys.stderr, flush=True)
    rounds: List[List[Dict[str, float]]] = [[] for _ in cases]
    for number in range(timing.rounds):
        order = range(len(cases)) if number % 2 == 0 else reversed(range(len(cases)))
        for position in order:
            load = OtherCpuLoad()
            timed = time_search(cases[position].search, queries, batch=1, min_seconds=timing.min_seconds,
                                repeats=timing.repeats)
            rounds[position].append({"qps": timed.queries_per_second, "latency_ms_p50": timed.latency_ms_p50,
                                     "latency_ms_p99": timed.latency_ms_p99, "other_load": load.cores()})
        print(f"    round {number + 1}/{timing.rounds} timed", file=sys.stderr, flush=True)
    rows = []
    for case, recall, case_rounds in zip(cases, recalls, rounds):
        best = max(case_rounds, key=lambda r: r["qps"])
        rows.append({"kind": case.kind, "label": case.label, "params": case.params, "recall": recall,
                     "qps": best["qps"], "qps_rounds": [r["qps"] for r in case_rounds],
                     "latency_ms_p50": best["latency_ms_p50"], "latency_ms_p99": best["latency_ms_p99"],
                     "other_load": best["other_load"]})
    return rows
