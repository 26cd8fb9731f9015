"""Repeating every job in interleaved rounds, and folding the rounds into one result row.

On a shared VM the host's speed drifts by tens of percent over minutes. Run each job once,
one after the other, and a slow phase lands on one system but not its peers, skewing the
ratios between them. Running all jobs once per round, and reversing the order every other
round, spreads each slow phase over every system; a job's best round is then the one
least disturbed, because noisy neighbours only ever slow a measurement down.

A combined row is the best round's measurement (highest QPS; its recall, latencies and
other load), except that ``build_seconds`` is the fastest round's (same reasoning as QPS)
and the memory figures (``memory_peak_mb``, ``memory_after_build_mb``, ``index_mb``) are
medians, since noise does not shrink memory. It adds ``qps_min``, ``qps_median``,
``qps_max`` (= ``qps``), ``best_round``, and ``rounds``: one entry per round with the
fields in ``PER_ROUND_FIELDS`` and its ``round`` number (from 1).
"""

from __future__ import annotations

import statistics
from collections import defaultdict
from collections.abc import Sequence
from typing import Any, TypeVar

from bench.results import measurement_key

Item = TypeVar("Item")
Measurement = dict[str, Any]

# What can change from one round to the next; kept per round so spread stays visible.
PER_ROUND_FIELDS = (
    "qps",
    "recall",
    "recall_queries",
    "queries_timed",
    "latency_ms_p50",
    "latency_ms_p99",
    "build_seconds",
    "memory_peak_mb",
    "memory_after_build_mb",
    "index_mb",
    "other_load_cores",
    "measured_at",
)
_MEDIAN_FIELDS = ("memory_peak_mb", "memory_after_build_mb", "index_mb")


def round_order(items: Sequence[Item], round_number: int) -> list[Item]:
    """``items`` in order for odd rounds (counting from 1), reversed for even ones.

    Alternating the direction gives every job the same average position in time, so a
    drift that is steady over the run does not favour the jobs that come first.
    """
    return list(items) if round_number % 2 == 1 else list(reversed(items))


def combine_rounds(rounds: dict[int, list[Measurement]]) -> list[Measurement]:
    """One row per measurement key from one job's rounds (round number -> that round's rows).

    Rows keep the order of their key's first appearance; a key missing from some rounds
    (a worker that failed) is combined from the rounds that have it.
    """
    by_key: dict[tuple, list[tuple[int, Measurement]]] = defaultdict(list)
    for round_number in sorted(rounds):
        for measurement in rounds[round_number]:
            by_key[measurement_key(measurement)].append((round_number, measurement))
    return [_combine_one(entries) for entries in by_key.values()]


def _combine_one(entries: list[tuple[int, Measurement]]) -> Measurement:
    # max keeps the earliest round on a tie, so the choice is reproducible.
    best_round, best = max(entries, key=lambda entry: entry[1]["qps"])
    qps = [measurement["qps"] for _, measurement in entries]
    combined = dict(best)
    combined["build_seconds"] = min(measurement["build_seconds"] for _, measurement in entries)
    for field in _MEDIAN_FIELDS:
        combined[field] = statistics.median(measurement[field] for _, measurement in entries)
    combined["qps_min"] = min(qps)
    combined["qps_median"] = statistics.median(qps)
    combined["qps_max"] = max(qps)
    combined["best_round"] = best_round
    combined["rounds"] = [
        {"round": round_number, **{field: measurement[field] for field in PER_ROUND_FIELDS}}
        for round_number, measurement in entries
    ]
    return combined


def exact_recall_mismatch(combined: Measurement) -> str | None:
    """Why an exact system's recall differed between rounds that answered the same queries, or None.

    An exact search returns the same neighbours every time, so differing recall over the
    same queries means a nondeterministic bug. Rounds may answer different prefixes of a
    slow single-query path, so only rounds with equal ``recall_queries`` are compared.
    """
    if not combined["exact"]:
        return None
    recalls_by_queries: dict[int, set[float]] = defaultdict(set)
    for entry in combined.get("rounds", []):
        recalls_by_queries[entry["recall_queries"]].add(entry["recall"])
    differing = {
        queries: sorted(recalls) for queries, recalls in recalls_by_queries.items() if len(recalls) > 1
    }
    if not differing:
        return None
    details = "; ".join(f"over {queries} queries: {recalls}" for queries, recalls in differing.items())
    return (
        f"{combined['system']} batch={combined['batch']} threads={combined['threads']} on "
        f"{combined['dataset']}: exact system's recall differs between rounds ({details})"
    )
