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
from typing import Any, Callable, Dict, Iterable, List, Optional, Sequence, Tuple, Union

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
# Fine steps where funnels usually cross 0.95 (a 200k x 768 MRL set: 128-d
# prefixes reach it between 5 and 8 per k; with 5 and 8 only, tune took a
# slower 256-d funnel).
FUNNEL_CANDIDATES_PER_K = (2, 3, 4, 5, 6, 8, 12, 20, 30, 50, 80)
TIMING_ROUNDS = 3
TIMING_TOLERANCE = 0.1
TRUTH_CHUNK = 16_384  # stored vectors scanned per step for the exact neighbours

# How the tuner runs a plan: (plan, queries, k) -> per query, the points
# found (labels, or ids: anything comparable with == and hashable), best
# first. A collection runs it on its index set; a cluster searches its shards.
PlanRunner = Callable[[Plan, np.ndarray, int], List[List[Any]]]
# How the tuner times a plan, when not by running it through the PlanRunner:
# (plan, queries, k) -> microseconds per single query.
PlanTimer = Callable[[Plan, np.ndarray, int], float]
# Tuning queries: (vectors, each one's own stored point or None, each one's
# exact k neighbours without it).
QuerySet = Tuple[np.ndarray, Sequence[Any], Sequence[Sequence[Any]]]


def exact_neighbours(chunks: Iterable[Tuple[np.ndarray, np.ndarray]], queries: np.ndarray, k: int,
                     metric: str) -> Tuple[np.ndarray, np.ndarray]:
    """The labels of the k nearest stored vectors of each query and their
    distances, from a pass over ``(labels, vectors)`` chunks."""
    best_labels = np.full((queries.shape[0], 0), -1, dtype=np.int64)
    best_distances = np.zeros((queries.shape[0], 0), dtype=np.float32)
    for labels, matrix in chunks:
        rows, distances = knn(matrix, queries, min(k, len(labels)), metric=metric)
        merged_labels = np.concatenate([best_labels, labels[rows]], axis=1)
        merged_distances = np.concatenate([best_distances, distances], axis=1)
        order = np.argsort(merged_distances, axis=1, kind="stable")[:, :k]
        best_labels = np.take_along_axis(merged_labels, order, axis=1)
        best_distances = np.take_along_axis(merged_distances, order, axis=1)
    return best_labels, best_distances


def index_runner(indexes: IndexSet) -> PlanRunner:
    """Plans run on a collection's index set (labels found)."""
    def run(plan: Plan, queries: np.ndarray, k: int) -> List[List[Any]]:
        labels, _ = execute(plan, indexes, queries, k, None, None)
        return [[label for label in row if label >= 0] for row in labels.tolist()]
    return run


def time_plan(indexes: IndexSet) -> PlanTimer:
    """A plan timed on a collection's index set, one query per call."""
    run = index_runner(indexes)

    def timed(plan: Plan, queries: np.ndarray, k: int) -> float:
        start = time.perf_counter()
        for row in range(queries.shape[0]):
            run(plan, queries[row:row + 1], k)
        return 1e6 * (time.perf_counter() - start) / max(1, queries.shape[0])
    return timed


def tune_plans(run: PlanRunner, shape: SearchShape, tuning: QuerySet, held_out: QuerySet, target_recall: float,
               k: int, seed: int, timer: Optional[PlanTimer] = None) -> TuneReport:
    """Try the plan families on the ``tuning`` queries and pick the cheapest
    plan meeting ``target_recall``; ``held_out`` is a second sample to
    check it on. Plans are timed by ``timer``, or by running them."""
    trials: List[Dict[str, Any]] = []
    meeting: List[Tuple[float, Plan, float]] = []
    queries = tuning[0]
    for family in _families(shape, k):
        for plan in family:
            recall, latency = _measure(plan, run, tuning, k, timer)
            cost = estimate(plan, shape, k, 1.0, None)
            trials.append({"plan": plan_to_dict(plan), "description": plan.describe(k), "recall": recall,
                           "latency_us": latency, "estimated_us": cost, "meets_target": recall >= target_recall})
            if recall >= target_recall:
                meeting.append((cost, plan, recall))
                break  # the rest of the family costs more
    if not meeting:  # nothing approximate reaches it: scanning is exact
        plan = Scan()
        recall, _ = _measure(plan, run, tuning, k, timer)
        meeting.append((0.0, plan, recall))
    best, recall = _fastest(meeting, run, tuning, k, timer)
    held_out_recall, _ = _measure(best, run, held_out, k, timer)
    return TuneReport(plan=best, recall=recall, held_out_recall=held_out_recall, target_recall=target_recall,
                      k=k, queries=queries.shape[0], seed=seed, trials=trials)


def _fastest(meeting: List[Tuple[float, Plan, float]], run: PlanRunner, tuning: QuerySet, k: int,
             timer: Optional[PlanTimer]) -> Tuple[Plan, float]:
    """The plan (and its recall) that runs fastest, timed again in
    interleaved rounds (the best of TIMING_ROUNDS each); plans within
    TIMING_TOLERANCE of the fastest count as tied, and the tie goes to the
    lowest estimated cost."""
    timings = [float("inf")] * len(meeting)
    for _ in range(TIMING_ROUNDS):
        for index, (_, plan, _) in enumerate(meeting):
            timings[index] = min(timings[index], _measure(plan, run, tuning, k, timer)[1])
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


def _measure(plan: Plan, run: PlanRunner, tuning: QuerySet, k: int,
             timer: Optional[PlanTimer]) -> Tuple[float, float]:
    """Recall@k (own points excluded) and microseconds per single query."""
    queries, own, truth = tuning
    start = time.perf_counter()
    found = [run(plan, queries[row:row + 1], k + 1)[0] for row in range(queries.shape[0])]
    latency = 1e6 * (time.perf_counter() - start) / max(1, queries.shape[0])
    if timer is not None:
        latency = timer(plan, queries, k + 1)
    hits = sum(len(set([point for point in row if point != own[index]][:k]) & set(truth[index]))
               for index, row in enumerate(found))
    return hits / max(1, sum(len(row) for row in truth)), latency


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
        neighbours, _ = exact_neighbours(store.vector_chunks(txn, dim, TRUTH_CHUNK), vectors, k + 1, metric)
    return tune_plans(index_runner(indexes), shape, *split_queries(vectors, own.tolist(), neighbours.tolist(), k),
                      target_recall, k, seed)


def split_queries(vectors: np.ndarray, own: Sequence[Any], neighbours: Sequence[Sequence[Any]],
                  k: int) -> Tuple[QuerySet, QuerySet]:
    """The queries halved, one half to choose with and one held out, each
    query's neighbours without its own point, k of them."""
    truth = [[point for point in row if point != point_of][:k] for row, point_of in zip(neighbours, own)]
    half = vectors.shape[0] // 2
    return (vectors[:half], own[:half], truth[:half]), (vectors[half:], own[half:], truth[half:])
