"""Auto-tuning: the fastest plan that reaches a recall target on the
collection's own data (see :meth:`vecdb.Collection.tune`).

Pseudo-queries are stored vectors drawn at random (or queries the caller
gives: real ones are harder than stored points, which sit where the data is
densest); their exact neighbours come from a scan of every stored vector (a
pseudo-query's own point left out, since a real query is not stored). Each
family of plans (the full-dimension graph by ``ef``, each prefix funnel by
candidates) is tried from cheap to expensive until it reaches the target.
Among the plans that do (the cheapest of each family), the fastest wins,
timed again in interleaved rounds; plans within 10% of the fastest count as
tied and the cost model's estimate breaks the tie. Recall is measured
exactly, so the same data and seed always try the same plans with the same
recalls; only a timing difference beyond the tolerance can change the
choice. The chosen plan is checked again on a second, held-out sample.
"""

from __future__ import annotations

import time
from typing import Any, Dict, Iterable, List, Tuple, Union

import numpy as np

from vecdb.errors import InvalidArgumentError
from vecdb.native.flat import knn
from vecdb.query.executor import execute
from vecdb.query.planner import SearchShape, estimate
from vecdb.plans import Funnel, Graph, Plan, Scan, plan_to_dict
from vecdb.reports import TuneReport
from vecdb.index.prefix_index import IndexSet
from vecdb.storage.collection_store import CollectionStore
from vecdb.storage.environment import Environment

GRAPH_EFS = (16, 24, 32, 48, 64, 96, 128, 192, 256, 384, 512, 768)
FUNNEL_CANDIDATES_PER_K = (2, 3, 5, 8, 12, 20, 30, 50, 80)
TIMING_ROUNDS = 3
TIMING_TOLERANCE = 0.1
_TRUTH_CHUNK = 16_384  # stored vectors scanned per step for the exact neighbours


def exact_neighbours(chunks: Iterable[Tuple[np.ndarray, np.ndarray]], queries: np.ndarray, k: int,
                     metric: str) -> np.ndarray:
    """The labels of the k nearest stored vectors of each query, from a pass
    over ``(labels, vectors)`` chunks."""
    best_labels = np.full((queries.shape[0], 0), -1, dtype=np.int64)
    best_distances = np.zeros((queries.shape[0], 0), dtype=np.float32)
    for labels, matrix in chunks:
        rows, distances = knn(matrix, queries, min(k, len(labels)), metric=metric)
        merged_labels = np.concatenate([best_labels, labels[rows]], axis=1)
        merged_distances = np.concatenate([best_distances, distances], axis=1)
        order = np.argsort(merged_distances, axis=1, kind="stable")[:, :k]
        best_labels = np.take_along_axis(merged_labels, order, axis=1)
        best_distances = np.take_along_axis(merged_distances, order, axis=1)
    return best_labels


def tune_plans(indexes: IndexSet, shape: SearchShape, queries: np.ndarray, own: np.ndarray, truth: np.ndarray,
               held_out: Tuple[np.ndarray, np.ndarray, np.ndarray], target_recall: float, k: int,
               seed: int) -> TuneReport:
    """Try the plan families on ``queries`` (stored points ``own``, exact
    neighbours ``truth``, own points excluded) and pick the cheapest plan
    meeting ``target_recall``; ``held_out`` is a second (queries, own,
    truth) sample to check it on."""
    trials: List[Dict[str, Any]] = []
    meeting: List[Tuple[float, Plan, float]] = []
    for family in _families(shape, k):
        for plan in family:
            recall, latency = _measure(plan, indexes, queries, own, truth, k)
            cost = estimate(plan, shape, k, 1.0, None)
            trials.append({"plan": plan_to_dict(plan), "description": plan.describe(k), "recall": recall,
                           "latency_us": latency, "estimated_us": cost, "meets_target": recall >= target_recall})
            if recall >= target_recall:
                meeting.append((cost, plan, recall))
                break  # the rest of the family costs more
    if not meeting:  # nothing approximate reaches it: scanning is exact
        plan = Scan()
        recall, _ = _measure(plan, indexes, queries, own, truth, k)
        meeting.append((0.0, plan, recall))
    best, recall = _fastest(meeting, indexes, queries, own, truth, k)
    held_out_recall, _ = _measure(best, indexes, *held_out, k)
    return TuneReport(plan=best, recall=recall, held_out_recall=held_out_recall, target_recall=target_recall,
                      k=k, queries=queries.shape[0], seed=seed, trials=trials)


def _fastest(meeting: List[Tuple[float, Plan, float]], indexes: IndexSet, queries: np.ndarray, own: np.ndarray,
             truth: np.ndarray, k: int) -> Tuple[Plan, float]:
    """The plan (and its recall) that runs fastest, timed again in
    interleaved rounds (the best of TIMING_ROUNDS each); plans within
    TIMING_TOLERANCE of the fastest count as tied, and the tie goes to the
    lowest estimated cost."""
    timings = [float("inf")] * len(meeting)
    for _ in range(TIMING_ROUNDS):
        for index, (_, plan, _) in enumerate(meeting):
            timings[index] = min(timings[index], _measure(plan, indexes, queries, own, truth, k)[1])
    fastest = min(timings)
    tied = [index for index, latency in enumerate(timings) if latency <= (1 + TIMING_TOLERANCE) * fastest]
    chosen = min(tied, key=lambda index: meeting[index][0])
    return meeting[chosen][1], meeting[chosen][2]


def _families(shape: SearchShape, k: int) -> List[List[Plan]]:
    families: List[List[Plan]] = [[Scan()]]
    if shape.main_kind in ("graph", "pq-graph"):
        families.append([Graph(ef=ef) for ef in GRAPH_EFS if ef >= k])
    for dims in shape.prefix_dims:
        families.append([Funnel(dims=dims, candidates=per_k * k) for per_k in FUNNEL_CANDIDATES_PER_K])
    return families


def _measure(plan: Plan, indexes: IndexSet, queries: np.ndarray, own: np.ndarray, truth: np.ndarray,
             k: int) -> Tuple[float, float]:
    """Recall@k (own points excluded) and microseconds per single query."""
    found = np.full((queries.shape[0], k + 1), -1, dtype=np.int64)
    start = time.perf_counter()
    for row in range(queries.shape[0]):
        labels, _ = execute(plan, indexes, queries[row:row + 1], k + 1, None, None)
        found[row, : labels.shape[1]] = labels[0]
    latency = 1e6 * (time.perf_counter() - start) / max(1, queries.shape[0])
    hits = 0
    for row in range(queries.shape[0]):
        kept = found[row][(found[row] != own[row]) & (found[row] >= 0)][:k]
        hits += len(np.intersect1d(kept, truth[row]))
    return hits / max(1, truth.size), latency


def tune_collection(environment: Environment, store: CollectionStore, indexes: IndexSet, shape: SearchShape,
                    dim: int, metric: str, target_recall: float, k: int, queries: Union[int, np.ndarray],
                    seed: int) -> TuneReport:
    """Tune on two disjoint sets of queries, one to choose with and one held
    out: ``queries`` stored vectors drawn at random (their own points left
    out of the neighbours), or the given query matrix split in two."""
    rng = np.random.default_rng(seed)
    with environment.read() as txn:
        store.config(txn)
        labels = store.all_labels(txn)
        if len(labels) < k + 2:
            raise InvalidArgumentError(f"tuning needs at least {k + 2} stored points; there are {len(labels)}")
        if isinstance(queries, np.ndarray):
            if queries.shape[0] < 2:
                raise InvalidArgumentError("tuning needs at least 2 queries (half are held out)")
            vectors = queries[rng.permutation(queries.shape[0])]
            own = np.full(vectors.shape[0], -1, dtype=np.int64)  # not stored points: nothing to leave out
        else:
            own = rng.choice(labels, size=2 * min(queries, len(labels) // 2), replace=False)
            vectors, _ = store.vectors_of(txn, own, dim)
        neighbours = exact_neighbours(store.vector_chunks(txn, dim, _TRUTH_CHUNK), vectors, k + 1, metric)
    truth = _without_own(neighbours, own, k)
    half = vectors.shape[0] // 2
    tuning = (vectors[:half], own[:half], truth[:half])
    held_out = (vectors[half:], own[half:], truth[half:])
    return tune_plans(indexes, shape, *tuning, held_out, target_recall, k, seed)


def _without_own(neighbours: np.ndarray, own: np.ndarray, k: int) -> np.ndarray:
    """Each row's first k labels other than the query's own point."""
    return np.stack([row[row != label][:k] for row, label in zip(neighbours, own)])
